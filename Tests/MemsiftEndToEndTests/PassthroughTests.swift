import Foundation
import Testing

/// `memsift run` is transparent to the program (status, stdio), and fails
/// early, clearly and without a trace when it cannot trace it.
@Suite struct PassthroughTests {
  @Test(arguments: ["exit", "_exit", "return"])
  func exitStatusIsPassedThrough(_ how: String) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("status" + how)
    let run = try traced([v.endings, how, "7", "1"], in: dir)
    #expect(run.result.exitedWith == 7, "\(run.result)")
    #expect(try run.main().ended == .init("exited", 7))
  }

  @Test func stdinStdoutAndStderrPassThrough() throws {
    let dir = try TestDirectory()
    let run = try traced(["sh", "-c", #"read x; echo "got $x"; echo err >&2"#], in: dir, stdin: "hello\n")
    #expect(run.result.exitedWith == 0, "\(run.result)")
    #expect(run.result.stdout == "got hello\n")
    #expect(run.result.stderr == "err\n")
  }

  /// The shim leaves the program no descriptor of its own: libunwind's pipe
  /// (cshim/src/stack.c) took the lowest free numbers, so a program started
  /// with stdin closed found a stdin (CPython's test_posix test_close_file)
  /// and one listing its descriptors found two it never opened
  /// (test_subprocess test_pass_fds_redirected).
  @Test func noDescriptorOfTheShimIsVisible() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let untraced = try runCommand(v.fds, [], in: dir)
    #expect(try untraced.victim().string("open") == "1 2", "\(untraced)")
    let run = try traced([v.fds], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    #expect(try run.result.victim().string("open") == "1 2", "\(run.result)")
    let (plain, _) = try preloaded([v.fds], in: dir)
    #expect(try plain.victim().string("open") == "1 2", "\(plain)")
  }

  @Test func summaryGoesToStderrUnlessQuiet() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let trace = dir.file("loud.trace")
    let result = try runCommand(
      E2E.memsift, ["run"] + E2E.shimOptions + ["-o", trace, "--", v.leak, "2", "10"], in: dir)
    #expect(result.exitedWith == 0, "\(result)")
    #expect(result.stdout.hasPrefix("{"), "stdout is the program's alone")
    #expect(result.stderr.contains("memsift: 1 trace"), "\(result)")
    #expect(result.stderr.contains(trace))
  }

  /// A failure to start: one line on stderr, the status a shell would give,
  /// no trace left behind, no crash.
  func expectRefused(
    _ command: [String], output: String? = nil, status: Int32, mentioning: String,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let dir = try TestDirectory("refused")
    let trace = output ?? dir.file("refused.trace")
    let result = try memsiftRun(command, trace: trace, in: dir)
    #expect(result.exitedWith == status, "\(result)", sourceLocation: sourceLocation)
    #expect(result.stderr.contains(mentioning), "\(result)", sourceLocation: sourceLocation)
    let lines = result.stderr.split(separator: "\n")
    #expect(lines.count == 1, "one line: \(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stdout == "", sourceLocation: sourceLocation)
    #expect(!FileManager.default.fileExists(atPath: trace), "no trace", sourceLocation: sourceLocation)
    #expect(dir.allTraces.isEmpty, "no trace: \(dir.allTraces)", sourceLocation: sourceLocation)
  }

  @Test func missingCommandExits127() throws {
    try expectRefused(["memsift-e2e-no-such-command", "arg"], status: 127, mentioning: "command not found")
  }

  @Test func staticBinaryIsRefused() throws {
    let v = try E2E.victims()
    try expectRefused([v.endingsStatic, "exit", "0", "1"], status: 1, mentioning: "statically linked")
  }

  /// The loader runs a program that changes our identity in secure mode and
  /// ignores LD_PRELOAD; one that keeps it (root running a setuid-root
  /// program) is traced.
  @Test(.enabled(if: getuid() == 0, "needs root to give a program to another user"), arguments: ["setuid", "setgid"])
  func aProgramThatChangesIdentityIsRefused(_ bit: String) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("identity" + bit)
    let program = dir.file("leak-" + bit)
    try FileManager.default.copyItem(atPath: v.leak, toPath: program)
    #expect(chown(program, 65534, 65534) == 0 && chmod(program, bit == "setuid" ? 0o4755 : 0o2755) == 0)
    try expectRefused([program, "1", "1"], status: 1, mentioning: "\(program) is \(bit)")
    try expectRefused([program, "1", "1"], status: 1, mentioning: "the loader ignores LD_PRELOAD for it")

    let own = dir.file("leak-own-" + bit)
    try FileManager.default.copyItem(atPath: v.leak, toPath: own)
    #expect(chmod(own, bit == "setuid" ? 0o4755 : 0o2755) == 0)
    let run = try traced([own, "3", "10"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    #expect(try run.main().totals.leakedAllocations == 3)
  }

  @Test func unwritableOutputPathIsReported() throws {
    let v = try E2E.victims()
    let path = "/nonexistent-memsift-e2e-dir/x.trace"
    try expectRefused([v.leak, "1", "1"], output: path, status: 1, mentioning: path)
  }
}
