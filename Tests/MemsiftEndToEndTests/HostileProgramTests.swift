import Foundation
import Testing

/// `hazards.c`: programs that do what a tracer would rather they did not —
/// dlopen/dlclose in a loop under allocating threads, signal handlers that
/// allocate while the program allocates, pthread_cancel of allocating
/// threads, closing every descriptor, changing directory, a descriptor
/// limit at the floor. Each must run as it does untraced, and its trace
/// hold what it did.
@Suite struct HostileProgramTests {
  /// The environment of a plain LD_PRELOAD run writing `output` (may be relative).
  static func preloadEnvironment(output: String, extra: [String: String] = [:]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    env["LD_PRELOAD"] = E2E.shim
    env["MEMSIFT_OUTPUT"] = output
    env["MEMSIFT_RUN_DIR"] = nil
    env.merge(extra) { $1 }
    return env
  }

  static func expectConsistent(_ r: Report, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.totals.unmatchedFrees == 0, "unmatched frees", sourceLocation: sourceLocation)
    #expect(r.totals.reusedWithoutFree == 0, "reused without free", sourceLocation: sourceLocation)
  }

  static func sites(_ r: Report, function: String) -> [Report.Site] {
    (r.sites ?? []).filter { $0.frames.first?.function == function }
  }

  @Test func dlopenAndDlcloseInALoopWhileThreadsAllocate() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let cycles: UInt64 = 100
    let run = try traced([v.hazards, "dlopen", String(cycles), v.plugin], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let r = try run.main()
    #expect(r.complete)
    Self.expectConsistent(r)
    // Each cycle: one block of 777 kept, one of 5000 freed, from the plugin.
    let plugin = Self.sites(r, function: "plugin_work")
    #expect(plugin.reduce(0) { $0 + $1.allocations } == 2 * cycles, "\(plugin.prefix(3))")
    #expect(plugin.reduce(0) { $0 + $1.leakedBytes } == 777 * cycles)
    #expect(r.loadedModules.contains { $0.unloaded && $0.path == v.plugin })
  }

  /// The handler's block is traced unless the signal interrupted the shim
  /// itself (the guard: its calls go straight to libc), so the handler's
  /// site has at most one allocation per signal handled, every one freed;
  /// the main thread's own allocations are all there.
  @Test(arguments: ["collector", "preload"])
  func signalHandlersThatAllocateDuringAllocation(_ mode: String) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("signals" + mode)
    let command = [v.hazards, "signals", "20000"]
    let result: CommandResult
    let r: Report
    if mode == "collector" {
      let run = try traced(command, in: dir)
      (result, r) = (run.result, try run.main())
    } else {
      (result, r) = try preloaded(command, in: dir)
    }
    #expect(result.exitedWith == 0, "\(result)")
    let tally = try result.victim()
    #expect(r.complete)
    Self.expectConsistent(r)
    #expect(tally["handled"] > 0)
    let handler = Self.sites(r, function: "on_signal")
    let handled = handler.reduce(0) { $0 + $1.allocations }
    #expect(handled > 0 && handled <= tally["handled"], "\(handled) of \(tally["handled"])")
    #expect(handler.allSatisfy { $0.leakedAllocations == 0 })
    let main = Self.sites(r, function: "signal_churn_block")
    #expect(main.reduce(0) { $0 + $1.allocations } == tally["rounds"])
    #expect(r.totals.leakedAllocations < 10, "\(r.totals.leakedAllocations) leaked")
  }

  /// A deferred cancellation acts at a cancellation point, and the shim's
  /// waits and drains call some (nanosleep, open, write): before they turned
  /// cancellation off, a thread cancelled there died holding a ring
  /// reservation or the drain, and the program hung. A 1 MiB ring makes
  /// them frequent.
  @Test(arguments: ["collector", "preload"])
  func cancellingAllocatingThreadsNeverHangsTheProgram(_ mode: String) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("cancel" + mode)
    let small = ["MEMSIFT_RING_MB": "1"]
    let result: CommandResult
    let r: Report
    if mode == "collector" {
      var env = ProcessInfo.processInfo.environment
      env.merge(small) { $1 }
      let run = try traced([v.hazards, "cancel", "30"], in: dir, environment: env)
      (result, r) = (run.result, try run.main())
    } else {
      // Fewer rounds: the shim writes its trace uncompressed.
      result = try runCommand(
        v.hazards, ["cancel", "10"], in: dir, environment: Self.preloadEnvironment(output: "plain.trace", extra: small))
      r = try report(dir.file("plain.trace"), in: dir)
    }
    #expect(result.exitedWith == 0, "\(result)")
    #expect(r.complete)
    Self.expectConsistent(r)
  }

  /// What each program below does after its change: K blocks of 2222
  /// (leaked), then a fork child allocating one block of 4321.
  static let changes = ["closefrom", "chdir"]

  @Test(arguments: changes)
  func aProgramThatTakesDescriptorsOrItsDirectoryAwayIsTracedUnderTheCollector(_ change: String) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("collector" + change)
    let run = try traced([v.hazards, change, "50"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let tally = try run.result.victim()
    let parent = try run.main()
    #expect(parent.complete)
    expectTotals(parent.totals, equal: tally)
    let child = run.reports(pid: tally.int32("child"))
    try #require(child.count == 1, "traces: \(run.reports.map(\.trace))")
    #expect(child[0].complete)
    #expect(child[0].totals.allocations == 1)
    #expect(child[0].totals.leakedBytes == 4321)
  }

  /// Without a collector: the trace file is opened for each drain (a
  /// descriptor kept open could be closed by closefrom), and a relative
  /// MEMSIFT_OUTPUT is resolved where the program started, for its fork
  /// children too.
  @Test(arguments: changes)
  func aProgramThatTakesDescriptorsOrItsDirectoryAwayIsTracedByTheShimAlone(_ change: String) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("preload" + change)
    let result = try runCommand(
      v.hazards, [change, "50"], in: dir, environment: Self.preloadEnvironment(output: "plain.trace"))
    #expect(result.exitedWith == 0, "\(result)")
    let tally = try result.victim()
    let parent = try report(dir.file("plain.trace"), in: dir)
    #expect(parent.complete)
    expectTotals(parent.totals, equal: tally)
    let child = try report(dir.file("plain.\(tally.int32("child")).trace"), in: dir)
    #expect(child.complete)
    #expect(child.totals.allocations == 1)
    #expect(child.totals.leakedBytes == 4321)
  }

  /// RLIMIT_NOFILE at the lowest free descriptor: nothing can be opened.
  /// Under the collector the program's ring is already mapped, so its trace
  /// is whole; a fork child cannot create its ring and goes untraced, with
  /// one line saying so. The shim alone cannot open its trace file to
  /// drain into: events are dropped, with one line saying so. Either way
  /// the program runs as it would untraced.
  @Test func aProgramAtItsDescriptorLimitRunsNormallyAndIsTracedWhereARingIsMapped() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.hazards, "nofile", "50"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let tally = try run.result.victim()
    let parent = try run.main()
    #expect(parent.complete)
    expectTotals(parent.totals, equal: tally)
    #expect(run.result.stderr.contains("cannot create a ring"), "\(run.result.stderr)")

    let plain = try runCommand(
      v.hazards, ["nofile", "50"], in: dir, environment: Self.preloadEnvironment(output: "plain.trace"))
    #expect(plain.exitedWith == 0, "\(plain)")
    #expect(try plain.victim()["allocations"] == 50)
    let warnings = plain.stderr.split(separator: "\n").filter { $0.contains("plain.trace") }
    #expect(warnings.count == 1 && warnings[0].contains("Too many open files"), "\(plain.stderr)")
  }
}
