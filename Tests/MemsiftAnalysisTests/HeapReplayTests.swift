import MemsiftAnalysis
import MemsiftFormat
import Testing

private func alloc(_ ptr: UInt64, _ size: UInt64, at time: UInt64 = 0, function: AllocFunction = .malloc) -> TraceRecord {
  .alloc(timeNs: time, ptr: ptr, size: size, stack: StackID(1), tid: 1, function: function)
}

private func free(_ ptr: UInt64) -> TraceRecord { .free(timeNs: 0, ptr: ptr) }

private func reallocBegin(_ old: UInt64, _ size: UInt64, tid: UInt32 = 1) -> TraceRecord {
  .realloc(timeNs: 0, oldPtr: old, size: size, stack: StackID(1), tid: tid, function: .realloc)
}

private func reallocDone(_ old: UInt64, _ new: UInt64, tid: UInt32 = 1) -> TraceRecord {
  .reallocDone(timeNs: 0, oldPtr: old, newPtr: new, tid: tid)
}

/// A realloc with nothing between its two records.
private func realloc(_ old: UInt64, _ new: UInt64, _ size: UInt64) -> [TraceRecord] {
  [reallocBegin(old, size), reallocDone(old, new)]
}

private func replay(_ records: [TraceRecord]) -> HeapTotals {
  var r = HeapReplay()
  records.forEach { r.apply($0) }
  r.finishInFlight()
  return r.finalTotals
}

@Test func reallocCountsAsAFreeOfTheOldBlockAndAnAllocationOfTheNew() {
  let t = replay([alloc(0x10, 100)] + realloc(0x10, 0x20, 300))
  #expect(t.allocations == 2)
  #expect(t.frees == 1)
  #expect(t.bytesAllocated == 400)
  #expect(t.leakedBytes == 300)
  #expect(t.leakedAllocations == 1)
  #expect(t.calls == ["malloc": 1, "realloc": 1])
}

@Test func reallocOfNullIsAnAllocationAndReallocToZeroIsAFree() {
  let t = replay(realloc(0, 0x10, 50) + realloc(0x10, 0, 0))
  #expect(t.allocations == 1)
  #expect(t.frees == 1)
  #expect(t.leakedBytes == 0)
  #expect(t.calls["realloc"] == 2)
}

@Test func aFailedReallocLeavesTheOldBlockAlive() {
  let t = replay([alloc(0x10, 64)] + realloc(0x10, 0, 1 << 40))
  #expect(t.allocations == 1)
  #expect(t.frees == 0)
  #expect(t.leakedBytes == 64)
  #expect(t.calls["realloc"] == 1)
}

@Test func anAllocationFreedWithNoOtherAllocationBetweenIsTemporary() {
  // a: temporary; b and c interleave, so neither is.
  let t = replay([alloc(0xa, 1), free(0xa), alloc(0xb, 1), alloc(0xc, 1), free(0xb), free(0xc)])
  #expect(t.temporaryAllocations == 1)
}

@Test func peakIsTheMostLiveBytesAndItsTime() {
  let t = replay([alloc(0x1, 100, at: 10), alloc(0x2, 200, at: 20), free(0x1), alloc(0x3, 50, at: 30), free(0x2)])
  #expect(t.peakBytes == 300)
  #expect(t.peakTimeNs == 20)
  #expect(t.leakedBytes == 50)
}

@Test func freesOfUnknownAddressesAreCountedNotApplied() {
  let t = replay([free(0x99), alloc(0x1, 10), alloc(0x1, 20)])
  #expect(t.unmatchedFrees == 1)
  #expect(t.reusedWithoutFree == 1)
  #expect(t.leakedBytes == 20)
  #expect(t.leakedAllocations == 1)
}

@Test func anAddressFreedWhileAReallocRunsMayBeItsNewBlock() {
  // Thread 1's realloc takes its place, thread 2 frees 0xB, the real realloc
  // is handed 0xB: the free must not take the new block away.
  let t = replay([alloc(0xA, 10), alloc(0xB, 20), reallocBegin(0xA, 30, tid: 1), free(0xB), reallocDone(0xA, 0xB, tid: 1)])
  #expect(t.unmatchedFrees == 0)
  #expect(t.reusedWithoutFree == 0)
  #expect(t.leakedBytes == 30)
  #expect(t.leakedAllocations == 1)
  #expect(t.frees == 2)
}

@Test func aReallocWhoseThreadDiedInsideLeavesTheOldBlockAlive() {
  let t = replay([alloc(0xA, 10), reallocBegin(0xA, 30)])
  #expect(t.leakedBytes == 10)
  #expect(t.leakedAllocations == 1)
}

