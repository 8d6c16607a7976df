import Foundation
import Testing

/// `forks.c`: a fork child that allocates and exits, and a fork child that
/// allocates and execs; each process image gets a trace of its own.
@Suite struct ForkExecTests {
  /// The scenario's pids and tallies, from the JSON lines on stdout.
  struct Scenario {
    var parent: VictimLine
    var target: VictimLine
    var pid: Int32
    var child: Int32
    var execer: Int32

    init(_ result: CommandResult) throws {
      let lines = try result.victimLines()
      guard let parent = lines.first(where: { $0.string("role") == "parent" }),
        let target = lines.first(where: { $0.string("role") == "target" })
      else { throw E2EError.noVictimLine(result.description) }
      self.parent = parent
      self.target = target
      pid = parent.int32("pid")
      child = parent.int32("child")
      execer = parent.int32("execer")
    }
  }

  /// The totals of the first child, by construction: 5 blocks of 200
  /// allocated, 2 freed, and one free of a block inherited from the parent.
  static func expectFirstChild(_ t: Report.Totals, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(t.calls == ["malloc": 5, "free": 3], sourceLocation: sourceLocation)
    #expect(t.allocations == 5, sourceLocation: sourceLocation)
    #expect(t.bytesAllocated == 1000, sourceLocation: sourceLocation)
    #expect(t.frees == 2, sourceLocation: sourceLocation)
    #expect(t.unmatchedFrees == 1, "the inherited block", sourceLocation: sourceLocation)
    #expect(t.leakedBytes == 600, sourceLocation: sourceLocation)
    #expect(t.leakedAllocations == 3, sourceLocation: sourceLocation)
    #expect(t.peakBytes == 1000, sourceLocation: sourceLocation)
  }

  /// The pre-exec image of the second child: 2 blocks of 300, never freed.
  static func expectPreExec(_ t: Report.Totals, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(t.calls == ["malloc": 2], sourceLocation: sourceLocation)
    #expect(t.allocations == 2, sourceLocation: sourceLocation)
    #expect(t.leakedBytes == 600, sourceLocation: sourceLocation)
    #expect(t.frees == 0, sourceLocation: sourceLocation)
    #expect(t.unmatchedFrees == 0, sourceLocation: sourceLocation)
  }

