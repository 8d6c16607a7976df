import Foundation
import MemsiftAnalysis
import MemsiftReport
import MemsiftSymbols
import Testing
import _MemsiftTestSupport

/// Found by the fuzzer: a site holding 2^63 bytes (64 blocks of the
/// largest size the replay accepts, in a damaged trace) trapped in
/// `abs(bytesDiff)` (Int64.min), and in growth's conversion to Int64.
@Test func aSiteHoldingTwoToTheSixtyThreeBytesDiffsAndGrowsWithoutTrapping() throws {
  var b = RecordBuilder()
  b.header()
  b.process()
  b.stack(1, frames: [0x401000])
  b.stack(2, frames: [0x402000])
  b.alloc(0x8, 5, stack: 2, time: 2_000)
  for i in 1...64 { b.alloc(UInt64(i) << 4, HeapReplay.maxBlockSize, stack: 1, time: 2_000 + UInt64(i) * 1_000) }
  b.end()
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("memsift-hostile-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  let path = dir.appendingPathComponent("t.trace").path
  try Data(b.bytes).write(to: URL(fileURLWithPath: path))
  let points: [TracePoint] = [.start, .seconds(0.000_020), .seconds(0.000_040), .end]
  let analysis = try TraceAnalysis.read(path: path, points: points)
  let builder = SiteReportBuilder(analysis: analysis, symbolizer: Symbolizer(), grouping: .stack, keepAllocatorFrames: false)
  let captures = analysis.captures
  let rows = DiffReport.rows(
    old: DiffSide(builder: builder, capture: captures[0]), new: DiffSide(builder: builder, capture: captures[3]), top: nil)
  #expect(rows.count == 2)
  #expect(rows.first?.bytesDiff.magnitude == 1 << 63)
  let growth = GrowthReport.rows(builder: builder, captures: captures, top: nil)
  #expect(growth.first?.growth == Int64.max)
  #expect(captures[3].totalBytes == UInt64(1) << 63 + 5)
}

/// Found by the fuzzer: a site's share of a total that wrapped (two sites
/// of 2^63 + 1 and 2^63 bytes allocated: the total reads 1) trapped
/// converting the percentage to Int in `String(format1:)`.
@Test func aShareOfAWrappedTotalPrintsWithoutTrapping() throws {
  var b = RecordBuilder()
  b.header()
  b.process()
  b.stack(1, frames: [0x401000])
  b.stack(2, frames: [0x402000])
  b.alloc(0x8, 1, stack: 2)
  for i in 1...128 { b.alloc(UInt64(i) << 4, HeapReplay.maxBlockSize, stack: UInt32(1 + i % 2)) }
  b.end()
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("memsift-hostile-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  let path = dir.appendingPathComponent("t.trace").path
  try Data(b.bytes).write(to: URL(fileURLWithPath: path))
  let analysis = try TraceAnalysis.read(path: path)
  #expect(analysis.summary.totals.bytesAllocated == 1)
  let builder = SiteReportBuilder(analysis: analysis, symbolizer: Symbolizer(), grouping: .stack, keepAllocatorFrames: false)
  let text = SiteText.section(.allocated, rows: builder.rows(by: .allocated, top: nil), summary: analysis.summary)
  #expect(text.contains("(huge%)"), "\(text)")
}
