import CMemsiftFormat
import Foundation
import MemsiftFormat

/// Replays allocation events into a live set and keeps the totals, with
/// heaptrack's definitions (DESIGN.md): realloc counts as free(old) plus an
/// allocation of the new block; a temporary allocation is one freed with no
/// other allocation in between.
///
/// It also keeps the same figures per allocation site (the stack of the
/// call), in the same pass: memory grows with the live blocks and the
/// distinct stacks, never with the number of events.
///
/// A site's `peakBytes` is what it held at the moment the whole heap reached
/// its peak. Lazy epochs give that without a snapshot per peak: `peakEpoch`
/// counts the new peaks reached; every site keeps the epoch up to which its
/// `liveAtPeak` is known. Before a site's live bytes change, a site that has
/// not been synced since the latest peak copies its live bytes (unchanged
/// since that peak, or it would have been synced) into `liveAtPeak`. The
/// epoch moves after the event that set the peak is applied, so that event's
/// own site counts it.
public struct HeapReplay {
  /// A block that is still allocated.
  public struct LiveBlock {
    public var size: UInt64
    public var stack: StackID
    /// Index of the block's site in `siteStates`.
    var site: Int32
  }

  /// The running figures of one site.
  struct RunningSite {
    var stack: StackID
    var allocations: UInt64 = 0
    var bytesAllocated: UInt64 = 0
    var temporaryAllocations: UInt64 = 0
    var liveBytes: UInt64 = 0
    var liveCount: UInt64 = 0
    /// The site's live bytes at the peak numbered `syncedEpoch`.
    var liveAtPeak: UInt64 = 0
    /// The site's live blocks at the same peak.
    var countAtPeak: UInt64 = 0
    var syncedEpoch: UInt64
    /// Changed since `takeChangedSites` last listed it.
    var changed = false
    /// Live bytes when `takeChangedSites` last listed it.
    var reportedBytes: UInt64 = 0

    /// Live bytes at the latest peak, `epoch` being its number.
    func bytesAtPeak(_ epoch: UInt64) -> UInt64 { syncedEpoch < epoch ? liveBytes : liveAtPeak }
    func countAtPeak(_ epoch: UInt64) -> UInt64 { syncedEpoch < epoch ? liveCount : countAtPeak }
  }

  private var rawTotals = HeapTotals()
  /// Calls per function, indexed by `AllocFunction` raw value (0: unknown,
  /// `freeSlot`: free): counted without hashing a name per event.
  private var callCounts = [UInt64](repeating: 0, count: 11)
  private static let freeSlot = 10
  /// Blocks allocated and not yet freed, by address.
  private var live = AddressTable<LiveBlock>()
  /// How many blocks are live now.
  public var liveCount: Int {
    // Only a damaged trace (a SITE record or EVENTS ops for a site whose
    // blocks another kind of record holds) takes the sum out of range.
    max(0, live.count &+ Int(truncatingIfNeeded: summarizedCount) &+ compactLive)
  }
  /// Live blocks that EVENTS ops (version 4) account for, not in `live`.
  private var compactLive = 0
  /// The allocation infos EVENTS ops define, by number.
  private var infos: [Info] = []
  /// Ops that named an info never defined (a damaged trace); skipped.
  public private(set) var undefinedInfos: UInt64 = 0
  /// Events no allocator makes (a damaged trace): a block at address 0, a
  /// size past any address space, an EVENTS free at a site that holds no
  /// block; skipped.
  public private(set) var impossibleEvents: UInt64 = 0
  /// No block (or heap, or sampling rate) is larger: 128 PiB, the address
  /// space of 5-level paging. Larger sizes are damage; below it, byte sums
  /// wrap rather than trap, as only a damaged trace overflows them.
  public static let maxBlockSize: UInt64 = 1 << 57

  /// What an EVENTS info stands for: the block size it counts (estimated
  /// when the trace is a sample) and its site.
  struct Info {
    var size: UInt64
    var site: Int32
  }
  /// Live blocks that SITE records (live mode) account for, not in `live`.
  private var summarizedCount: UInt64 = 0
  /// Sites changed since `takeChangedSites` last listed them.
  private var changedSites: [Int32] = []
  /// Whether to note changed sites: only live mode lists them, and a
  /// report would pay a branch and a list per event for nothing.
  private let tracksChanges: Bool

