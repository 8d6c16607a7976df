import Testing

/// `containers.cpp`: operator new in its forms, and the standard
/// containers. libstdc++'s own allocations cancel out between a workload run
/// and a baseline run.
@Suite struct ContainerTests {
  static let reps: UInt64 = 4

  @Test func operatorNewCallsAreCountedExactly() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let baseRun = try traced([v.containers, "0", "0"], in: dir, name: "base")
    let workRun = try traced([v.containers, String(Self.reps), "0"], in: dir, name: "work")
    #expect(baseRun.result.exitedWith == 0, "\(baseRun.result)")
    #expect(workRun.result.exitedWith == 0, "\(workRun.result)")
    let tally = try workRun.result.victim()
    // Per round: new int, new int[100], new WithDestructor[10] (with its
    // cookie), std::string(100), std::vector reserve(1000), and 50 map
    // nodes each with a 40-character string, all through malloc; one
    // over-aligned new through aligned_alloc.
    let mapNode = tally["map_node_bytes"]
    #expect(tally["malloc"] == Self.reps * 105)
    #expect(tally["aligned_alloc"] == Self.reps * 1)
    #expect(tally["free"] == Self.reps * 106)
    #expect(tally["bytes_allocated"] == Self.reps * (4 + 400 + (240 + 8) + 128 + 101 + 50 * (mapNode + 41) + 4000))

    let base = try baseRun.main().totals
    let work = try workRun.main().totals
    let d = TotalsDifference(work, minus: base)
    #expect(
      d.calls == [
        "malloc": Int64(tally["malloc"]), "aligned_alloc": Int64(tally["aligned_alloc"]), "free": Int64(tally["free"]),
      ])
    #expect(d.allocations == Int64(tally["malloc"] + tally["aligned_alloc"]))
    #expect(d.frees == Int64(tally["free"]))
    #expect(d.bytesAllocated == Int64(tally["bytes_allocated"]))
    #expect(d.leakedBytes == 0)
    #expect(d.leakedAllocations == 0)
    #expect(work.unmatchedFrees == 0)
    #expect(work.reusedWithoutFree == 0)
  }

  @Test func eachThrownExceptionAllocatesAndFreesOneBlock() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let throwsCount: Int64 = 9
    let baseRun = try traced([v.containers, "0", "0"], in: dir, name: "base")
    let workRun = try traced([v.containers, "0", String(throwsCount)], in: dir, name: "work")
    #expect(baseRun.result.exitedWith == 0, "\(baseRun.result)")
    #expect(workRun.result.exitedWith == 0, "\(workRun.result)")
    let d = TotalsDifference(try workRun.main().totals, minus: try baseRun.main().totals)
    #expect(d.calls == ["malloc": throwsCount, "free": throwsCount])
    #expect(d.allocations == throwsCount)
    #expect(d.frees == throwsCount)
    #expect(d.leakedAllocations == 0)
  }
}
