import Testing

/// `semantics.c`: the program checks libc's documented behaviour itself
/// (results, errno, contents) and exits 1 on any difference.
@Suite struct SemanticsTests {
  @Test func libcSemanticsAreUnchangedUnderTheShim() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    // Untraced first: the checks hold for this libc.
    let bare = try runCommand(v.semantics, [], in: dir)
    #expect(bare.exitedWith == 0, "\(bare)")

    let run = try traced([v.semantics], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    #expect(run.result.stderr == "")
    #expect(run.result.stdout == bare.stdout)
    let tally = try run.result.victim()
    // The failing realloc is a call but no allocation; failing malloc,
    // calloc and reallocarray are not recorded at all.
    #expect(tally.calls == ["malloc": 11, "calloc": 4, "realloc": 3, "posix_memalign": 1, "free": 16])
    let report = try run.main()
    #expect(report.ended == .init("exited", 0))
    expectTotals(report.totals, equal: tally)

    let (plain, _) = try preloaded([v.semantics], in: dir)
    #expect(plain.exitedWith == 0, "\(plain)")
    #expect(plain.stdout == bare.stdout)
  }
}
