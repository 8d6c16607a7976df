import CMemsiftFormat
import CZstd
import Foundation
import MemsiftFormat
import Testing
import _MemsiftTestSupport

/// Writes `bytes` to a fresh file and returns its path.
func writeTemporary(_ bytes: [UInt8], name: String = "t.trace") throws -> String {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("memsift-format-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  let url = dir.appendingPathComponent(name)
  try Data(bytes).write(to: url)
  return url.path
}

func readAll(_ path: String) throws -> (TraceReader, [TraceRecord]) {
  let reader = try TraceReader(path: path)
  var records: [TraceRecord] = []
  try reader.forEachRecord { records.append($0) }
  return (reader, records)
}

func sampleTrace() -> RecordBuilder {
  var b = RecordBuilder()
  b.header()
  b.process(arguments: ["victim", "--n", "3"])
  b.stack(1, frames: [0x401000, 0x402000])
  b.alloc(0x1000, 100)
  b.realloc(0x1000, 0x2000, 300)
  b.free(0x2000)
  b.end(kind: MS_EXIT_EXIT.rawValue, status: 3)
  return b
}

@Test func everyRecordKindRoundTripsThroughTheCLayout() throws {
  let (reader, records) = try readAll(try writeTemporary(sampleTrace().bytes))
  #expect(reader.header.pid == 42)
  #expect(reader.warnings.isEmpty)
  #expect(records.count == 7)
  guard case .process(let p) = records[0] else { Issue.record("first record is not PROCESS"); return }
  #expect(p.executable == "/bin/victim")
  #expect(p.arguments == ["victim", "--n", "3"])
  #expect(records[1] == .stack(id: StackID(1), frames: [0x401000, 0x402000], python: []))
  #expect(records[2] == .alloc(timeNs: 2_000, ptr: 0x1000, size: 100, stack: StackID(1), tid: 7, function: .malloc))
  #expect(records[3] == .realloc(timeNs: 4_000, oldPtr: 0x1000, size: 300, stack: StackID(1), tid: 7, function: .realloc))
  #expect(records[4] == .reallocDone(timeNs: 4_000, oldPtr: 0x1000, newPtr: 0x2000, tid: 7))
  #expect(records[5] == .free(timeNs: 3_000, ptr: 0x2000))
  guard case .end(let end) = records[6] else { Issue.record("last record is not END"); return }
  #expect(end.kind == .exit)
  #expect(end.status == 3)
}

@Test func aTruncatedFileIsReadUpToItsLastWholeRecord() throws {
  let whole = sampleTrace().bytes
  // Cut the END record (56 bytes) in half.
  let cut = Array(whole[0..<(whole.count - 28)])
  let (reader, records) = try readAll(try writeTemporary(cut))
  #expect(records.count == 6)
  #expect(reader.isTruncated)
  #expect(reader.warnings.count == 1)
  #expect(reader.warnings.first?.contains("truncated") == true)
}

@Test func aDamagedRecordStopsReadingWithAWarningNotACrash() throws {
  var bytes = sampleTrace().bytes
  // The ALLOC record (the third) gets size 3: impossible (not a multiple of 8).
  var allocOffset = TraceHeader.size
  for _ in 0..<2 { allocOffset += Int(bytes[allocOffset]) | Int(bytes[allocOffset + 1]) << 8 }
  bytes[allocOffset] = 3
  bytes[allocOffset + 1] = 0
  let (reader, records) = try readAll(try writeTemporary(bytes))
  #expect(reader.isCorrupt)
  #expect(records.count == 2)
  #expect(reader.warnings.first?.contains("damaged record") == true)
}

@Test func recordTypesFromANewerWriterAreSkippedBySize() throws {
  var b = RecordBuilder()
  b.header()
  b.process()
  b.unknown(type: 200, payload: 20)
  b.alloc(0x1000, 10)
  let (reader, records) = try readAll(try writeTemporary(b.bytes))
  #expect(reader.warnings.isEmpty)
  #expect(records.count == 3)
  #expect(records[1] == .unknown(type: 200))
  if case .alloc(_, let ptr, let size, _, _, _) = records[2] {
    #expect(ptr == 0x1000 && size == 10)
  } else {
    Issue.record("the record after the unknown one was not read")
  }
}

@Test func aFileThatIsNotATraceIsRefusedWithAReason() throws {
  let path = try writeTemporary(Array("#!/bin/sh\necho hello, this is not a trace at all\n".utf8))
  #expect(throws: TraceError.notATrace("not a memsift trace (bad magic)")) { try TraceReader(path: path) }
  let empty = try writeTemporary([])
  #expect(throws: TraceError.notATrace("file is shorter than a trace header")) { try TraceReader(path: empty) }
  #expect(throws: TraceError.self) { try TraceReader(path: "/nonexistent/trace") }
}

@Test func aTraceFromANewerFormatVersionIsRefused() throws {
  var b = RecordBuilder()
  b.header(version: UInt32(MEMSIFT_FORMAT_VERSION) + 1)
  let path = try writeTemporary(b.bytes)
  #expect(throws: TraceError.unsupportedVersion(UInt32(MEMSIFT_FORMAT_VERSION) + 1)) { try TraceReader(path: path) }
}

/// The collector's layout: a raw header, then the records as one zstd stream.
func compressedTrace(records: [UInt8], flushAfter: Int) -> [UInt8] {
  var b = RecordBuilder()
  b.header(flags: MS_FILE_ZSTD)
  var out = b.bytes
  let cctx = ZSTD_createCCtx()!
  defer { ZSTD_freeCCtx(cctx) }
  var buffer = [UInt8](repeating: 0, count: ZSTD_compressBound(records.count) + 1024)
  func run(_ slice: ArraySlice<UInt8>, _ mode: ZSTD_EndDirective) {
    slice.withUnsafeBytes { src in
      var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
      buffer.withUnsafeMutableBytes { dst in
        var output = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
        _ = ZSTD_compressStream2(cctx, &output, &input, mode)
        out.append(contentsOf: dst[0..<output.pos])
      }
    }
  }
  run(records[0..<flushAfter], ZSTD_e_flush)
  run(records[flushAfter...], ZSTD_e_end)
  return out
}

@Test func aCompressedTraceReadsLikeARawOne() throws {
  let raw = sampleTrace().bytes
  let records = Array(raw[TraceHeader.size...])
  let (reader, decoded) = try readAll(try writeTemporary(compressedTrace(records: records, flushAfter: records.count / 2)))
  #expect(reader.header.isCompressed)
  #expect(reader.warnings.isEmpty)
  #expect(decoded.count == 7)
}

@Test func aCompressedTraceCutAfterAFlushKeepsEverythingBeforeTheFlush() throws {
  // A collector killed mid-run leaves a stream that stops after a flush.
  let raw = sampleTrace().bytes
  let records = Array(raw[TraceHeader.size...])
  let flushAt = records.count - 56  // everything but END
  let file = compressedTrace(records: records, flushAfter: flushAt)
  // Find the shortest prefix that still yields the 6 flushed records.
  var cutFile: [UInt8] = []
  for cut in stride(from: file.count - 1, to: TraceHeader.size, by: -1) {
    let (_, decoded) = try readAll(try writeTemporary(Array(file[0..<cut])))
    if decoded.count < 6 { break }
    cutFile = Array(file[0..<cut])
  }
  let (reader, decoded) = try readAll(try writeTemporary(cutFile))
  #expect(decoded.count == 6)
  #expect(reader.isTruncated)
}

@Test func pythonFramesAndCodeObjectsRoundTrip() throws {
  var b = RecordBuilder()
  b.header()
  b.process()
  b.code(3, name: "Service.handle", file: "/srv/app.py", firstLine: 40, lineTable: [0x80, 0x00, 0xd8])
  b.stack(1, frames: [0x401000], python: [(3, 7, false), (4, -1, true)])
  let (reader, records) = try readAll(try writeTemporary(b.bytes))
  #expect(reader.warnings.isEmpty)
  #expect(
    records[1]
      == .code(
        PythonCode(
          id: 3, address: 0x7f00_1000 + 0x300, firstLine: 40, name: "Service.handle", file: "/srv/app.py",
          lineTable: [0x80, 0x00, 0xd8], truncated: false)))
  #expect(
    records[2]
      == .stack(
        id: StackID(1), frames: [0x401000],
        python: [
          PythonFrameRef(code: 3, instruction: 7, isEntry: false), PythonFrameRef(code: 4, instruction: -1, isEntry: true),
        ]))
}

