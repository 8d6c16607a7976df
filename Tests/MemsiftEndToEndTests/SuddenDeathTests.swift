import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Deaths at moments nobody chose: the target SIGKILLed while its threads
/// churn, the collector SIGKILLed while a multithreaded target runs.
@Suite struct SuddenDeathTests {
  static let trials = 20
  static let threads = 4

  /// Starts `memsift run -q ... -- COMMAND` with stdout and stderr in `output`.
  static func start(_ command: [String], trace: String, output: String) throws -> Foundation.Process {
    _ = FileManager.default.createFile(atPath: output, contents: nil)
    let handle = FileHandle(forWritingAtPath: output)!
    defer { try? handle.close() }
    let collector = Foundation.Process()
    collector.executableURL = URL(fileURLWithPath: E2E.memsift)
    collector.arguments = ["run", "-q"] + E2E.shimOptions + ["-o", trace, "--"] + command
    collector.standardOutput = handle
    collector.standardError = handle
    collector.standardInput = FileHandle.nullDevice
    try collector.run()
    return collector
  }

  /// The words of `stress`'s progress file: [pid, allocations of site 0, ...].
  static func progress(_ path: String) -> [UInt64] {
    guard let data = FileManager.default.contents(atPath: path), data.count >= 8 * (1 + threads) else { return [] }
    return data.withUnsafeBytes { raw in (0...threads).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self) } }
  }

  /// Waits up to `E2E.commandTimeout` for `process` to end; false if it did not.
  static func wait(_ process: Foundation.Process) -> Bool {
    let deadline = Date().addingTimeInterval(E2E.commandTimeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      return false
    }
    return true
  }

  /// `stress 4 0 PROGRESS` churns until killed, storing in a shared file,
  /// after each malloc returned, how many its site has made: the shim had
  /// committed each one to the ring by then, so the salvaged trace must hold
  /// at least that many, whenever the kill lands.
  @Test func aTargetKilledAtRandomMomentsLeavesATraceWithEverythingCommittedBeforeTheKill() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    var wrong: [String] = []
    for trial in 1...Self.trials {
      let progressPath = dir.file("progress\(trial)")
      let trace = dir.file("killed\(trial).trace")
      let collector = try Self.start(
        [v.stress, String(Self.threads), "0", progressPath], trace: trace, output: dir.file("killed\(trial).out"))
      var pid: UInt64 = 0
      for _ in 0..<2000 where pid == 0 {
        usleep(10_000)
        pid = Self.progress(progressPath).first ?? 0
      }
      try #require(pid != 0, "trial \(trial): the victim never started")
      let delay = UInt32.random(in: 0...300_000)
      usleep(delay)
      kill(pid_t(pid), SIGKILL)
      try #require(Self.wait(collector), "trial \(trial): memsift did not finish after the kill")
      #expect(collector.terminationStatus == 128 + SIGKILL, "trial \(trial)")
      let committed = Self.progress(progressPath).dropFirst()
      let r = try report(trace, in: dir)
      if r.ended != .init("signal", SIGKILL) { wrong.append("trial \(trial) (\(delay) µs): ended \(r.ended)") }
      for (n, atLeast) in committed.enumerated() {
        let traced = (r.sites ?? []).filter { $0.frames.first?.function == "stress_site_\(n)" }
          .reduce(0) { $0 + $1.allocations }
        if traced < atLeast {
          wrong.append("trial \(trial) (\(delay) µs): site \(n) has \(traced) allocations, \(atLeast) were committed")
        }
      }
      if r.totals.unmatchedFrees != 0 || r.totals.reusedWithoutFree != 0 {
        wrong.append("trial \(trial): \(r.totals.unmatchedFrees) unmatched frees, \(r.totals.reusedWithoutFree) reused")
      }
    }
    #expect(wrong.isEmpty, "\(wrong.joined(separator: "; "))")
  }

  /// The collector dies while 16 threads allocate: nobody drains the ring
  /// again. The threads that find it full notice within ~100 ms, the shim
  /// stops tracing with one warning and the program goes on to its end.
  @Test func aMultithreadedTargetOutlivesItsKilledCollector() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let out = dir.file("stress.out")
    let progressPath = dir.file("progress")
    let collector = try Self.start(
      [v.stress, "16", "200000", progressPath], trace: dir.file("stress.trace"), output: out)
    // Killed once the threads are under way.
    for _ in 0..<Int(E2E.commandTimeout * 100) where (Self.progress(progressPath).dropFirst().first ?? 0) < 1000 {
      usleep(10_000)
    }
    kill(collector.processIdentifier, SIGKILL)
    collector.waitUntilExit()
    var output = ""
    for _ in 0..<Int(E2E.commandTimeout * 10) where !output.contains("\"threads\":16") {
      usleep(100_000)
      output = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    }
    #expect(output.contains("\"threads\":16"), "the target did not finish: \(output)")
    let warnings = output.components(separatedBy: "the collector (memsift run) is gone").count - 1
    #expect(warnings == 1, "\(output)")
  }
}
