import CMemsiftFormat
import Foundation
import MemsiftFormat
import Testing
import _MemsiftTestSupport

@testable import MemsiftCollector

/// Writes `records` through a TraceWriter that probes after `probeBytes`,
/// and reads the file back. Random allocation records compress to about a
/// quarter, identical ones to almost nothing: a threshold of 0.1 tells them apart.
private func roundTrip(_ records: RecordBuilder, chunks: Int, probeBytes: UInt64, poorRatio: Double) throws -> (
  Int32, [TraceRecord]
) {
  let path = FileManager.default.temporaryDirectory.appendingPathComponent("memsift-writer-\(UUID().uuidString).trace").path
  defer { unlink(path) }
  let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
  let header = TraceHeader(
    flags: 0, writer: MS_WRITER_COLLECTOR, pid: 42, ppid: 1, startWallNs: 0, startMonoNs: 1_000, pageSize: 4096)
  let writer = try TraceWriter(fd: fd, path: path, header: header, probeBytes: probeBytes, poorRatio: poorRatio)
  let bytes = records.bytes
  let step = bytes.count / chunks / 8 * 8
  var at = 0
  while at < bytes.count {
    let end = min(at + step, bytes.count)
    try bytes[at..<end].withUnsafeBytes { try writer.append($0) }
    if at % (4 * step) == 0 { try writer.flush() }
    at = end
  }
  try writer.finish(with: [])
  let level = writer.level
  var read: [TraceRecord] = []
  let reader = try TraceReader(path: path)
  try reader.forEachRecord { read.append($0) }
  #expect(reader.warnings.isEmpty, "\(reader.warnings)")
  return (level, read)
}

private func allocations(count: Int, random: Bool) -> RecordBuilder {
  var b = RecordBuilder()
  b.process()
  var x: UInt64 = 0x2545_F491_4F6C_DD1D
  for i in 0..<count {
    x ^= x << 13
    x ^= x >> 7
    x ^= x << 17
    b.alloc(random ? x & 0xffff_fff0 : 0x1000, random ? x >> 40 : 64, stack: random ? UInt32(x >> 50) : 1, time: UInt64(i))
  }
  return b
}

@Test func recordsThatDoNotCompressGoOnInAFrameAtLevelThreeAndReadAsOneStream() throws {
  let records = allocations(count: 20_000, random: true)
  let (level, read) = try roundTrip(records, chunks: 40, probeBytes: 64 << 10, poorRatio: 0.1)
  #expect(level == 3)
  #expect(read.count == 20_001)
  if case .alloc(let t, _, _, _, _, _) = read.last { #expect(t == 19_999) } else { Issue.record("\(String(describing: read.last))") }
}

@Test func recordsThatCompressStayAtLevelSix() throws {
  let records = allocations(count: 20_000, random: false)
  let (level, read) = try roundTrip(records, chunks: 40, probeBytes: 64 << 10, poorRatio: 0.1)
  #expect(level == 6)
  #expect(read.count == 20_001)
}
