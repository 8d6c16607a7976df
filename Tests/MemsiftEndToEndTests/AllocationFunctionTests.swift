import Testing

/// `functions.c` and `leak.c`: C programs that make no allocation they do
/// not count, so their traces must match their own tallies exactly.
@Suite struct AllocationFunctionTests {
  /// What functions.c does, by construction (see the program).
  static let functionsCalls: [String: UInt64] = [
    "malloc": 6, "calloc": 4, "realloc": 23, "reallocarray": 2, "posix_memalign": 4,
    "aligned_alloc": 4, "memalign": 5, "valloc": 2, "pvalloc": 2, "free": 25,
  ]

  @Test func everyInterposedFunctionIsCountedExactly() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.functions], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let tally = try run.result.victim()
    // The program's own account of what it did, pinned.
    #expect(tally.calls == Self.functionsCalls)
    #expect(tally["allocations"] == 51)
    #expect(tally["frees"] == 48)
    #expect(tally["bytes_allocated"] == 4_302_991)
    #expect(tally["peak_bytes"] == 1 << 20)
    #expect(tally["leaked_bytes"] == 123 + 63 + 200)
    #expect(tally["leaked_allocations"] == 3)

    let report = try run.main()
    #expect(run.reports.count == 1)
    #expect(report.complete)
    #expect(report.ended == .init("exited", 0))
    #expect(report.warnings.isEmpty)
    expectTotals(report.totals, equal: tally)
  }

  @Test func shimWritesTheSameTotalsWithoutACollector() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let (result, report) = try preloaded([v.functions], in: dir)
    #expect(result.exitedWith == 0, "\(result)")
    #expect(report.complete)
    #expect(report.ended == .init("return", 0))
    expectTotals(report.totals, equal: try result.victim())
    #expect(report.totals.calls == Self.functionsCalls)
  }

  @Test(arguments: [(10, 100), (1000, 24), (1, 1), (5, 0), (3, 1 << 20)])
  func leakedBytesAreExactlyNTimesM(blocks: Int, size: Int) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("leak\(blocks)x\(size)")
    let temporary = 4096
    let run = try traced([v.leak, String(blocks), String(size), String(temporary)], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let t = try run.main().totals
    #expect(t.leakedBytes == UInt64(blocks * size))
    #expect(t.leakedAllocations == UInt64(blocks))
    // The temporary block sits on top of all the leaked ones.
    #expect(t.peakBytes == UInt64(blocks * size + temporary))
    #expect(t.allocations == UInt64(blocks + 1))
    #expect(t.frees == 1)
    #expect(t.temporaryAllocations == 1)
    #expect(t.bytesAllocated == UInt64(blocks * size + temporary))
    #expect(t.calls == ["malloc": UInt64(blocks + 1), "free": 1])
    expectTotals(t, equal: try run.result.victim())
  }
}
