import CMemsiftFormat
import MemsiftAnalysis
import MemsiftFormat

/// Full tracing (format 4): the collector matches every free to its
/// allocation and writes EVENTS ops that name the block's allocation info
/// (size, stack, function) instead of its address (`trace_format.h`).
/// Addresses and per-event times are what made the raw records
/// incompressible, and what made the reader's replay chase a million-entry
/// address table.
///
/// The matching is `HeapReplay`'s, step for step: the same realloc pairing
/// by thread, the same temporary rule, the same stale and unmatched
/// counts, so a report reads the same figures from either encoding.
final class EventCompactor {
  private struct Realloc {
    var old: UInt64
    var info: UInt32?
    var size: UInt64
    var stack: UInt32
    var function: UInt8
  }

  private var infos = InfoTable()
  /// Live blocks: address → info.
  private var live = AddressTable<UInt32>()
  private var lastAllocation: UInt64?
  private var reallocsInFlight: [UInt32: Realloc] = [:]
  /// The event clock as the ops have it.
  private var clock: UInt64
  private var ops = EventOpEncoder()

  init(startNs: UInt64) { clock = startNs }

  /// Takes whole records from the ring: heap events become ops; every
  /// other record goes to `write` as is, after the ops before it.
  func consume(_ records: UnsafeRawBufferPointer, write: (UnsafeRawBufferPointer) throws -> Void) throws {
    var at = 0
    var passStart = 0
    while at + 8 <= records.count {
      let size = Int(records.loadUnaligned(fromByteOffset: at, as: UInt32.self))
      guard size >= 8, at + size <= records.count else { break }
      let type = UInt32(records[at + 4])
      switch type {
      case MS_REC_ALLOC.rawValue, MS_REC_FREE.rawValue, MS_REC_REALLOC.rawValue, MS_REC_REALLOC_DONE.rawValue:
        if passStart < at {
          try flush(write: write)
          try write(UnsafeRawBufferPointer(rebasing: records[passStart..<at]))
        }
        event(UnsafeRawBufferPointer(rebasing: records[at..<at + size]), type: type)
        if ops.bytes.count >= EventOpEncoder.recordBytes { try flush(write: write) }
        passStart = at + size
      default:
        break
      }
      at += size
    }
    if passStart < at {
      try flush(write: write)
      try write(UnsafeRawBufferPointer(rebasing: records[passStart..<at]))
    }
  }

  /// Writes the ops so far as one EVENTS record.
  func flush(write: (UnsafeRawBufferPointer) throws -> Void) throws {
    guard !ops.isEmpty else { return }
    try ops.takeRecord().withUnsafeBytes { try write($0) }
  }

  /// Reallocs that never returned (their thread died inside the call):
  /// their old blocks are alive as far as the trace knows, as `HeapReplay`
  /// decides for a raw trace.
  func finish(write: (UnsafeRawBufferPointer) throws -> Void) throws {
    for (_, r) in reallocsInFlight.sorted(by: { $0.key < $1.key }) {
      if let info = r.info { restore(r.old, info) }
    }
    reallocsInFlight = [:]
    try flush(write: write)
  }

  private func event(_ record: UnsafeRawBufferPointer, type: UInt32) {
    let function = record[6]
    switch type {
    case MS_REC_ALLOC.rawValue:
      guard record.count >= MemoryLayout<ms_alloc_record_t>.size else { return }
      let r = record.loadUnaligned(as: ms_alloc_record_t.self)
      advance(r.time_ns)
      allocate(r.ptr, info(r.size, r.stack, function), counted: true)
    case MS_REC_FREE.rawValue:
      guard record.count >= MemoryLayout<ms_free_record_t>.size else { return }
      let r = record.loadUnaligned(as: ms_free_record_t.self)
      advance(r.time_ns)
      if let info = live.removeValue(forKey: r.ptr) {
        ops.append(.free(info, temporary: lastAllocation == r.ptr))
      } else {
        ops.append(.freeUnmatched)
      }
      lastAllocation = nil
    case MS_REC_REALLOC.rawValue:
      guard record.count >= MemoryLayout<ms_realloc_record_t>.size else { return }
      let r = record.loadUnaligned(as: ms_realloc_record_t.self)
      advance(r.time_ns)
      ops.append(.call(function))
      var old: UInt32?
      if r.old_ptr != 0, let info = live.removeValue(forKey: r.old_ptr) {
        ops.append(.detach(info))
        old = info
      }
      reallocsInFlight[r.tid] = Realloc(old: r.old_ptr, info: old, size: r.size, stack: r.stack, function: function)
    case MS_REC_REALLOC_DONE.rawValue:
      guard record.count >= MemoryLayout<ms_realloc_done_record_t>.size else { return }
      let r = record.loadUnaligned(as: ms_realloc_done_record_t.self)
      advance(r.time_ns)
      guard let begun = reallocsInFlight.removeValue(forKey: r.tid), begun.old == r.old_ptr else { return }
      if r.new_ptr == 0 && begun.size > 0 {
        // Failed: the old block is untouched.
        if let info = begun.info { restore(begun.old, info) }
        return
      }
      if begun.old != 0 {
        if let info = begun.info {
          ops.append(.release(info, temporary: lastAllocation == begun.old))
        } else {
          ops.append(.releaseUnmatched)
        }
        lastAllocation = nil
      }
      if r.new_ptr != 0 { allocate(r.new_ptr, info(begun.size, begun.stack, begun.function), counted: false) }
    default:
      break
    }
  }

  private func restore(_ ptr: UInt64, _ info: UInt32) {
    if let stale = live.updateValue(info, forKey: ptr) { ops.append(.stale(stale)) }
    ops.append(.restore(info))
  }

  private func allocate(_ ptr: UInt64, _ info: UInt32, counted: Bool) {
    if let stale = live.updateValue(info, forKey: ptr) { ops.append(.stale(stale)) }
    ops.append(counted ? .alloc(info) : .allocNoCall(info))
    lastAllocation = ptr
  }

  private func info(_ size: UInt64, _ stack: UInt32, _ function: UInt8) -> UInt32 {
    let (i, isNew) = infos.intern(size: size, stack: stack, function: function)
    if isNew { ops.append(.info(size: size, stack: StackID(stack), function: function)) }
    return i
  }

  /// Event times come from the coarse clock, a few ms apart, and threads
  /// may commit them slightly out of order: the ops' clock only moves forward.
  @inline(__always)
  private func advance(_ time: UInt64) {
    if time > clock {
      ops.append(.time(time - clock))
      clock = time
    }
  }
}
