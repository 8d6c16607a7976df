import ArgumentParser
import Foundation
import MemsiftAnalysis
import MemsiftReport
import MemsiftSymbols

extension MemsiftCommand {
  struct Export: ParsableCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable {
      case pprof, collapsed, json
    }

    static let configuration = CommandConfiguration(
      abstract: "Write a trace in a format other tools read: pprof, collapsed stacks, or the JSON report.",
      discussion: """
        pprof: a gzipped profile.proto for `go tool pprof` (alloc_objects, alloc_space, \
        inuse_objects, inuse_space; in use = leaked, or live at TRACE@POINT: a label, 12.5s, \
        peak, start or end). collapsed: one line per stack with its --metric figure, for \
        flamegraph.pl, inferno and speedscope. json: the report's schema, memsift.report/1.
        """)

    @Argument(help: "A trace file, or TRACE@POINT for pprof's in-use figures at that point.")
    var trace: String

    @Option(help: "pprof, collapsed or json.")
    var format: Format

    @Option(help: "collapsed: each stack's figure; json: the sites' order. peak (default), leaked, allocated or allocations.")
    var metric: FlameMetric?

    @Option(help: "json: sites listed (default \(OutputFormat.jsonSites)).")
    var top: Int?

    @OptionGroup var sites: SiteOptions

    @Option(name: .shortAndLong, help: "Write to this file instead of stdout.")
    var output: String?

    mutating func validate() throws {
      if let top, top < 1 { throw ValidationError("--top must be at least 1") }
      // Options a format would ignore are refused rather than silently dropped.
      if format != .json && top != nil { throw ValidationError("--top applies to --format json only") }
      if format != .json && sites.groupBy != .stack {
        throw ValidationError("--group-by applies to --format json only: pprof and collapsed stacks keep whole stacks")
      }
      if format == .pprof && metric != nil {
        throw ValidationError("--metric does not apply to pprof, which holds all four figures")
      }
    }

    func run() throws {
      let (path, point): (String, TracePoint)
      do {
        (path, point) = try TracePoint.parse(trace, fileExists: { FileManager.default.fileExists(atPath: $0) })
      } catch let error as TracePointError {
        printError(error.message)
        throw ExitCode.failure
      }
      if point != .end && format != .pprof {
        printError("\(trace): a point (@…) applies to --format pprof only")
        throw ExitCode.failure
      }
      let analysis = try readAnalysis(path, points: point == .end ? [] : [point])
      switch format {
      case .pprof:
        // Raw names: pprof keeps a function's system name beside the demangled one.
        let builder = sites.builder(analysis, symbolizer: makeSymbolizer(debugDirectories: sites.debugDirectories, demangle: false))
        let profile = PprofProfile.encode(builder, inuse: analysis.captures.first)
        try writeOutput(try Gzip.compress(profile), to: output)
        printWarnings(of: builder.symbolizer)
      case .collapsed:
        let builder = sites.builder(analysis, symbolizer: sites.symbolizer())
        try writeOutput(CollapsedStacks.text(flameTree(builder), metric: metric ?? .peak), to: output)
        printWarnings(of: builder.symbolizer)
      case .json:
        let builder = sites.builder(analysis, symbolizer: sites.symbolizer())
        let rows = builder.rows(by: (metric ?? .peak).siteMetric, top: top ?? OutputFormat.jsonSites)
        try writeOutput(
          try TotalsReport.json(analysis.summary, sites: rows, symbolWarnings: builder.symbolizer.warnings), to: output)
      }
    }
  }
}
