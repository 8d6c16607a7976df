import MemsiftFormat

/// Replays allocation events into a live set and keeps the totals, with
/// heaptrack's definitions (DESIGN.md): realloc counts as free(old) plus an
/// allocation of the new block; a temporary allocation is one freed with no
/// other allocation in between.
public struct HeapReplay {
  /// A block that is still allocated.
  public struct LiveBlock {
    public var size: UInt64
    public var stack: StackID
  }

  public private(set) var totals = HeapTotals()
  /// Blocks allocated and not yet freed, by address.
  public private(set) var live: [UInt64: LiveBlock] = [:]
  private var liveBytes: UInt64 = 0
  private var lastAllocation: UInt64?
  /// Reallocs between their two records, by thread: the old block is on
  /// its way out and no longer counted live.
  private var reallocsInFlight: [UInt32: (old: UInt64, block: LiveBlock?, size: UInt64, stack: StackID, time: UInt64)] = [:]

  public init() {}

  /// Applies one record; records that are not heap events are ignored.
  public mutating func apply(_ record: TraceRecord) {
    switch record {
    case .alloc(let time, let ptr, let size, let stack, _, let function):
      count(function)
      allocate(ptr, size, stack, time)
    case .free(_, let ptr):
      totals.calls["free", default: 0] += 1
      deallocate(ptr)
    case .realloc(let time, let old, let size, let stack, let tid, let function):
      count(function)
      var block: LiveBlock?
      if old != 0, let b = live.removeValue(forKey: old) {
        block = b
        liveBytes -= b.size
      }
      reallocsInFlight[tid] = (old, block, size, stack, time)
    case .reallocDone(_, let old, let new, let tid):
      guard let begun = reallocsInFlight.removeValue(forKey: tid), begun.old == old else { return }
      if new == 0 && begun.size > 0 {
        restore(begun.old, begun.block)  // failed: the old block is untouched
        return
      }
      if old != 0 { release(old, begun.block) }
      if new != 0 { allocate(new, begun.size, begun.stack, begun.time) }
    default:
      break
    }
  }

  private mutating func count(_ function: AllocFunction?) {
    totals.calls[function?.name ?? "unknown", default: 0] += 1
  }

  private mutating func allocate(_ ptr: UInt64, _ size: UInt64, _ stack: StackID, _ time: UInt64) {
    if let stale = live.updateValue(LiveBlock(size: size, stack: stack), forKey: ptr) {
      // The address came back without a free we saw (freed by a path that is
      // not interposed): forget the stale block.
      liveBytes -= stale.size
      totals.reusedWithoutFree += 1
    }
    totals.allocations += 1
    totals.bytesAllocated += size
    liveBytes += size
    lastAllocation = ptr
    if liveBytes > totals.peakBytes {
      totals.peakBytes = liveBytes
      totals.peakTimeNs = time
    }
  }

  private mutating func deallocate(_ ptr: UInt64) {
    let block = live.removeValue(forKey: ptr)
    if let block { liveBytes -= block.size }
    release(ptr, block)
  }

  /// Counts the release of a block already taken out of the live set
  /// (nil: allocated before tracing started, or by a path not interposed).
  private mutating func release(_ ptr: UInt64, _ block: LiveBlock?) {
    if block == nil {
      totals.unmatchedFrees += 1
    } else {
      totals.frees += 1
      if lastAllocation == ptr { totals.temporaryAllocations += 1 }
    }
    lastAllocation = nil
  }

  private mutating func restore(_ ptr: UInt64, _ block: LiveBlock?) {
    guard let block else { return }
    live[ptr] = block
    liveBytes += block.size
  }

  /// Puts back the old blocks of reallocs that never completed (the thread
  /// died inside the call): as far as the trace knows, they are alive.
  public mutating func finishInFlight() {
    for (_, r) in reallocsInFlight { restore(r.old, r.block) }
    reallocsInFlight = [:]
  }

  /// The totals with the leak figures of the current live set (call
  /// `finishInFlight` first at the end of a trace).
  public var finalTotals: HeapTotals {
    var t = totals
    t.leakedBytes = liveBytes
    t.leakedAllocations = UInt64(live.count)
    return t
  }
}

/// Whole-trace heap figures (DESIGN.md definitions).
public struct HeapTotals: Codable, Equatable, Sendable {
  /// Calls that returned a block: every allocation function, realloc included.
  public var allocations: UInt64 = 0
  /// Blocks released: free() plus the old block of a moving or zero-size realloc.
  public var frees: UInt64 = 0
  public var bytesAllocated: UInt64 = 0
  public var peakBytes: UInt64 = 0
  /// Monotonic time of the peak (same clock as the trace's events).
  public var peakTimeNs: UInt64 = 0
  public var leakedBytes: UInt64 = 0
  public var leakedAllocations: UInt64 = 0
  public var temporaryAllocations: UInt64 = 0
  /// Calls per interposed function, by C name, failed reallocs included.
  public var calls: [String: UInt64] = [:]
  /// Frees of addresses the trace never saw allocated.
  public var unmatchedFrees: UInt64 = 0
  /// Allocations returning an address the trace still held as live.
  public var reusedWithoutFree: UInt64 = 0

  public init() {}

  enum CodingKeys: String, CodingKey {
    case allocations, frees
    case bytesAllocated = "bytes_allocated"
    case peakBytes = "peak_bytes"
    case peakTimeNs = "peak_time_ns"
    case leakedBytes = "leaked_bytes"
    case leakedAllocations = "leaked_allocations"
    case temporaryAllocations = "temporary_allocations"
    case calls
    case unmatchedFrees = "unmatched_frees"
    case reusedWithoutFree = "reused_without_free"
  }
}