  /// The totals so far, with the calls per function by C name.
  public var totals: HeapTotals {
    var t = rawTotals
    for (i, n) in callCounts.enumerated() where n > 0 {
      let name = i == Self.freeSlot ? "free" : (AllocFunction(rawValue: UInt8(i))?.name ?? "unknown")
      t.calls[name, default: 0] += n
    }
    return t
  }
  /// Bytes requested and not yet freed, now.
  public private(set) var liveBytes: UInt64 = 0
  private var lastAllocation: UInt64?
  /// Reallocs between their two records, by thread: the old block is on
  /// its way out and no longer counted live.
  private var reallocsInFlight: [UInt32: (old: UInt64, block: LiveBlock?, size: UInt64, stack: StackID, time: UInt64)] = [:]
  /// Sites in order of first allocation. The shim numbers stacks from 1
  /// up, so a site is found by its stack id in `siteByID` (-1: none yet);
  /// ids too large for it (another writer, a damaged trace) go to `siteIndex`.
  private var siteStates: [RunningSite] = []
  private var siteByID: [Int32] = []
  private var siteIndex: [StackID: Int32] = [:]
  private static let maxDirectID = 1 << 22
  /// How many times the heap reached a new peak.
  private var peakEpoch: UInt64 = 0

  /// Set by the trace's MS_REC_SAMPLING record: each allocation's bytes
  /// then count as the unbiased estimate of what it stands for.
  public private(set) var sampleRate: UInt64 = 0

  /// - Parameter tracksChanges: note which sites change, for `takeChangedSites`.
  public init(tracksChanges: Bool = false) { self.tracksChanges = tracksChanges }

  /// A sampled allocation of `size` bytes was recorded with probability
  /// p = 1 - exp(-size/rate): it stands for size/p bytes (Horvitz-Thompson,
  /// as tcmalloc's heap profiles scale).
  static func estimatedBytes(_ size: UInt64, rate: UInt64) -> UInt64 {
    guard rate > 0, size > 0 else { return size }
    let p = -expm1(-Double(size) / Double(rate))
    return UInt64(min((Double(size) / p).rounded(), Double(maxBlockSize)))
  }

  /// Applies one record; records that are not heap events are ignored.
  public mutating func apply(_ record: TraceRecord) {
    switch record {
    case .alloc(let time, let ptr, let size, let stack, _, let function):
      count(function)
      guard ptr != 0 else {
        impossibleEvents += 1
        return
      }
      allocate(ptr, size, stack, time)
    case .free(_, let ptr):
      callCounts[Self.freeSlot] += 1
      deallocate(ptr)
    case .realloc(let time, let old, let size, let stack, let tid, let function):
      count(function)
      var block: LiveBlock?
      if old != 0, let b = live.removeValue(forKey: old) {
        block = b
        siteLost(b)
      }
      reallocsInFlight[tid] = (old, block, size, stack, time)
    case .reallocDone(let time, let old, let new, let tid):
      guard let begun = reallocsInFlight.removeValue(forKey: tid), begun.old == old else { return }
      if new == 0 && begun.size > 0 {
        restore(begun.old, begun.block, time)  // failed: the old block is untouched
        return
      }
      if old != 0 { release(old, begun.block) }
      if new != 0 { allocate(new, begun.size, begun.stack, begun.time) }
    case .site(let state):
      setSite(state)
    case .events:
      break  // ops come one by one to `apply(_:at:)`
    case .sampling(let rate):
      guard rate <= Self.maxBlockSize else {
        impossibleEvents += 1
        return
      }
      // Written before any event; a late one would rescale half a trace.
      if rawTotals.allocations == 0 { sampleRate = rate }
    default:
      break
    }
  }

  /// Calls EVENTS ops recorded: allocation calls, free calls, realloc calls.
  public private(set) var eventCalls: UInt64 = 0