// Found by the fuzzer: sizes near 2^64 trapped on overflow (two ALLOC
// records of UInt64.max bytes; the sampled estimate of one, converted from
// a Double past UInt64.max; a SITE record's counts).
@Test func sizesNoAllocatorGivesAreSkippedAndCountedAsImpossible() {
  var r = HeapReplay()
  r.apply(alloc(0x10, .max))
  r.apply(alloc(0x20, .max))
  r.apply(alloc(0x30, 100))
  r.apply(.site(SiteState(timeNs: 0, stack: StackID(2), liveBytes: .max, liveCount: .max, allocations: 1, bytesAllocated: 1)))
  r.finishInFlight()
  #expect(r.impossibleEvents == 3)
  #expect(r.finalTotals.allocations == 1)
  #expect(r.finalTotals.leakedBytes == 100)
  #expect(r.finalTotals.calls["malloc"] == 3)
}

@Test func aSampledSizeEstimateStaysWithinTheLargestBlock() {
  var r = HeapReplay()
  r.apply(.sampling(rateBytes: HeapReplay.maxBlockSize))
  r.apply(alloc(0x10, 1))
  r.apply(alloc(0x20, HeapReplay.maxBlockSize))
  #expect(r.impossibleEvents == 0)
  #expect(r.sampleRate == HeapReplay.maxBlockSize)
  #expect(r.finalTotals.leakedBytes == 2 * HeapReplay.maxBlockSize)
  var huge = HeapReplay()
  huge.apply(.sampling(rateBytes: .max))
  #expect(huge.impossibleEvents == 1)
  #expect(huge.sampleRate == 0)
}

@Test func byteSumsPastUInt64WrapInsteadOfTrapping() {
  var r = HeapReplay()
  for i in 1...200 { r.apply(alloc(UInt64(i) << 4, HeapReplay.maxBlockSize)) }
  var ops = HeapReplay()
  ops.apply(.info(size: HeapReplay.maxBlockSize, stack: StackID(1), function: 1), at: 0)
  ops.apply(.info(size: .max, stack: StackID(1), function: 1), at: 0)
  for _ in 0..<200 { ops.apply(.alloc(0), at: 0) }
  ops.apply(.alloc(1), at: 0)
  #expect(r.finalTotals.allocations == 200)
  #expect(ops.finalTotals.allocations == 201)
  #expect(ops.impossibleEvents == 1)
  #expect(ops.finalTotals.bytesAllocated == HeapReplay.maxBlockSize &* 200)
}

// Found by the fuzzer: an EVENTS free of an info whose site held no block
// took its live count below zero (an overflow trap).
@Test func anEventsFreeAtASiteHoldingNothingIsImpossible() {
  var r = HeapReplay()
  r.apply(.info(size: 8, stack: StackID(1), function: 1), at: 0)
  r.apply(.free(0, temporary: false), at: 0)
  r.apply(.detach(0), at: 0)
  r.apply(.stale(0), at: 0)
  r.apply(.alloc(0), at: 0)
  r.apply(.free(0, temporary: true), at: 0)
  #expect(r.impossibleEvents == 3)
  #expect(r.liveCount == 0)
  #expect(r.finalTotals.frees == 1)
  #expect(r.finalTotals.temporaryAllocations == 1)
  #expect(r.finalTotals.reusedWithoutFree == 0)
  #expect(r.finalTotals.leakedBytes == 0)
}

// Found by the fuzzer: a SITE record for a site whose blocks ALLOC records
// hold took the summarized count below zero, and `liveCount` trapped
// converting it (and converting a negative sum to UInt64 at the end).
@Test func aSiteRecordOverBlocksOfAllocRecordsKeepsTheLiveCountInRange() {
  var r = HeapReplay()
  r.apply(.alloc(timeNs: 0, ptr: 0x10, size: 8, stack: StackID(1), tid: 1, function: .malloc))
  r.apply(.site(SiteState(timeNs: 0, stack: StackID(1), liveBytes: 0, liveCount: 0, allocations: 1, bytesAllocated: 8)))
  #expect(r.liveCount == 0)
  var ops = HeapReplay()
  ops.apply(.alloc(timeNs: 0, ptr: 0x10, size: 8, stack: StackID(1), tid: 1, function: .malloc))
  ops.apply(.info(size: 8, stack: StackID(1), function: 1), at: 0)
  ops.apply(.free(0, temporary: false), at: 0)
  ops.finishInFlight()
  #expect(ops.liveCount == 0)  // the raw block, less the ops' free of it
  #expect(ops.finalTotals.leakedAllocations == 0)
}
