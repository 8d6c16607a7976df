import Foundation
import MemsiftAnalysis
import MemsiftReport
import MemsiftSymbols
import Testing
import _MemsiftTestSupport

/// A small trace with known sites, written with the shim's own structs. Its
/// modules do not exist on disk, so frames read module+offset everywhere.
func goldenTrace() throws -> String {
  var b = RecordBuilder()
  b.header()
  b.process(arguments: ["server", "--port", "80"])
  b.moduleLoad(base: 0x400000, path: "/opt/app/server", segments: [(0, 0x10000)])
  b.moduleLoad(base: 0x7f0000000000, path: "/opt/app/libcache.so", segments: [(0, 0x8000)])
  b.stack(1, frames: [0x401234, 0x402000])  // server: request buffer
  b.stack(2, frames: [0x7f0000001100, 0x401500, 0x402000])  // libcache: entry
  b.alloc(0x1000, 4096, stack: 1, time: 10_000)
  b.alloc(0x2000, 240, stack: 2, time: 20_000)
  b.free(0x1000, time: 30_000)
  b.alloc(0x3000, 240, stack: 2, time: 40_000)
  b.alloc(0x4000, 100, stack: 1, time: 50_000)
  b.free(0x4000, time: 60_000)
  b.end()
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("memsift-golden-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  let path = dir.appendingPathComponent("golden.trace").path
  try Data(b.bytes).write(to: URL(fileURLWithPath: path))
  return path
}

/// The report's text for `path`, with the temporary path replaced.
func renderGolden(_ path: String, json: Bool) throws -> String {
  let analysis = try TraceAnalysis.read(path: path)
  let builder = SiteReportBuilder(
    analysis: analysis, symbolizer: Symbolizer(), grouping: .stack, keepAllocatorFrames: false)
  var text: String
  if json {
    text = try TotalsReport.json(analysis.summary, sites: builder.rows(by: .peak, top: nil))
  } else {
    text = TotalsReport.text(analysis.summary)
    for metric in [SiteMetric.peak, .leaked, .allocations, .temporary] {
      text += SiteText.section(metric, rows: builder.rows(by: metric, top: 10), summary: analysis.summary)
    }
  }
  return text.replacingOccurrences(of: path, with: "golden.trace")
}

func expectGolden(_ actual: String, _ name: String) throws {
  let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name)")
  if ProcessInfo.processInfo.environment["MEMSIFT_UPDATE_GOLDEN"] == "1" {
    try actual.write(to: url, atomically: true, encoding: .utf8)
  }
  let expected = try String(contentsOf: url, encoding: .utf8)
  #expect(actual == expected, "the \(name) report changed; if on purpose, rerun with MEMSIFT_UPDATE_GOLDEN=1")
}

@Test func theTextReportOfAKnownTraceIsExactlyTheGoldenOne() throws {
  try expectGolden(try renderGolden(try goldenTrace(), json: false), "report.txt")
}

@Test func theJSONReportOfAKnownTraceIsExactlyTheGoldenOne() throws {
  try expectGolden(try renderGolden(try goldenTrace(), json: true), "report.json")
}