/// A version 1 STACK record had one 32-bit depth where version 2 has a
/// 16-bit native depth and a 16-bit Python depth: the same bytes when no
/// Python frames follow.
@Test func aVersionOneStackReadsAsNativeFramesOnly() throws {
  var b = RecordBuilder()
  b.header(version: 1)
  b.process()
  b.stack(9, frames: [0x1, 0x2, 0x3])
  let (_, records) = try readAll(try writeTemporary(b.bytes))
  #expect(records[1] == .stack(id: StackID(9), frames: [0x1, 0x2, 0x3], python: []))
}

@Test func pythonStringsOfEveryKindDecode() {
  func decode(_ bytes: [UInt8], kind: UInt8) -> String {
    bytes.withUnsafeBytes { TraceRecord.pythonString($0, at: 0, count: bytes.count, kind: kind) }
  }
  #expect(decode(Array("café".unicodeScalars.map { UInt8($0.value) }), kind: 1) == "café")
  #expect(decode([0x3b, 0x04, 0x38, 0x04], kind: 2) == "лиш".prefix(2).description)
  #expect(decode([0x00, 0xf6, 0x01, 0x00], kind: 4) == "😀")
  // A UCS-4 value that is no Unicode scalar reads as U+FFFD, never a crash.
  #expect(decode([0xff, 0xff, 0xff, 0xff], kind: 4) == "\u{FFFD}")
}

