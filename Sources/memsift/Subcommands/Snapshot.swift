import ArgumentParser
import Foundation
import MemsiftAnalysis
import MemsiftCollector
import MemsiftReport

extension MemsiftCommand {
  struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Label this moment in a process that `memsift run` is tracing (no signal is sent to it).")

    @Argument(help: "The traced process.")
    var pid: Int32

    @Argument(help: "The label (at most 256 bytes are kept).")
    var label: String

    func run() throws {
      do {
        try SnapshotMarker.mark(pid: pid, label: label, environment: Foundation.ProcessInfo.processInfo.environment)
      } catch {
        printError("\(error)")
        throw ExitCode.failure
      }
    }
  }

  struct Snapshots: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List a trace's snapshot labels with the heap and RSS at each.")

    @Argument(help: "A trace file.")
    var trace: String

    @Option(help: "Output format: text or json (time_ns counts from the start of the process).")
    var format: OutputFormat = .text

    func run() throws {
      let summary: TraceSummary
      do {
        summary = try TraceSummary.read(path: trace)
      } catch {
        printError("\(trace): \(error)")
        throw ExitCode.failure
      }
      switch format {
      case .text: print(SnapshotTable.text(summary), terminator: "")
      case .json: print(try SnapshotTable.json(summary), terminator: "")
      }
    }
  }
}
