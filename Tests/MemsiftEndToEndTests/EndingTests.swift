import Testing

/// `endings.c`: every way a program can end, after a known number of
/// allocations (one temporary block, then K leaked ones).
@Suite struct EndingTests {
  struct Ending: CustomTestStringConvertible, Sendable {
    var how: String
    var status: Int32
    /// memsift's exit status.
    var exitCode: Int32
    /// `ended` under `memsift run` (waitpid) and under plain LD_PRELOAD (the shim).
    var collected: Report.Ended
    var plain: Report.Ended?

    var testDescription: String { "\(how)(\(status))" }
  }

  static let blocks = 300

  static let endings: [Ending] = [
    Ending(how: "exit", status: 3, exitCode: 3, collected: .init("exited", 3), plain: .init("exit", 3)),
    Ending(how: "_exit", status: 4, exitCode: 4, collected: .init("exited", 4), plain: .init("_exit", 4)),
    Ending(how: "return", status: 5, exitCode: 5, collected: .init("exited", 5), plain: .init("return", 5)),
    Ending(how: "exit", status: 0, exitCode: 0, collected: .init("exited", 0), plain: .init("exit", 0)),
    Ending(how: "abort", status: 0, exitCode: 134, collected: .init("signal", 6), plain: .init("abort", 6)),
    Ending(how: "kill", status: 0, exitCode: 137, collected: .init("signal", 9), plain: nil),
  ]

  /// The totals every ending must show: nothing made before the end is lost.
  static func expectEverything(_ t: Report.Totals, sourceLocation: SourceLocation = #_sourceLocation) {
    let k = UInt64(blocks)
    #expect(t.calls == ["malloc": k + 1, "free": 1], sourceLocation: sourceLocation)
    #expect(t.allocations == k + 1, sourceLocation: sourceLocation)
    #expect(t.frees == 1, sourceLocation: sourceLocation)
    #expect(t.leakedAllocations == k, sourceLocation: sourceLocation)
    // Blocks of 100 + i bytes, i < K.
    #expect(t.leakedBytes == 100 * k + k * (k - 1) / 2, sourceLocation: sourceLocation)
    #expect(t.bytesAllocated == 10 + 100 * k + k * (k - 1) / 2, sourceLocation: sourceLocation)
  }

  @Test(arguments: endings)
  func everyAllocationBeforeTheEndIsInTheTrace(_ ending: Ending) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("collected" + ending.how + "\(ending.status)")
    let run = try traced([v.endings, ending.how, String(ending.status), String(Self.blocks)], in: dir)
    #expect(run.result.exitedWith == ending.exitCode, "\(run.result)")
    #expect(run.reports.count == 1)
    let report = try run.main()
    #expect(report.complete)
    #expect(report.ended == ending.collected)
    Self.expectEverything(report.totals)
    expectTotals(report.totals, equal: try run.result.victim())
  }

  @Test(arguments: endings.filter { $0.plain != nil })
  func shimAloneWritesACompleteTraceForEveryEndingItSees(_ ending: Ending) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("plain" + ending.how + "\(ending.status)")
    let (result, report) = try preloaded(
      [v.endings, ending.how, String(ending.status), String(Self.blocks)], in: dir)
    if ending.how == "abort" {
      #expect(result.signaled && result.status == 6, "\(result)")
    } else {
      #expect(result.exitedWith == ending.status, "\(result)")
    }
    #expect(report.complete)
    #expect(report.ended == ending.plain)
    #expect(report.warnings.isEmpty)
    Self.expectEverything(report.totals)
  }
}
