import Foundation
import Testing

/// Hazards found in review: vfork children, deaths the shim cannot see,
/// a collector that dies, PID namespaces.
@Suite struct RobustnessTests {
  /// `vfork.c`: a vfork child that fails to exec and _exits shares the
  /// parent's memory; the parent's trace must go on as if nothing happened.
  @Test func aVforkChildLeavesTheParentsTraceAlone() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.vfork], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let (plainResult, plain) = try preloaded([v.vfork], in: dir)
    #expect(plainResult.exitedWith == 0, "\(plainResult)")
    for (report, ended) in [(try run.main(), Report.Ended("exited", 0)), (plain, Report.Ended("return", 0))] {
      #expect(report.complete)
      #expect(report.ended == ended)
      #expect(report.totals.allocations == 11)
      #expect(report.totals.frees == 1)
      #expect(report.totals.leakedAllocations == 10)
      #expect(report.totals.leakedBytes == 1000)
      #expect(report.totals.unmatchedFrees == 0)
      expectTotals(report.totals, equal: try run.result.victim())
    }
  }

  /// `rawfork.c`: _Fork runs no pthread_atfork handler, so the shim learns
  /// of the fork from its wipe-on-fork owner page on the child's first call.
  @Test func aForkWithoutAtforkHandlersStillGivesTheChildItsOwnTrace() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.rawfork], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let parent = try run.main()
    #expect(parent.totals.allocations == 1)
    #expect(parent.totals.leakedBytes == 0)
    let childPid = try run.result.victim().int32("child")
    let child = run.reports(pid: childPid)
    try #require(child.count == 1, "traces: \(run.reports.map(\.trace))")
    #expect(child[0].totals.allocations == 3)
    #expect(child[0].totals.leakedBytes == 150_000)
    #expect(child[0].ended == .init("_exit", 0))
  }

  /// Without a collector, a death by a signal's default action runs no code
  /// of ours; the shim's periodic drain (every 100 ms, on an allocation)
  /// has put everything before it in the file.
  @Test func aSuddenDeathWithoutACollectorLosesNothingOlderThanTheDrainPeriod() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let k: UInt64 = 300
    let (result, report) = try preloaded([v.endings, "sigterm", "0", String(k)], in: dir)
    #expect(result.signaled && result.status == SIGTERM, "\(result)")
    #expect(!report.complete)
    #expect(report.totals.allocations == k + 2)
    #expect(report.totals.leakedAllocations == k + 1)
    expectTotals(report.totals, equal: try result.victim())
  }

  /// If the collector is killed, the program must not wait forever on a
  /// ring nobody drains: the shim notices, stops tracing and goes on.
  @Test func aTargetOutlivesItsKilledCollector() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let out = dir.file("busy.out")
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    let handle = FileHandle(forWritingAtPath: out)!
    defer { try? handle.close() }
    let collector = Foundation.Process()
    collector.executableURL = URL(fileURLWithPath: E2E.memsift)
    collector.arguments = ["run", "-q"] + E2E.shimOptions + ["-o", dir.file("busy.trace"), "--", v.busy]
    collector.standardOutput = handle
    collector.standardError = handle
    try collector.run()
    usleep(300_000)
    kill(collector.processIdentifier, SIGKILL)
    collector.waitUntilExit()
    var output = ""
    for _ in 0..<600 where !output.contains("finished") {
      usleep(100_000)
      output = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    }
    #expect(output.contains("finished"), "the target did not finish: \(output)")
    #expect(output.contains("the collector (memsift run) is gone"), "\(output)")
  }

  static let canUnsharePIDs: Bool = {
    let p = Foundation.Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
    p.arguments = ["-p", "-f", "/bin/true"]
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
  }()

  /// Inside a PID namespace the program's getpid() means another process
  /// to the collector; the shim names itself by its PID outside.
  @Test(.enabled(if: canUnsharePIDs, "needs permission to create PID namespaces"))
  func aProgramInAPIDNamespaceIsTracedToTheEnd() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced(["/usr/bin/unshare", "-p", "-f", v.endings, "return", "0", "50"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let victim = run.reports.filter { $0.arguments.first == v.endings }
    try #require(victim.count == 1, "traces: \(run.reports.map(\.arguments))")
    #expect(victim[0].complete)
    #expect(victim[0].ended == .init("return", 0))
    #expect(victim[0].totals.allocations == 51)
    #expect(victim[0].totals.leakedAllocations == 50)
  }
}
