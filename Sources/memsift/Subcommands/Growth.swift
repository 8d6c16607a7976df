import ArgumentParser
import Foundation
import MemsiftAnalysis
import MemsiftFormat
import MemsiftReport
import MemsiftSymbols

extension MemsiftCommand {
  struct Growth: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Find what keeps growing: sites whose live memory rises steadily (an unbounded cache).",
      discussion: """
        Samples every site's live bytes at evenly spaced moments (or at the snapshot labels) \
        and ranks the sites by growth × trend, the trend being how consistently later samples \
        are above earlier ones (Kendall's tau): churn that returns to its baseline scores nothing. \
        When the heap ends below half its peak (a program that frees its data at exit), the \
        samples stop at the peak.
        """)

    @Argument(help: "A trace file.")
    var trace: String

    @Option(help: "Evenly spaced samples (2-1000).")
    var samples: Int = 20

    @Flag(help: "Sample at the snapshot labels instead.")
    var labels = false

    @Option(help: "Sites shown (default 10).")
    var top: Int = 10

    @OptionGroup var sites: SiteOptions

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    mutating func validate() throws {
      guard (2...1000).contains(samples) else { throw ValidationError("--samples must be between 2 and 1000") }
      guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
      do {
        // A first pass learns how long the trace lasts (and its labels).
        let summary = try TraceSummary.read(path: trace)
        let points: [TracePoint]
        if labels {
          guard summary.snapshots.count >= 2 else {
            printError("\(trace) has \(summary.snapshots.count) snapshot labels; --labels needs at least 2")
            throw ExitCode.failure
          }
          points = summary.snapshots.map { .label($0.label) }
        } else if summary.totals.leakedBytes < summary.totals.peakBytes / 2 {
          // The heap fell below half its peak by the end: the program tore
          // its data down (CPython frees everything at exit). Growth is
          // measured up to the peak, not through the teardown.
          let span = Double(summary.elapsed(at: summary.totals.peakTimeNs)) / 1e9
          points = (1..<samples).map { .seconds(span * Double($0) / Double(samples)) } + [.peak]
        } else {
          let span = Double(summary.durationNs) / 1e9
          points = (1..<samples).map { .seconds(span * Double($0) / Double(samples)) } + [.end]
        }
        let analysis = try TraceAnalysis.read(path: trace, points: points)
        let symbolizer = sites.symbolizer()
        let builder = sites.builder(analysis, symbolizer: symbolizer)
        let rows = GrowthReport.rows(builder: builder, captures: analysis.captures, top: top)
        switch format {
        case .text: print(GrowthReport.text(path: trace, captures: analysis.captures, rows: rows), terminator: "")
        case .json:
          print(
            try GrowthReport.json(path: trace, captures: analysis.captures, rows: rows, warnings: symbolizer.warnings),
            terminator: "")
        }
      } catch let error as TracePointError {
        printError(error.message)
        throw ExitCode.failure
      } catch let error as TraceError {
        printError("\(trace): \(error)")
        throw ExitCode.failure
      }
    }
  }
}
