import Foundation
import MemsiftAnalysis
import MemsiftFormat
import Testing

// Per-site figures of HeapReplay: attribution, the peak share of every site,
// and the invariant that sites add up to the totals.

private func alloc(_ ptr: UInt64, _ size: UInt64, site: UInt32, tid: UInt32 = 1, at time: UInt64 = 0) -> TraceRecord {
  .alloc(timeNs: time, ptr: ptr, size: size, stack: StackID(site), tid: tid, function: .malloc)
}

private func free(_ ptr: UInt64) -> TraceRecord { .free(timeNs: 0, ptr: ptr) }

private func reallocBegin(_ old: UInt64, _ size: UInt64, site: UInt32, tid: UInt32 = 1) -> TraceRecord {
  .realloc(timeNs: 0, oldPtr: old, size: size, stack: StackID(site), tid: tid, function: .realloc)
}

private func reallocDone(_ old: UInt64, _ new: UInt64, tid: UInt32 = 1) -> TraceRecord {
  .reallocDone(timeNs: 0, oldPtr: old, newPtr: new, tid: tid)
}

private func realloc(_ old: UInt64, _ new: UInt64, _ size: UInt64, site: UInt32) -> [TraceRecord] {
  [reallocBegin(old, size, site: site), reallocDone(old, new)]
}

private func replay(_ records: [TraceRecord], finish: Bool = true) -> HeapReplay {
  var r = HeapReplay()
  records.forEach { r.apply($0) }
  if finish { r.finishInFlight() }
  return r
}

private func site(_ r: HeapReplay, _ id: UInt32) -> SiteStats? { r.sites[StackID(id)] }

/// Every figure summed over sites equals the totals; peak bytes exactly.
private func expectSitesAddUp(_ r: HeapReplay, sourceLocation: SourceLocation = #_sourceLocation) {
  let t = r.finalTotals
  let sum = r.sites.values.reduce(SiteStats(), +)
  #expect(sum.allocations == t.allocations, sourceLocation: sourceLocation)
  #expect(sum.bytesAllocated == t.bytesAllocated, sourceLocation: sourceLocation)
  #expect(sum.peakBytes == t.peakBytes, sourceLocation: sourceLocation)
  #expect(sum.leakedBytes == t.leakedBytes, sourceLocation: sourceLocation)
  #expect(sum.leakedAllocations == t.leakedAllocations, sourceLocation: sourceLocation)
  #expect(sum.temporaryAllocations == t.temporaryAllocations, sourceLocation: sourceLocation)
}

@Test func eachSiteKeepsItsAllocationsBytesLeaksAndPeakShare() {
  let r = replay([
    alloc(0x1, 100, site: 1), alloc(0x2, 200, site: 2), alloc(0x3, 50, site: 1),  // peak 350
    free(0x2), alloc(0x4, 10, site: 2), free(0x3),
  ])
  #expect(site(r, 1) == SiteStats(allocations: 2, bytesAllocated: 150, peakBytes: 150, leakedBytes: 100, leakedAllocations: 1))
  #expect(site(r, 2) == SiteStats(allocations: 2, bytesAllocated: 210, peakBytes: 200, leakedBytes: 10, leakedAllocations: 1))
  #expect(r.finalTotals.peakBytes == 350)
  expectSitesAddUp(r)
}

@Test func aSiteWhoseBlocksWereAllFreedBeforeThePeakHasNoPeakBytes() {
  let r = replay([alloc(0x1, 100, site: 1), alloc(0x2, 100, site: 1), free(0x1), free(0x2), alloc(0x3, 500, site: 2)])
  #expect(site(r, 1)?.peakBytes == 0)
  #expect(site(r, 1)?.allocations == 2)
  #expect(site(r, 2)?.peakBytes == 500)
  expectSitesAddUp(r)
}

