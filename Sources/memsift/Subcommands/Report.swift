import ArgumentParser
import Foundation
import MemsiftAnalysis
import MemsiftFormat
import MemsiftReport
import MemsiftSymbols

extension MemsiftCommand {
  struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Which code holds the memory: peak, leaks, allocation calls and temporaries by allocation site.",
      discussion: """
        Sites are named by function — file:line — module (from DWARF, with inlined frames). \
        Separate debug files are found by build-id under /usr/lib/debug, the --debug-dir \
        directories and $MEMSIFT_DEBUG_PATH (colon-separated), and by debuginfod when \
        DEBUGINFOD_URLS is set.
        """)

    @Argument(help: "A trace file written by `memsift run` or the shim.")
    var trace: String

    @Option(help: "Output format: text, json or html (one self-contained page: timeline, flame graph, tables).")
    var format: ReportFormat = .text

    @Option(help: "Sites per section (text: 10 by default; json: \(OutputFormat.jsonSites)).")
    var top: Int?

    @Option(help: "Rank by peak, leaked, allocated, allocations or temporary (text: only that section).")
    var sort: SiteMetric?

    @OptionGroup var sites: SiteOptions

    @Option(name: .shortAndLong, help: "Write the report to this file instead of stdout.")
    var output: String?

    @Option(help: "Report the process with this PID among the traces of the same run (TRACE names the run's -o file).")
    var pid: Int32?

    mutating func validate() throws {
      if let top, top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
      let path: String
      do {
        path = try pid.map { try RunTraces.trace(of: $0, near: trace) } ?? trace
      } catch {
        printError("\(error)")
        throw ExitCode.failure
      }
      let analysis = try readAnalysis(path)
      let symbolizer = sites.symbolizer()
      let builder = sites.builder(analysis, symbolizer: symbolizer)
      let summary = analysis.summary
      // The text report's sections, and the HTML page's tables.
      let sections: [SiteMetric] = sort.map { [$0] } ?? [.peak, .leaked, .allocations, .temporary]
      var text: String
      switch format {
      case .text:
        text = TotalsReport.text(summary)
        for metric in sections {
          text += SiteText.section(metric, rows: builder.rows(by: metric, top: top ?? 10), summary: summary)
        }
      case .json:
        let rows = builder.rows(by: sort ?? .peak, top: top ?? OutputFormat.jsonSites)
        text = try TotalsReport.json(summary, sites: rows, symbolWarnings: symbolizer.warnings)
      case .html:
        let tables = sections.map { ($0, builder.rows(by: $0, top: top ?? 10)) }
        text = HTMLReport.report(analysis, tree: flameTree(builder), sections: tables)
      }
      printWarnings(of: symbolizer)
      try writeOutput(text, to: output)
    }
  }
}
