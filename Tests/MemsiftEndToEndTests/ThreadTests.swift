import Testing

/// `threads.c`: 8 threads freeing each other's blocks, with the same sizes
/// reused over and over, so an address freed by one thread is soon handed
/// out again, often to another. glibc allocates for the threads themselves
/// (their TLS), so each workload run is compared with a baseline run that
/// creates the same threads and does nothing else.
@Suite struct ThreadTests {
  static let rounds: UInt64 = 20_000
  static let runs = 5

  @Test func crossThreadFreesAreRecordedBeforeAddressReuse() throws {
    try runThreads(reallocEvery: 0)
  }

  /// The same with every fourth block grown by realloc in the thread that
  /// frees it: realloc's new address may be one another thread has just
  /// freed.
  @Test func crossThreadReallocsAreRecordedBeforeAddressReuse() throws {
    try runThreads(reallocEvery: 4)
  }

  func runThreads(reallocEvery: UInt64, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("threads\(reallocEvery)")
    let baseRun = try traced([v.threads, "0"], in: dir, name: "base")
    #expect(baseRun.result.exitedWith == 0, "\(baseRun.result)", sourceLocation: sourceLocation)
    let base = try baseRun.main()
    #expect(base.totals.unmatchedFrees == 0, sourceLocation: sourceLocation)
    #expect(base.totals.reusedWithoutFree == 0, sourceLocation: sourceLocation)

    let r = Self.rounds
    let reallocs = reallocEvery == 0 ? 0 : 8 * r / reallocEvery
    var misattributed: [String] = []
    for i in 1...Self.runs {
      let run = try traced([v.threads, String(r), String(reallocEvery)], in: dir, name: "work\(i)")
      #expect(run.result.exitedWith == 0, "\(run.result)", sourceLocation: sourceLocation)
      let tally = try run.result.victim()
      // By construction: every block is freed by the next thread, after a
      // realloc for every reallocEvery-th; thread t leaks t+1 blocks of (t+1)*100.
      #expect(tally["malloc"] == 8 * r + 36, sourceLocation: sourceLocation)
      #expect(tally["realloc"] == reallocs, sourceLocation: sourceLocation)
      #expect(tally["free"] == 8 * r, sourceLocation: sourceLocation)
      #expect(tally["leaked_bytes"] == 20_400, sourceLocation: sourceLocation)
      #expect(tally["leaked_allocations"] == 36, sourceLocation: sourceLocation)

      let work = try run.main()
      #expect(work.complete, sourceLocation: sourceLocation)
      #expect(work.threads >= 8, "run \(i)", sourceLocation: sourceLocation)
      // No misattribution: every free matched its block, no address came
      // back while the trace still held it as live.
      let t = work.totals
      let d = TotalsDifference(t, minus: base.totals)
      var calls = ["malloc": Int64(tally["malloc"]), "free": Int64(tally["free"])]
      if reallocs > 0 { calls["realloc"] = Int64(reallocs) }
      #expect(d.calls == calls, "run \(i)", sourceLocation: sourceLocation)
      #expect(d.allocations == Int64(tally["allocations"]), "run \(i)", sourceLocation: sourceLocation)
      #expect(d.bytesAllocated == Int64(tally["bytes_allocated"]), "run \(i)", sourceLocation: sourceLocation)
      if t.unmatchedFrees != 0 || t.reusedWithoutFree != 0 {
        misattributed.append(
          "run \(i): \(t.unmatchedFrees) unmatched frees, \(t.reusedWithoutFree) reused without free, "
            + "frees \(d.frees) instead of \(tally["frees"])")
        continue
      }
      // These follow from the replay; misattribution (above) throws them off.
      #expect(d.frees == Int64(tally["frees"]), "run \(i)", sourceLocation: sourceLocation)
      #expect(d.leakedBytes == 20_400, "run \(i)", sourceLocation: sourceLocation)
      #expect(d.leakedAllocations == 36, "run \(i)", sourceLocation: sourceLocation)
    }
    #expect(misattributed.isEmpty, "\(misattributed.joined(separator: "; "))", sourceLocation: sourceLocation)
  }
}