@Test func theEventThatSetsThePeakCountsForItsOwnSite() {
  // Site 1's own allocation makes the peak, then site 1 frees everything:
  // its share must include that allocation though it changed nothing after.
  let alone = replay([alloc(0x1, 100, site: 1), free(0x1)])
  #expect(site(alone, 1)?.peakBytes == 100)
  expectSitesAddUp(alone)

  let r = replay([
    alloc(0x1, 100, site: 1), alloc(0x2, 50, site: 2),
    alloc(0x3, 10, site: 1),  // peak 160, set by site 1
    free(0x1), free(0x3), alloc(0x4, 20, site: 2),
  ])
  #expect(site(r, 1)?.peakBytes == 110)
  #expect(site(r, 2)?.peakBytes == 50)
  #expect(r.finalTotals.peakBytes == 160)
  expectSitesAddUp(r)

  // The peak-setting site never touched again: synced at the end.
  let untouched = replay([alloc(0x1, 10, site: 2), free(0x1), alloc(0x2, 100, site: 1)])
  #expect(site(untouched, 1)?.peakBytes == 100)
  #expect(site(untouched, 2)?.peakBytes == 0)
  expectSitesAddUp(untouched)
}

@Test func aLaterPeakReplacesTheShareOfAnEarlierOne() {
  // Peak 1 (site 1: 100), then site 1 frees, site 2 climbs past it: site 1's
  // share is that of the later peak.
  let r = replay([alloc(0x1, 100, site: 1), free(0x1), alloc(0x2, 60, site: 2), alloc(0x3, 60, site: 1)])
  #expect(r.finalTotals.peakBytes == 120)
  #expect(site(r, 1)?.peakBytes == 60)
  #expect(site(r, 2)?.peakBytes == 60)
  expectSitesAddUp(r)
}

@Test func reallocReleasesFromTheOldSiteAndAllocatesOnItsOwnStack() {
  let r = replay([alloc(0x10, 100, site: 1), alloc(0x99, 1, site: 3)] + realloc(0x10, 0x20, 300, site: 2))
  #expect(site(r, 1) == SiteStats(allocations: 1, bytesAllocated: 100, peakBytes: 0, leakedBytes: 0, leakedAllocations: 0))
  #expect(site(r, 2) == SiteStats(allocations: 1, bytesAllocated: 300, peakBytes: 300, leakedBytes: 300, leakedAllocations: 1))
  expectSitesAddUp(r)

  // In place (same address): the block still moves to the realloc's site.
  let inPlace = replay([alloc(0x10, 100, site: 1)] + realloc(0x10, 0x10, 50, site: 2))
  #expect(site(inPlace, 1)?.leakedBytes == 0)
  #expect(site(inPlace, 1)?.peakBytes == 100)
  #expect(site(inPlace, 2)?.leakedBytes == 50)
  #expect(site(inPlace, 2)?.peakBytes == 0)
  expectSitesAddUp(inPlace)
}

@Test func temporariesCountOnTheSiteOfTheBlockFreed() {
  // 0x10 from site 1 is reallocated right away by site 2: the release of the
  // old block is a temporary of site 1; the new block, freed right away, one
  // of site 2.
  let r = replay([alloc(0x1, 8, site: 3), free(0x1), alloc(0x10, 100, site: 1)] + realloc(0x10, 0x20, 300, site: 2) + [free(0x20)])
  #expect(site(r, 3)?.temporaryAllocations == 1)
  #expect(site(r, 1)?.temporaryAllocations == 1)
  #expect(site(r, 2)?.temporaryAllocations == 1)
  #expect(r.finalTotals.temporaryAllocations == 3)
  expectSitesAddUp(r)
}

@Test func aReallocWhoseThreadDiedKeepsTheOldBlockOnItsOldSite() {
  let r = replay([alloc(0xA, 10, site: 1), reallocBegin(0xA, 30, site: 2)])
  #expect(site(r, 1) == SiteStats(allocations: 1, bytesAllocated: 10, peakBytes: 10, leakedBytes: 10, leakedAllocations: 1))
  #expect(site(r, 2) == nil)
  expectSitesAddUp(r)
}

