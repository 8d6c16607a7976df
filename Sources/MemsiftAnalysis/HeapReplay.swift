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
    case .realloc(let time, let old, let new, let size, let stack, _, let function):
      count(function)
      if new == 0 && size > 0 { return }  // failed: the old block is untouched
      if old != 0 { deallocate(old) }
      if new != 0 { allocate(new, size, stack, time) }
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
    guard let block = live.removeValue(forKey: ptr) else {
      // Allocated before tracing started, or by a path that is not interposed.
      totals.unmatchedFrees += 1
      lastAllocation = nil
      return
    }
    totals.frees += 1
    liveBytes -= block.size
    if lastAllocation == ptr { totals.temporaryAllocations += 1 }
    lastAllocation = nil
  }

  /// The totals with the leak figures of the current live set.
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