  /// Applies the ops of an EVENTS record from byte `start`, the event clock
  /// being `clock`. Stops after a TIME op, returning the offset after it, so
  /// the caller sees each new clock value (time points); nil at the end.
  ///
  /// - Throws: `RecordError` for ops that do not decode.
  public mutating func applyEvents(_ ops: [UInt8], from start: Int, clock: inout UInt64) throws -> Int? {
    try ops.withUnsafeBytes { raw in
      var decoder = EventOpDecoder(raw, at: start)
      while let op = try decoder.next() {
        switch op {
        case .alloc(let i): allocate(info: i, counted: true, at: clock)
        case .free(let i, let temporary): free(info: i, temporary: temporary)
        case .time(let d):
          clock &+= d
          return decoder.offset
        default: apply(op, at: clock)
        }
      }
      return nil
    }
  }

  @inline(__always)
  private mutating func allocate(info i: UInt32, counted: Bool, at time: UInt64) {
    guard let info = info(i) else { return }
    if counted {
      callCounts[Int(infoFunctions[Int(i)])] += 1
      eventCalls += 1
    }
    rawTotals.allocations += 1
    rawTotals.bytesAllocated &+= info.size
    siteStates[Int(info.site)].allocations += 1
    siteStates[Int(info.site)].bytesAllocated &+= info.size
    gain(info)
    notePeak(time)
  }

  @inline(__always)
  private mutating func free(info i: UInt32, temporary: Bool) {
    callCounts[Self.freeSlot] += 1
    eventCalls += 1
    guard let info = info(i), lose(info) else { return }
    countRelease(info, temporary: temporary)
  }

  /// Applies one op of an EVENTS record; `time`: the event clock at it.
  /// The collector matched the blocks, so no address table is needed: a
  /// block is its info's size at its info's site.
  public mutating func apply(_ op: EventOp, at time: UInt64) {
    switch op {
    case .info(var size, let stack, let function):
      if size > Self.maxBlockSize {
        impossibleEvents += 1
        size = 0
      }
      let estimate = sampleRate > 0 ? Self.estimatedBytes(size, rate: sampleRate) : size
      infos.append(Info(size: estimate, site: site(of: stack)))
      infoFunctions.append(Int(function) < Self.freeSlot ? function : 0)
    case .alloc(let i): allocate(info: i, counted: true, at: time)
    case .allocNoCall(let i): allocate(info: i, counted: false, at: time)
    case .free(let i, let temporary): free(info: i, temporary: temporary)
    case .detach(let i):
      if let info = info(i) { _ = lose(info) }
    case .restore(let i):
      guard let info = info(i) else { return }
      gain(info)
      notePeak(time)
    case .release(let i, let temporary):
      if let info = info(i) { countRelease(info, temporary: temporary) }
    case .stale(let i):
      guard let info = info(i), lose(info) else { return }
      rawTotals.reusedWithoutFree += 1
    case .freeUnmatched:
      callCounts[Self.freeSlot] += 1
      eventCalls += 1
      rawTotals.unmatchedFrees += 1
    case .releaseUnmatched:
      rawTotals.unmatchedFrees += 1
    case .call(let function):
      callCounts[Int(function) < Self.freeSlot ? Int(function) : 0] += 1
      eventCalls += 1
    case .time:
      break
    }
  }

  /// The function of each info, apart from `infos` so the hot path reads less.
  private var infoFunctions: [UInt8] = []

  @inline(__always)
  private mutating func info(_ i: UInt32) -> Info? {
    guard Int(i) < infos.count else {
      undefinedInfos += 1
      return nil
    }
    return infos[Int(i)]
  }

  @inline(__always)
  private mutating func gain(_ info: Info) {
    liveGained(site: Int(info.site), size: info.size)
    compactLive += 1
  }

  /// Takes a block of `info` out of the live set; false (an impossible
  /// event) when its site holds no block.
  @inline(__always)
  private mutating func lose(_ info: Info) -> Bool {
    let s = Int(info.site)
    guard siteStates[s].liveCount > 0 else {
      impossibleEvents += 1
      return false
    }
    liveLost(site: s, size: info.size)
    compactLive -= 1
    return true
  }