@Test func aFailedReallocKeepsTheOldBlockOnItsOldSite() {
  let r = replay([alloc(0xA, 10, site: 1)] + realloc(0xA, 0, 1 << 40, site: 2))
  #expect(site(r, 1)?.leakedBytes == 10)
  #expect(site(r, 1)?.peakBytes == 10)
  #expect(site(r, 2) == nil)
  expectSitesAddUp(r)
}

@Test func aFailedReallocsBlockCountsTowardsAPeakReachedWhileItRan() {
  // Thread 2 allocates while thread 1's realloc of 0xA runs and fails: 0xA
  // was alive all along, so the heap held 150 bytes.
  let r = replay([
    alloc(0xA, 100, site: 1), reallocBegin(0xA, 1 << 40, site: 3, tid: 1), alloc(0xB, 50, site: 2, tid: 2),
    reallocDone(0xA, 0, tid: 1),
  ])
  #expect(r.finalTotals.peakBytes == 150)
  #expect(site(r, 1)?.peakBytes == 100)
  #expect(site(r, 2)?.peakBytes == 50)
  expectSitesAddUp(r)
}

@Test func anAddressReusedWithoutAFreeLeavesItsOldSite() {
  let r = replay([alloc(0x1, 100, site: 1), alloc(0x1, 40, site: 2)])
  #expect(site(r, 1)?.leakedAllocations == 0)
  #expect(site(r, 1)?.leakedBytes == 0)
  #expect(site(r, 1)?.peakBytes == 100)
  #expect(site(r, 2)?.leakedBytes == 40)
  expectSitesAddUp(r)
}

@Test func siteStatsMergeAndEncodeWithTheReportKeys() throws {
  var a = SiteStats(allocations: 1, bytesAllocated: 2, peakBytes: 3, leakedBytes: 4, leakedAllocations: 5, temporaryAllocations: 6)
  a += a
  #expect(a == SiteStats(allocations: 2, bytesAllocated: 4, peakBytes: 6, leakedBytes: 8, leakedAllocations: 10, temporaryAllocations: 12))
  let encoder = JSONEncoder()
  encoder.outputFormatting = .sortedKeys
  let json = String(decoding: try encoder.encode(a), as: UTF8.self)
  #expect(
    json
      == #"{"allocations":2,"bytes_allocated":4,"leaked_allocations":10,"leaked_bytes":8,"peak_bytes":6,"temporary_allocations":12}"#)
  #expect(try JSONDecoder().decode(SiteStats.self, from: Data(json.utf8)) == a)
}

