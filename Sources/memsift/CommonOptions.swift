import ArgumentParser
import Foundation
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