  private mutating func countRelease(_ info: Info, temporary: Bool) {
    rawTotals.frees += 1
    if temporary {
      rawTotals.temporaryAllocations += 1
      siteStates[Int(info.site)].temporaryAllocations += 1
    }
  }

  /// A site's state from a live-mode trace: its live set and counters as
  /// the collector replayed them.
  private mutating func setSite(_ state: SiteState) {
    guard
      [state.liveBytes, state.liveCount, state.allocations, state.bytesAllocated].allSatisfy({ $0 <= Self.maxBlockSize })
    else {
      impossibleEvents += 1
      return
    }
    let i = Int(site(of: state.stack))
    sync(i)
    let old = siteStates[i]
    liveBytes = liveBytes &- old.liveBytes &+ state.liveBytes
    summarizedCount = summarizedCount &- old.liveCount &+ state.liveCount
    rawTotals.allocations = rawTotals.allocations &- old.allocations &+ state.allocations
    rawTotals.bytesAllocated = rawTotals.bytesAllocated &- old.bytesAllocated &+ state.bytesAllocated
    rawTotals.frees = rawTotals.frees &+ (state.allocations &- old.allocations) &- (state.liveCount &- old.liveCount)
    siteStates[i].liveBytes = state.liveBytes
    siteStates[i].liveCount = state.liveCount
    siteStates[i].allocations = state.allocations
    siteStates[i].bytesAllocated = state.bytesAllocated
    notePeak(state.timeNs)
  }

  /// The sites whose state changed since the last call, with that state
  /// (what a live-mode collector writes at a snapshot); those that shrank
  /// first, so that replaying them in order never overshoots the heap.
  public mutating func takeChangedSites(at timeNs: UInt64) -> [SiteState] {
    var shrank: [SiteState] = []
    var grew: [SiteState] = []
    for i in changedSites.map(Int.init) {
      let st = siteStates[i]
      siteStates[i].changed = false
      let state = SiteState(
        timeNs: timeNs, stack: st.stack, liveBytes: st.liveBytes, liveCount: st.liveCount,
        allocations: st.allocations, bytesAllocated: st.bytesAllocated)
      if st.liveBytes < st.reportedBytes { shrank.append(state) } else { grew.append(state) }
      siteStates[i].reportedBytes = st.liveBytes
    }
    changedSites.removeAll(keepingCapacity: true)
    return shrank + grew
  }

  private mutating func count(_ function: AllocFunction?) {
    callCounts[Int(function?.rawValue ?? 0)] += 1
  }

  @inline(__always)
  private mutating func site(of stack: StackID) -> Int32 {
    let id = Int(stack.rawValue)
    if id < siteByID.count, siteByID[id] >= 0 { return siteByID[id] }
    return newSite(stack)
  }

  private mutating func newSite(_ stack: StackID) -> Int32 {
    let id = Int(stack.rawValue)
    if id >= Self.maxDirectID, let i = siteIndex[stack] { return i }
    let i = Int32(siteStates.count)
    siteStates.append(RunningSite(stack: stack, syncedEpoch: peakEpoch))
    if id < Self.maxDirectID {
      if id >= siteByID.count {
        siteByID.append(contentsOf: repeatElement(-1, count: max(id + 1, 2 * siteByID.count, 64) - siteByID.count))
      }
      siteByID[id] = i
    } else {
      siteIndex[stack] = i
    }
    return i
  }

  /// Brings a site's `liveAtPeak` up to the latest peak, and notes it
  /// changed; call before its live bytes change.
  @inline(__always)
  private mutating func sync(_ i: Int) {
    if tracksChanges && !siteStates[i].changed {
      siteStates[i].changed = true
      changedSites.append(Int32(i))
    }
    if siteStates[i].syncedEpoch < peakEpoch {
      siteStates[i].liveAtPeak = siteStates[i].liveBytes
      siteStates[i].countAtPeak = siteStates[i].liveCount
      siteStates[i].syncedEpoch = peakEpoch
    }
  }