/// A deterministic pseudo-random workload: allocations from a few sites,
/// frees, reallocs (moving, in place, failed, interleaved across threads),
/// frees of unknown addresses and addresses reused without a free.
private func workload(seed: UInt64, events: Int) -> [TraceRecord] {
  var state = seed
  func next(_ n: UInt64) -> UInt64 {
    state = state &* 6364136223846793005 &+ 1442695040888963407
    return (state >> 33) % n
  }
  var records: [TraceRecord] = []
  var live: [UInt64] = []
  var nextPtr: UInt64 = 0x1000
  var time: UInt64 = 0
  var pending: (tid: UInt32, old: UInt64, new: UInt64)?
  func fresh() -> UInt64 {
    nextPtr += 16
    return nextPtr
  }
  for _ in 0..<events {
    time += 1
    let site = UInt32(1 + next(6))
    let size = 1 + next(1000)
    switch next(20) {
    case 0..<8:
      let p = fresh()
      live.append(p)
      records.append(.alloc(timeNs: time, ptr: p, size: size, stack: StackID(site), tid: 1, function: .malloc))
    case 8..<13 where !live.isEmpty:
      let p = live.remove(at: Int(next(UInt64(live.count))))
      records.append(.free(timeNs: time, ptr: p))
    case 13..<16:
      let old = live.isEmpty || next(5) == 0 ? 0 : live.remove(at: Int(next(UInt64(live.count))))
      let new: UInt64 = next(4) == 0 && old != 0 ? old : fresh()
      records.append(.realloc(timeNs: time, oldPtr: old, size: size, stack: StackID(site), tid: 1, function: .realloc))
      records.append(.reallocDone(timeNs: time, oldPtr: old, newPtr: new, tid: 1))
      live.append(new)
    case 16 where !live.isEmpty:
      // Failed realloc: the old block stays.
      let old = live[Int(next(UInt64(live.count)))]
      records.append(.realloc(timeNs: time, oldPtr: old, size: 1 << 40, stack: StackID(site), tid: 1, function: .realloc))
      records.append(.reallocDone(timeNs: time, oldPtr: old, newPtr: 0, tid: 1))
    case 17 where !live.isEmpty && pending == nil:
      // A realloc on thread 2 whose second record comes later.
      let old = live.remove(at: Int(next(UInt64(live.count))))
      let new = fresh()
      pending = (2, old, new)
      records.append(.realloc(timeNs: time, oldPtr: old, size: size, stack: StackID(site), tid: 2, function: .realloc))
    case 18:
      if next(2) == 0 {
        records.append(.free(timeNs: time, ptr: 0xdead_0000 + next(100)))
      } else if !live.isEmpty {
        let p = live[Int(next(UInt64(live.count)))]
        records.append(.alloc(timeNs: time, ptr: p, size: size, stack: StackID(site), tid: 1, function: .malloc))
      }
    default:
      if let p = pending {
        records.append(.reallocDone(timeNs: time, oldPtr: p.old, newPtr: p.new, tid: p.tid))
        live.append(p.new)
        pending = nil
      }
    }
  }
  if let p = pending { records.append(.reallocDone(timeNs: time, oldPtr: p.old, newPtr: p.new, tid: p.tid)) }
  return records
}

@Test(arguments: [1, 2, 3, 42, 1234] as [UInt64])
func sitesAddUpToTheTotalsAndMatchASnapshotAtThePeak(seed: UInt64) {
  let records = workload(seed: seed, events: 3_000)
  let r = replay(records)
  expectSitesAddUp(r)
  let peak = r.finalTotals.peakBytes
  #expect(peak > 0)
  // Reference: the shortest prefix that reaches the peak; what every site
  // holds right after it (its current live bytes) is its share of the peak.
  var lo = 1, hi = records.count
  while lo < hi {
    let mid = (lo + hi) / 2
    if replay(Array(records[..<mid]), finish: false).totals.peakBytes >= peak { hi = mid } else { lo = mid + 1 }
  }
  let atPeak = replay(Array(records[..<lo]), finish: false)
  #expect(atPeak.totals.peakBytes == peak)
  let final = r.sites
  for (stack, stats) in final {
    #expect(stats.peakBytes == (atPeak.sites[stack]?.leakedBytes ?? 0), "stack \(stack.rawValue)")
  }
}

@Test func sitesOfAnyStackIDAreKeptApart() {
  // Small ids (as the shim numbers them), the unknown stack and ids far
  // beyond any dense numbering.
  let ids: [UInt32] = [0, 1, 70, 0xFFFF_FFF0, 0xFFFF_FFFF, 5_000_000]
  var records: [TraceRecord] = []
  for (n, id) in ids.enumerated() {
    records.append(alloc(UInt64(0x100 + n), UInt64(n + 1), site: id))
    records.append(alloc(UInt64(0x200 + n), UInt64(n + 1), site: id))
  }
  let r = replay(records)
  #expect(r.sites.count == ids.count)
  for (n, id) in ids.enumerated() {
    #expect(site(r, id) == SiteStats(allocations: 2, bytesAllocated: UInt64(2 * (n + 1)), peakBytes: UInt64(2 * (n + 1)), leakedBytes: UInt64(2 * (n + 1)), leakedAllocations: 2))
  }
  expectSitesAddUp(r)
}
