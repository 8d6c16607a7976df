import ArgumentParser
import Foundation
import MemsiftReport
import MemsiftSymbols

/// The output formats the reading subcommands offer.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
  case text, json

  /// Sites a JSON document lists unless --top says otherwise: every stack
  /// of a Python program is distinct down to its lines (tens of thousands,
  /// a hundred frames each), and all of them would make a document of GBs.
  static let jsonSites = 1000
}

/// A symbolizer that searches `directories`, then `$MEMSIFT_DEBUG_PATH` (colon-separated).
func makeSymbolizer(debugDirectories directories: [String], demangle: Bool = true) -> Symbolizer {
  let environment = Foundation.ProcessInfo.processInfo.environment
  let extra = (environment["MEMSIFT_DEBUG_PATH"] ?? "").split(separator: ":").map(String.init)
  return Symbolizer(debugDirectories: directories + extra, demangle: demangle)
}

/// The formats of `report` and `diff`: OutputFormat's, and a self-contained HTML page.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
  case text, json, html
}

extension FlameMetric: ExpressibleByArgument {}

/// The symbolizer's warnings (missing debug info...), one line each on stderr.
func printWarnings(of symbolizer: Symbolizer) {
  for warning in symbolizer.warnings { printError("warning: \(warning)") }
}

/// Writes `bytes` to `path`, or to stdout without one.
/// - Throws: `ExitCode.failure` after one line on stderr when the file cannot be written.
func writeOutput(_ bytes: [UInt8], to path: String?) throws {
  guard let path else {
    FileHandle.standardOutput.write(Data(bytes))
    return
  }
  guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
    printError("cannot write \(path)")
    throw ExitCode.failure
  }
}

func writeOutput(_ text: String, to path: String?) throws {
  try writeOutput(Array(text.utf8), to: path)
}