  /// A block of `size` at site `s` joins the live heap, whichever record
  /// or op said so.
  @inline(__always)
  private mutating func liveGained(site s: Int, size: UInt64) {
    sync(s)
    liveBytes &+= size
    siteStates[s].liveBytes &+= size
    siteStates[s].liveCount += 1
  }

  @inline(__always)
  private mutating func liveLost(site s: Int, size: UInt64) {
    sync(s)
    liveBytes &-= size
    siteStates[s].liveBytes &-= size
    siteStates[s].liveCount -= 1
  }

  private mutating func siteGained(_ block: LiveBlock) { liveGained(site: Int(block.site), size: block.size) }

  private mutating func siteLost(_ block: LiveBlock) { liveLost(site: Int(block.site), size: block.size) }

  /// Call once an event has changed the live bytes.
  private mutating func notePeak(_ time: UInt64) {
    if liveBytes > rawTotals.peakBytes {
      rawTotals.peakBytes = liveBytes
      rawTotals.peakTimeNs = time
      peakEpoch += 1
    }
  }

  private mutating func allocate(_ ptr: UInt64, _ requested: UInt64, _ stack: StackID, _ time: UInt64) {
    guard requested <= Self.maxBlockSize else {
      impossibleEvents += 1
      return
    }
    let size = sampleRate > 0 ? Self.estimatedBytes(requested, rate: sampleRate) : requested
    let i = site(of: stack)
    let block = LiveBlock(size: size, stack: stack, site: i)
    if let stale = live.updateValue(block, forKey: ptr) {
      // The address came back without a free we saw (freed by a path that is
      // not interposed): forget the stale block.
      siteLost(stale)
      rawTotals.reusedWithoutFree += 1
    }
    rawTotals.allocations += 1
    rawTotals.bytesAllocated &+= size
    siteStates[Int(i)].allocations += 1
    siteStates[Int(i)].bytesAllocated &+= size
    siteGained(block)
    lastAllocation = ptr
    notePeak(time)
  }

  private mutating func deallocate(_ ptr: UInt64) {
    let block = live.removeValue(forKey: ptr)
    if let block {
      siteLost(block)
    }
    release(ptr, block)
  }

  /// Counts the release of a block already taken out of the live set
  /// (nil: allocated before tracing started, or by a path not interposed).
  private mutating func release(_ ptr: UInt64, _ block: LiveBlock?) {
    if let block {
      rawTotals.frees += 1
      if lastAllocation == ptr {
        rawTotals.temporaryAllocations += 1
        siteStates[Int(block.site)].temporaryAllocations += 1
      }
    } else {
      rawTotals.unmatchedFrees += 1
    }
    lastAllocation = nil
  }

  /// Puts back the old block of a realloc that did not free it. The block
  /// was alive all along, so the heap with it may reach a new peak (other
  /// threads allocated while the realloc ran).
  private mutating func restore(_ ptr: UInt64, _ block: LiveBlock?, _ time: UInt64) {
    guard let block else { return }
    if let stale = live.updateValue(block, forKey: ptr) {
      // Only a damaged trace gives the address out while the block lives.
      siteLost(stale)
      rawTotals.reusedWithoutFree += 1
    }
    siteGained(block)
    notePeak(time)
  }

  /// Puts back the old blocks of reallocs that never completed (the thread
  /// died inside the call): as far as the trace knows, they are alive.
  public mutating func finishInFlight() {
    for (_, r) in reallocsInFlight.sorted(by: { $0.key < $1.key }) { restore(r.old, r.block, r.time) }
    reallocsInFlight = [:]
  }

  /// The totals with the leak figures of the current live set (call
  /// `finishInFlight` first at the end of a trace).
  public var finalTotals: HeapTotals {
    var t = totals
    t.leakedBytes = liveBytes
    t.leakedAllocations = UInt64(liveCount)
    return t
  }

