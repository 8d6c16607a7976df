import ArgumentParser
import MemsiftReport

extension MemsiftCommand {
  struct Flamegraph: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "A standalone flame graph of the sites: SVG, or an interactive HTML page.",
      discussion: "The output is HTML when -o ends in .html or .htm, SVG otherwise (and on stdout).")

    @Argument(help: "A trace file.")
    var trace: String

    @Option(help: "What a frame's width shows: peak, leaked, allocated or allocations.")
    var metric: FlameMetric = .peak

    @OptionGroup var sites: SiteOptions

    @Option(name: .shortAndLong, help: "Write to this file (.svg or .html) instead of stdout (SVG).")
    var output: String?

    mutating func validate() throws {
      if sites.groupBy != .stack { throw ValidationError("--group-by does not apply: a flame graph draws whole stacks") }
    }

    func run() throws {
      let analysis = try readAnalysis(trace)
      let builder = sites.builder(analysis, symbolizer: sites.symbolizer())
      let tree = flameTree(builder)
      let title = "\(metric.rawValue) — \(trace)"
      let isHTML = output.map { $0.hasSuffix(".html") || $0.hasSuffix(".htm") } ?? false
      let page = isHTML
        ? HTMLReport.flameGraph(tree, metric: metric, title: title)
        : FlameGraphSVG.render(tree, metric: metric, title: title)
      try writeOutput(page, to: output)
      printWarnings(of: builder.symbolizer)
    }
  }
}
