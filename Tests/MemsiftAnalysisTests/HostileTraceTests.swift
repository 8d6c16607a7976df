import Foundation
import MemsiftAnalysis
import MemsiftFormat
import Testing

// Contract 7 (DESIGN.md), deterministically: real traces of the fuzz corpus
// cut at every offset and with bits flipped, read the way `memsift report`
// reads them. Each read ends with a TraceError or a result; a cut one with
// a warning. tools/fuzz/README.md has the fuzzer that goes further.

/// A real trace of the fuzz corpus (its first byte is the fuzz target's mode).
private func corpusTrace(_ name: String) throws -> [UInt8] {
  let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  let seed = try Data(contentsOf: root.appendingPathComponent("tools/fuzz/corpus/\(name)"))
  #expect(seed.first == 2, "\(name) is not a whole-file seed")
  return Array(seed.dropFirst())
}

/// A path `write` rewrites for each variant.
private func scratchFile() throws -> String {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("memsift-hostile-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  return dir.appendingPathComponent("t.trace").path
}

private func write<C: Collection>(_ bytes: C, to path: String) throws where C.Element == UInt8 {
  try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Reads `path` as `report` does (with the time points of `diff`);
/// nil when the reader refused the file with a TraceError.
private func analyze(_ path: String, _ what: String) -> TraceAnalysis? {
  do {
    return try TraceAnalysis.read(path: path, points: [.start, .peak, .end])
  } catch is TraceError {
    return nil
  } catch {
    Issue.record("\(what): not a TraceError: \(error)")
    return nil
  }
}

/// Collector-written (compressed EVENTS; live-mode SITE records) and
/// shim-written (raw ALLOC/FREE/REALLOC records) traces.
private let traces = ["leak-whole", "live-whole", "shim-leak-whole", "shim-functions-whole"]

@Test(arguments: traces)
func aTraceCutAtEveryOffsetIsReadUpToItsLastWholeRecordWithAWarning(name: String) throws {
  let whole = try corpusTrace(name)
  let path = try scratchFile()
  try write(whole, to: path)
  let full = try #require(analyze(path, name))
  #expect(full.summary.warnings.isEmpty, "\(full.summary.warnings)")
  for cut in 0..<whole.count {
    try write(whole[..<cut], to: path)
    guard let a = analyze(path, "\(name) cut at \(cut)") else {
      #expect(cut < TraceHeader.size, "\(name) cut at \(cut) was refused")
      continue
    }
    #expect(!a.summary.warnings.isEmpty, "\(name) cut at \(cut) has no warning")
    #expect(a.summary.totals.allocations <= full.summary.totals.allocations, "\(name) cut at \(cut)")
  }
}

@Test(arguments: traces)
func aTraceWithAnyBitFlippedGivesAnErrorOrAResult(name: String) throws {
  let whole = try corpusTrace(name)
  let path = try scratchFile()
  // Every other bit of the compressed traces; every 7th of the larger raw ones.
  let step = whole.count > 1500 ? 7 : 2
  var results = 0
  for bit in stride(from: 0, to: whole.count * 8, by: step) {
    var flipped = whole
    flipped[bit / 8] ^= 1 << UInt8(bit % 8)
    try write(flipped, to: path)
    if analyze(path, "\(name) with bit \(bit) flipped") != nil { results += 1 }
  }
  #expect(results > 0)
}
