import CMemsiftFormat
import MemsiftAnalysis
import MemsiftFormat
import Testing
import _MemsiftTestSupport

@testable import MemsiftCollector

/// The collector's EVENTS ops must replay to exactly what the raw records
/// replay to: every total, every site, every site's share of the peak.

/// Splits record bytes into decoded records.
private func records(_ bytes: [UInt8]) throws -> [TraceRecord] {
  try bytes.withUnsafeBytes { raw in
    var out: [TraceRecord] = []
    var at = 0
    while at + 8 <= raw.count {
      let size = Int(raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
      out.append(try TraceRecord.decode(UnsafeRawBufferPointer(rebasing: raw[at..<at + size])))
      at += size
    }
    return out
  }
}

private struct Replayed: Equatable {
  var totals: HeapTotals
  var sites: [StackID: SiteStats]
  var atPeak: [StackID: SiteLive]

  init(_ replay: HeapReplay) {
    totals = replay.finalTotals
    // Ops carry the coarse clock of the realloc's end, not of its start.
    totals.peakTimeNs = 0
    sites = replay.sites
    atPeak = replay.liveBySiteAtPeak
  }
}

private func replayRaw(_ bytes: [UInt8]) throws -> Replayed {
  var replay = HeapReplay()
  for r in try records(bytes) { replay.apply(r) }
  replay.finishInFlight()
  return Replayed(replay)
}

/// Compacts `bytes` in chunks of `chunk` records (as ring spans arrive),
/// then replays what the collector wrote.
private func replayCompacted(_ bytes: [UInt8], chunk: Int = 7) throws -> (Replayed, written: [UInt8]) {
  let compactor = EventCompactor(startNs: 1_000)
  var written: [UInt8] = []
  let write: (UnsafeRawBufferPointer) throws -> Void = { written += $0 }
  let raw = try records(bytes)
  var offsets: [Int] = [0]
  bytes.withUnsafeBytes { b in
    var at = 0
    while at + 8 <= b.count {
      at += Int(b.loadUnaligned(fromByteOffset: at, as: UInt32.self))
      offsets.append(at)
    }
  }
  for start in stride(from: 0, to: raw.count, by: chunk) {
    let end = min(start + chunk, raw.count)
    try bytes[offsets[start]..<offsets[end]].withUnsafeBytes { try compactor.consume($0, write: write) }
  }
  try compactor.finish(write: write)
  var replay = HeapReplay()
  var clock: UInt64 = 1_000
  for r in try records(written) {
    if case .events(let ops) = r {
      for op in try EventOpDecoder.decodeAll(ops) {
        if case .time(let d) = op { clock += d }
        replay.apply(op, at: clock)
      }
    } else {
      replay.apply(r)
    }
  }
  replay.finishInFlight()
  return (Replayed(replay), written)
}

/// A deterministic mix of every case the matching has: address reuse with
/// and without a free, unmatched frees, reallocs of three threads
/// interleaved, failed reallocs, realloc of NULL and to zero, temporaries,
/// threads that die inside a realloc.
private func hostileEvents(seed: UInt64, count: Int, sampled: Bool) -> [UInt8] {
  var b = RecordBuilder()
  if sampled { b.sampling(rate: 4096) }
  var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  func next(_ n: UInt64) -> UInt64 {
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    return state % n
  }
  var inFlight: [UInt32: UInt64] = [:]
  for i in 0..<count {
    let time = 2_000 + UInt64(i) * 700
    let ptr = 0x1000 + next(48) * 16
    let stack = UInt32(1 + next(5))
    let size = [0, 16, 100, 4096, 70_000][Int(next(5))]
    let tid = UInt32(1 + next(3))
    switch next(10) {
    case 0...3: b.alloc(ptr, UInt64(size), stack: stack, time: time, function: UInt8(1 + next(3)), tid: tid)
    case 4...6: b.free(ptr, time: time)
    case 7:
      if let old = inFlight.removeValue(forKey: tid) {
        let new: UInt64 = next(4) == 0 ? 0 : 0x1000 + next(48) * 16
        b.reallocDone(old, new, time: time, tid: tid)
      } else {
        let old: UInt64 = next(5) == 0 ? 0 : ptr
        inFlight[tid] = old
        b.reallocBegin(old, UInt64(size), stack: stack, time: time, tid: tid)
      }
    case 8: b.reallocDone(ptr, ptr, time: time, tid: tid)  // no matching begin: ignored
    default: b.realloc(ptr, next(3) == 0 ? 0 : ptr + 16, UInt64(size), stack: stack, time: time)
    }
  }
  return b.bytes
}

@Test(arguments: 1...12)
func compactedEventsReplayExactlyAsTheRawRecords(seed: Int) throws {
  let bytes = hostileEvents(seed: UInt64(seed), count: 4_000, sampled: seed % 4 == 0)
  let raw = try replayRaw(bytes)
  let (compacted, written) = try replayCompacted(bytes, chunk: 1 + seed % 9)
  #expect(raw.totals.allocations > 500 && raw.totals.unmatchedFrees > 0 && raw.totals.reusedWithoutFree > 0)
  #expect(raw.totals.temporaryAllocations > 0)
  #expect(compacted == raw)
  // Nothing but the EVENTS ops (and the SAMPLING record) is written.
  let kinds = try records(written).map { r -> String in
    switch r {
    case .events: return "events"
    case .sampling: return "sampling"
    default: return "\(r)"
    }
  }
  #expect(Set(kinds).isSubset(of: ["events", "sampling"]), "\(Set(kinds))")
}

@Test func otherRecordsKeepTheirPlaceAmongTheEvents() throws {
  var b = RecordBuilder()
  b.alloc(0x10, 100, time: 2_000_000)
  b.stack(3, frames: [0xdead])
  b.alloc(0x20, 50, stack: 3, time: 9_000_000)
  b.free(0x10, time: 9_000_000)
  b.end()
  let (replayed, written) = try replayCompacted(b.bytes, chunk: 100)
  let kinds = try records(written).map { r -> String in
    switch r {
    case .events: return "events"
    case .stack: return "stack"
    case .end: return "end"
    default: return "other"
    }
  }
  #expect(kinds == ["events", "stack", "events", "end"])
  #expect(replayed.totals.leakedBytes == 50 && replayed.totals.temporaryAllocations == 0)
  #expect(replayed.sites[StackID(3)]?.leakedBytes == 50)
}

@Test func eventOpsRoundTripAndDamageIsAnError() throws {
  let ops: [EventOp] = [
    .info(size: 1 << 40, stack: StackID(70_000), function: 2), .alloc(0), .time(123_456_789),
    .free(0, temporary: true), .allocNoCall(300), .detach(5), .restore(5), .release(9, temporary: false),
    .release(9, temporary: true), .stale(1), .freeUnmatched, .releaseUnmatched, .call(3), .free(2, temporary: false),
  ]
  var encoder = EventOpEncoder()
  ops.forEach { encoder.append($0) }
  let bytes = encoder.bytes
  #expect(try EventOpDecoder.decodeAll(bytes) == ops)
  // Cut inside the last op's varint, or an extended op nobody defined.
  for damaged in [Array(bytes.dropLast()) + [0x80], [UInt8(15 << 2 | 3)]] {
    #expect(throws: RecordError.self) { try EventOpDecoder.decodeAll(damaged) }
  }
}
