import MemsiftAnalysis
import MemsiftFormat
import Testing

private func alloc(_ ptr: UInt64, _ size: UInt64, at time: UInt64 = 0, function: AllocFunction = .malloc) -> TraceRecord {
  .alloc(timeNs: time, ptr: ptr, size: size, stack: StackID(1), tid: 1, function: function)
}

private func free(_ ptr: UInt64) -> TraceRecord { .free(timeNs: 0, ptr: ptr) }

private func realloc(_ old: UInt64, _ new: UInt64, _ size: UInt64) -> TraceRecord {
  .realloc(timeNs: 0, oldPtr: old, newPtr: new, size: size, stack: StackID(1), tid: 1, function: .realloc)
}

private func replay(_ records: [TraceRecord]) -> HeapTotals {
  var r = HeapReplay()
  records.forEach { r.apply($0) }
  return r.finalTotals
}

@Test func reallocCountsAsAFreeOfTheOldBlockAndAnAllocationOfTheNew() {
  let t = replay([alloc(0x10, 100), realloc(0x10, 0x20, 300)])
  #expect(t.allocations == 2)
  #expect(t.frees == 1)
  #expect(t.bytesAllocated == 400)
  #expect(t.leakedBytes == 300)
  #expect(t.leakedAllocations == 1)
  #expect(t.calls == ["malloc": 1, "realloc": 1])
}

@Test func reallocOfNullIsAnAllocationAndReallocToZeroIsAFree() {
  let t = replay([realloc(0, 0x10, 50), realloc(0x10, 0, 0)])
  #expect(t.allocations == 1)
  #expect(t.frees == 1)
  #expect(t.leakedBytes == 0)
  #expect(t.calls["realloc"] == 2)
}

@Test func aFailedReallocLeavesTheOldBlockAlive() {
  let t = replay([alloc(0x10, 64), realloc(0x10, 0, 1 << 40)])
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