  @Test func forkChildTraceHoldsExactlyTheChildsAllocations() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.forks, v.forks], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let scenario = try Scenario(run.result)

    let parents = run.reports(pid: scenario.pid)
    try #require(parents.count == 1, "traces: \(run.reports.map(\.trace))")
    let parent = parents[0]
    #expect(parent.ended == .init("exited", 0))
    #expect(parent.arguments == [v.forks, v.forks])
    // Nothing of either child leaks into the parent's trace.
    expectTotals(parent.totals, equal: scenario.parent)
    #expect(parent.totals.calls == ["malloc": 4, "free": 3])
    #expect(parent.totals.leakedBytes == 77)

    let child = run.reports(pid: scenario.child)
    try #require(child.count == 1, "traces of pid \(scenario.child): \(run.reports.map(\.trace))")
    #expect(child[0].process?.ppid == scenario.pid)
    #expect(child[0].arguments == parent.arguments)
    #expect(child[0].complete)
    Self.expectFirstChild(child[0].totals)
  }

  @Test func execEndsTheImageAndStartsATraceWithTheNewCommandLine() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.forks, v.forks], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let scenario = try Scenario(run.result)
    #expect(run.reports.count == 4, "\(run.reports.map(\.trace))")

    let images = run.reports(pid: scenario.execer)
    try #require(images.count == 2, "traces of pid \(scenario.execer): \(run.reports.map(\.trace))")
    let (before, after) = (images[0], images[1])
    #expect(before.arguments == [v.forks, v.forks])
    #expect(before.ended.how == "exec")
    #expect(before.complete)
    Self.expectPreExec(before.totals)

    #expect(after.arguments == [v.forks, "target", "4", "50"])
    #expect(after.process?.executable == v.forks)
    #expect(after.process?.ppid == scenario.pid)
    #expect(after.complete)
    expectTotals(after.totals, equal: scenario.target)
    #expect(after.totals.leakedBytes == 4 * 50)
    #expect(after.totals.leakedAllocations == 4)
  }

  /// `-o DIR/run.trace`: the first process writes it, the others
  /// `run.PID.trace`, an exec'd image `run.PID.2.trace` (the name is taken).
  @Test func outputPathHoldsTheFirstProcessAndTheOthersAreNamedByPid() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.forks, v.forks], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let s = try Scenario(run.result)
    func pid(_ name: String) -> Int32? { run.reports.first { $0.trace == dir.file(name) }?.process?.pid }
    #expect(pid("run.trace") == s.pid)
    #expect(pid("run.\(s.child).trace") == s.child)
    #expect(
      run.reports(pid: s.execer).map(\.trace) == [
        dir.file("run.\(s.execer).trace"), dir.file("run.\(s.execer).2.trace"),
      ])

    // The more processes start at once, the more it matters which ring the
    // collector looks at first: the -o trace must still be the first process's.
    var wrong: [String] = []
    for i in 1...10 {
      let name = "many\(i)"
      let result = try memsiftRun([v.forks, "many", "24"], trace: dir.file(name + ".trace"), in: dir)
      #expect(result.exitedWith == 0, "\(result)")
      let top = try result.victim().int32("pid")
      let first = try report(dir.file(name + ".trace"), in: dir)
      if first.process?.pid != top {
        wrong.append(
          "run \(i): \(name).trace is pid \(first.process?.pid ?? -1) (\(first.ended)), not the first process \(top)")
      }
    }
    #expect(wrong.isEmpty, "\(wrong.joined(separator: "; "))")
  }

  /// The children are not memsift's to reap (their parent waits for them),
  /// so how they ended comes from the EXIT record the shim wrote for each.
  @Test func forkedChildrenReportHowTheyExited() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let children = 24
    let run = try traced([v.forks, "many", String(children)], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let pids = try run.result.victim()
    var wrong: [String] = []
    for i in 0..<children {
      let pid = pids.int32("child\(i)")
      let traces = run.reports(pid: pid)
      try #require(traces.count == 1, "child \(i) (pid \(pid))")
      let t = traces[0]
      #expect(t.totals.allocations == UInt64(i + 1), "child \(i)")
      #expect(t.complete, "child \(i)")
      if t.ended != .init("exit", Int32(i)) { wrong.append("child \(i): \(t.ended), want exit \(i)") }
    }
    #expect(wrong.isEmpty, "\(wrong.count) of \(children) children: \(wrong.joined(separator: "; "))")
  }

  @Test func withoutACollectorEveryImageWritesItsOwnTrace() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    var env = ProcessInfo.processInfo.environment
    env["LD_PRELOAD"] = E2E.shim
    env["MEMSIFT_OUTPUT"] = dir.file("plain.trace")
    let result = try runCommand(v.forks, [v.forks], in: dir, environment: env)
    #expect(result.exitedWith == 0, "\(result)")
    let scenario = try Scenario(result)
    let paths = dir.traces(named: "plain.")
    #expect(
      Set(paths) == [
        dir.file("plain.trace"), dir.file("plain.\(scenario.child).trace"),
        dir.file("plain.\(scenario.execer).trace"), dir.file("plain.\(scenario.execer).2.trace"),
      ])

    let parent = try report(dir.file("plain.trace"), in: dir)
    #expect(parent.complete)
    #expect(parent.ended == .init("return", 0))
    expectTotals(parent.totals, equal: scenario.parent)

    let child = try report(dir.file("plain.\(scenario.child).trace"), in: dir)
    #expect(child.complete)
    #expect(child.ended == .init("exit", 3))
    Self.expectFirstChild(child.totals)

    // Exec may fail and tracing go on, so the shim ends the image's trace
    // with EXIT(exec) and no END record: not complete, and no warning.
    let before = try report(dir.file("plain.\(scenario.execer).trace"), in: dir)
    #expect(before.ended.how == "exec")
    #expect(before.warnings.isEmpty)
    Self.expectPreExec(before.totals)

    let after = try report(dir.file("plain.\(scenario.execer).2.trace"), in: dir)
    #expect(after.complete)
    #expect(after.ended == .init("return", 0))
    #expect(after.arguments == [v.forks, "target", "4", "50"])
    expectTotals(after.totals, equal: scenario.target)
  }

  /// `hazards fork`: 1,000 forks, one child at a time, while three threads
  /// allocate and realloc, so the fork often lands while one of them is
  /// inside malloc or inside the shim. No child or parent may hang (each run
  /// has `E2E.commandTimeout`), and every child's trace must be whole: read
  /// here in the test process (1,000 reports would take minutes), each ends
  /// with END and holds the child's 3 blocks of 4321. Without a collector
  /// the threads pause a little (the shim's own trace is not compressed).
  @Test(arguments: ["collector", "preload"])
  func aThousandForksOfAMultithreadedProgramEachLeaveAWholeTrace(_ mode: String) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("storm" + mode)
    let forks = 1000
    let result: CommandResult
    if mode == "collector" {
      result = try memsiftRun([v.hazards, "fork", String(forks)], trace: dir.file("storm.trace"), in: dir)
    } else {
      var env = ProcessInfo.processInfo.environment
      env["LD_PRELOAD"] = E2E.shim
      env["MEMSIFT_OUTPUT"] = dir.file("storm.trace")
      env["MEMSIFT_RUN_DIR"] = nil
      result = try runCommand(v.hazards, ["fork", String(forks), "1000"], in: dir, environment: env)
    }
    #expect(result.exitedWith == 0, "\(result)")
    let parent = try result.victim().int32("pid")
    var children = 0
    var wrong: [String] = []
    for path in dir.traces(named: "storm.") where path != dir.file("storm.trace") {
      let scan = try TraceScan(path)
      guard scan.ppid == parent else { continue }
      children += 1
      if scan.end == nil || !scan.warnings.isEmpty || scan.allocationsBySize[4321] != 3 {
        wrong.append(
          "\(path): end \(scan.end.map { "\($0.kind.name) \($0.status)" } ?? "missing"), "
            + "\(scan.allocationsBySize[4321] ?? 0) blocks of 4321, warnings \(scan.warnings)")
      }
    }
    #expect(children == forks)
    #expect(wrong.isEmpty, "\(wrong.count) children: \(wrong.prefix(10).joined(separator: "; "))")
    let main = try report(dir.file("storm.trace"), in: dir)
    #expect(main.complete)
    #expect(main.totals.unmatchedFrees == 0)
    #expect(main.totals.reusedWithoutFree == 0)
  }
}
