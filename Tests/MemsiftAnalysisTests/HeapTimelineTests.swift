import MemsiftAnalysis
import Testing

@Suite struct HeapTimelineTests {
  @Test func aLongSeriesStaysWithinItsCapacityAndKeepsEverySpike() {
    var t = HeapTimeline(capacity: 64)
    // 10 s of notes every 100 µs, a spike of 1 GB at 7.77 s.
    for i in 0..<100_000 {
      let ns = UInt64(i) * 100_000
      t.note(ns, ns == 7_770_000_000 ? 1 << 30 : UInt64(i))
    }
    #expect(t.points.count <= 64)
    #expect(t.points.map(\.bytes).max() == 1 << 30)
    let spike = t.points.first { $0.bytes == 1 << 30 }!
    #expect(spike.elapsedNs <= 7_770_000_000 && 7_770_000_000 < spike.elapsedNs + t.widthNs)
    #expect(t.points.last!.bytes == 99_999)
    // Bucket starts only grow.
    #expect(zip(t.points, t.points.dropFirst()).allSatisfy { $0.elapsedNs < $1.elapsedNs })
  }

  @Test func thePeakBetweenTwoNotesIsPutInItsBucket() {
    var t = HeapTimeline()
    t.note(0, 10)
    t.note(50_000_000, 20)
    t.notePeak(20_500_000, 99)
    #expect(t.points.map(\.bytes) == [10, 99, 20])
    #expect(t.points[1].elapsedNs == 20_000_000)
  }
}