  /// The figures of every site that allocated, by stack (call
  /// `finishInFlight` first at the end of a trace): `peakBytes` is the
  /// site's share of `totals.peakBytes`, the leak figures are its current
  /// live set. The sums over sites equal the totals.
  /// What each site holds now (sites holding nothing are left out).
  public var liveBySite: [StackID: SiteLive] {
    var out: [StackID: SiteLive] = [:]
    for s in siteStates where s.liveCount > 0 { out[s.stack] = SiteLive(bytes: s.liveBytes, count: s.liveCount) }
    return out
  }

  /// What each site held when the whole heap was at its peak.
  public var liveBySiteAtPeak: [StackID: SiteLive] {
    var out: [StackID: SiteLive] = [:]
    for s in siteStates where s.countAtPeak(peakEpoch) > 0 {
      out[s.stack] = SiteLive(bytes: s.bytesAtPeak(peakEpoch), count: s.countAtPeak(peakEpoch))
    }
    return out
  }

  public var sites: [StackID: SiteStats] {
    var out: [StackID: SiteStats] = [:]
    out.reserveCapacity(siteStates.count)
    for s in siteStates {
      out[s.stack] = SiteStats(
        allocations: s.allocations, bytesAllocated: s.bytesAllocated, peakBytes: s.bytesAtPeak(peakEpoch),
        leakedBytes: s.liveBytes, leakedAllocations: s.liveCount, temporaryAllocations: s.temporaryAllocations)
    }
    return out
  }
}

/// What one allocation site (a stack, or a group of them) did over a trace.
public struct SiteStats: Codable, Equatable, Hashable, Sendable {
  /// Calls from the site that returned a block, realloc included.
  public var allocations: UInt64 = 0
  public var bytesAllocated: UInt64 = 0
  /// Bytes the site held when the whole heap reached its peak.
  public var peakBytes: UInt64 = 0
  /// Bytes and blocks the site still held when the trace ended.
  public var leakedBytes: UInt64 = 0
  public var leakedAllocations: UInt64 = 0
  /// The site's blocks freed with no other allocation in between.
  public var temporaryAllocations: UInt64 = 0

  public init(
    allocations: UInt64 = 0, bytesAllocated: UInt64 = 0, peakBytes: UInt64 = 0, leakedBytes: UInt64 = 0,
    leakedAllocations: UInt64 = 0, temporaryAllocations: UInt64 = 0
  ) {
    self.allocations = allocations
    self.bytesAllocated = bytesAllocated
    self.peakBytes = peakBytes
    self.leakedBytes = leakedBytes
    self.leakedAllocations = leakedAllocations
    self.temporaryAllocations = temporaryAllocations
  }

  /// Adds another site's figures (grouped views: by function, line, file, module).
  /// Peak bytes add up too: every site's figure is taken at the same moment.
  public static func += (lhs: inout SiteStats, rhs: SiteStats) {
    lhs.allocations &+= rhs.allocations
    lhs.bytesAllocated &+= rhs.bytesAllocated
    lhs.peakBytes &+= rhs.peakBytes
    lhs.leakedBytes &+= rhs.leakedBytes
    lhs.leakedAllocations &+= rhs.leakedAllocations
    lhs.temporaryAllocations &+= rhs.temporaryAllocations
  }

  public static func + (lhs: SiteStats, rhs: SiteStats) -> SiteStats {
    var sum = lhs
    sum += rhs
    return sum
  }

  enum CodingKeys: String, CodingKey {
    case allocations
    case bytesAllocated = "bytes_allocated"
    case peakBytes = "peak_bytes"
    case leakedBytes = "leaked_bytes"
    case leakedAllocations = "leaked_allocations"
    case temporaryAllocations = "temporary_allocations"
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
    case peakBytes = "peak_heap_bytes"
    case peakTimeNs = "peak_time_ns"
    case leakedBytes = "leaked_bytes"
    case leakedAllocations = "leaked_allocations"
    case temporaryAllocations = "temporary_allocations"
    case calls
    case unmatchedFrees = "unmatched_frees"
    case reusedWithoutFree = "reused_without_free"
  }
}

/// What a site holds at one moment.
public struct SiteLive: Equatable, Sendable {
  public var bytes: UInt64
  public var count: UInt64

  public init(bytes: UInt64, count: UInt64) {
    self.bytes = bytes
    self.count = count
  }
}