@Test func aCodeRecordLongerThanItsSizeIsAnErrorNotACrash() throws {
  var b = RecordBuilder()
  b.header()
  b.process()
  b.code(1, name: "f", file: "x.py", firstLine: 1, lineTable: [])
  var bytes = b.bytes
  // The CODE record is last: claim a line table longer than it holds.
  let header = MemoryLayout<ms_file_header_t>.size
  let process = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: header, as: UInt32.self) })
  let lengthField = header + process + MemoryLayout<ms_code_record_t>.offset(of: \ms_code_record_t.linetable_len)!
  bytes[lengthField] = 0xff
  let (reader, records) = try readAll(try writeTemporary(bytes))
  #expect(records.count == 1)
  #expect(!reader.warnings.isEmpty)
}

@Test func aRecordSizeNoWriterWritesStopsReadingAtOnce() throws {
  // A size word of 0xFFFFFFF8 in a compressed stream
  // had the reader carry every byte after it in memory, as one record,
  // up to the end of the stream (64 MiB here, 4 GiB at most).
  var b = sampleTrace()
  b.raw([0xF8, 0xFF, 0xFF, 0xFF, UInt8(MS_REC_ALLOC.rawValue), UInt8(MS_STATE_COMMITTED.rawValue), 1, 0xA5])
  b.raw([UInt8](repeating: 0, count: 64 << 20))
  let records = Array(b.bytes[TraceHeader.size...])
  let (reader, decoded) = try readAll(try writeTemporary(compressedTrace(records: records, flushAfter: 8)))
  #expect(decoded.count == 7)
  #expect(reader.isCorrupt)
  #expect(reader.warnings.contains { $0.contains("more than any writer writes") }, "\(reader.warnings)")
}
