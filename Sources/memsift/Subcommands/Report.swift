import ArgumentParser
import MemsiftAnalysis
import MemsiftFormat
import MemsiftReport

extension MemsiftCommand {
  struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Summarize a trace: allocations, peak heap, leaks, temporary allocations.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
      case text, json
    }

    @Argument(help: "A trace file written by `memsift run` or the shim.")
    var trace: String

    @Option(help: "Output format: text or json.")
    var format: Format = .text

    func run() throws {
      let summary: TraceSummary
      do {
        summary = try TraceSummary.read(path: trace)
      } catch {
        printError("\(trace): \(error)")
        throw ExitCode.failure
      }
      switch format {
      case .text: print(TotalsReport.text(summary), terminator: "")
      case .json: print(try TotalsReport.json(summary), terminator: "")
      }
    }
  }
}
