import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Private by default (DESIGN.md, contract 8): files 0600 and directories
/// 0700 whatever the umask, no symbolic link ever written through, no other
/// user's process marked, and a bad MEMSIFT_* value costs one line.
@Suite struct SecurityTests {
  /// The environment with XDG_RUNTIME_DIR set to a directory of the test's
  /// own, so that the runtime directory checked is the test's.
  func environment(runtime: String) -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    env["XDG_RUNTIME_DIR"] = runtime
    return env
  }

  func mode(_ path: String) -> mode_t? {
    var st = stat()
    return lstat(path, &st) == 0 ? st.st_mode & 0o7777 : nil
  }

  @Test func filesAndDirectoriesArePrivateWhateverTheUmask() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    // The target lists, while it runs, the runtime directory, its run
    // directory and the rings in it; umask 0 would leave anything created
    // with a loose mode open to everyone.
    let list = #"stat -c '%a %F' "$MEMSIFT_RUN_DIR/.." "$MEMSIFT_RUN_DIR" "$MEMSIFT_RUN_DIR"/*.ring"#
    let result = try runCommand(
      "/bin/sh",
      ["-c", #"umask 0; exec "$@""#, "sh", E2E.memsift, "run", "-q"] + E2E.shimOptions
        + ["-o", dir.file("t.trace"), "--", "sh", "-c", list],
      in: dir, environment: environment(runtime: dir.path))
    #expect(result.exitedWith == 0, "\(result)")
    let lines = result.stdout.split(separator: "\n").map(String.init)
    #expect(Array(lines.prefix(2)) == ["700 directory", "700 directory"], "\(result)")
    // The ring of the sh that lists them, at least.
    #expect(lines.count >= 3, "\(result)")
    #expect(lines.dropFirst(2).allSatisfy { $0 == "600 regular file" }, "\(result)")
    let traces = dir.traces(named: "t.")
    #expect(traces.count == 2, "\(traces)")
    for trace in traces { #expect(mode(trace) == 0o600, "\(trace)") }

    // The shim on its own, without a collector.
    let plain = try runCommand(
      "/bin/sh", ["-c", #"umask 0; exec env LD_PRELOAD="$1" MEMSIFT_OUTPUT="$2" "$3" 2 10"#, "sh", E2E.shim, dir.file("p.trace"), v.leak],
      in: dir)
    #expect(plain.exitedWith == 0, "\(plain)")
    #expect(mode(dir.file("p.trace")) == 0o600)
  }

  @Test func aLinkAtTheOutputPathIsRefusedBeforeTheProgramRuns() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let target = dir.file("target")
    try FileManager.default.createSymbolicLink(atPath: dir.file("t.trace"), withDestinationPath: target)
    let result = try memsiftRun([v.leak, "1", "1"], trace: dir.file("t.trace"), in: dir)
    #expect(result.exitedWith == 1, "\(result)")
    #expect(result.stderr == "memsift: refusing to write \(dir.file("t.trace")): it is a symbolic link, and memsift never writes through one\n")
    #expect(result.stdout == "", "the program did not run")
    #expect(!FileManager.default.fileExists(atPath: target))
  }

  @Test func aLinkPlantedAtATraceNameIsPassedOverAndSaidSo() throws {
    let dir = try TestDirectory()
    let target = dir.file("target")
    // exec keeps the PID, so the shell knows the name the next image's trace will want.
    let result = try runCommand(
      E2E.memsift,
      ["run", "-q"] + E2E.shimOptions + ["--", "sh", "-c", #"ln -s "$0" memsift.true.$$.trace; echo $$; exec /bin/true"#, target],
      in: dir)
    #expect(result.exitedWith == 0, "\(result)")
    let pid = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    let link = dir.file("memsift.true.\(pid).trace")
    let moved = dir.file("memsift.true.\(pid).2.trace")
    #expect(result.stderr == "memsift: \(link) is a symbolic link; not writing through it: the trace is \(moved)\n")
    #expect(!FileManager.default.fileExists(atPath: target))
    #expect(try report(moved, in: dir).ended == .init("exited", 0))
  }

  @Test func theShimAloneDoesNotWriteThroughALink() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let target = dir.file("target")
    try FileManager.default.createSymbolicLink(atPath: dir.file("p.trace"), withDestinationPath: target)
    var env = ProcessInfo.processInfo.environment
    env["LD_PRELOAD"] = E2E.shim
    env["MEMSIFT_OUTPUT"] = dir.file("p.trace")
    env["MEMSIFT_RUN_DIR"] = nil
    let result = try runCommand(v.leak, ["2", "10"], in: dir, environment: env)
    #expect(result.exitedWith == 0, "\(result)")
    #expect(!FileManager.default.fileExists(atPath: target))
    let traces = dir.traces(named: "p.").filter { $0 != dir.file("p.trace") }
    #expect(traces.count == 1, "\(traces)")
    #expect(
      result.stderr
        == "memsift: not writing through the symbolic link \(dir.file("p.trace")); the trace is \(traces.first ?? "")\n")
    #expect(try report(traces[0], in: dir).totals.leakedAllocations == 2)
  }

  enum Planted: String, CaseIterable { case link, sharedDirectory }

  @Test(arguments: Planted.allCases)
  func anUnsafeRuntimeDirectoryIsRefused(_ planted: Planted) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("runtime" + planted.rawValue)
    let base = dir.file("memsift")
    switch planted {
    case .link:
      #expect(mkdir(dir.file("elsewhere"), 0o700) == 0)
      try FileManager.default.createSymbolicLink(atPath: base, withDestinationPath: dir.file("elsewhere"))
    case .sharedDirectory:
      #expect(mkdir(base, 0o700) == 0 && chmod(base, 0o755) == 0)
    }
    let result = try memsiftRun(
      [v.leak, "1", "1"], trace: dir.file("t.trace"), in: dir, environment: environment(runtime: dir.path))
    #expect(result.exitedWith == 1, "\(result)")
    let expected =
      planted == .link
      ? "memsift: \(base) is a symbolic link; refusing to keep rings there\n"
      : "memsift: \(base) is not a directory of ours with mode 0700; refusing to use it\n"
    #expect(result.stderr == expected)
    #expect(result.stdout == "", "the program did not run")
    #expect(dir.allTraces.isEmpty)
    let throughLink = (try? FileManager.default.contentsOfDirectory(atPath: dir.file("elsewhere"))) ?? []
    #expect(throughLink.isEmpty, "nothing went through the link")
  }

  /// Run as root: `memsift snapshot` as an unprivileged user, aimed at a
  /// process of root's, and at one of its own for contrast.
  @Test(.enabled(if: getuid() == 0, "needs root to run a command as another user"))
  func anotherUsersProcessCannotBeMarked() throws {
    let dir = try TestDirectory()
    // The unprivileged memsift starts in the directory and runs from it: the
    // build directory may sit where that user cannot reach (a clone in /root).
    #expect(chmod(dir.path, 0o755) == 0)
    let memsift = dir.file("memsift")
    try FileManager.default.copyItem(atPath: E2E.memsift, toPath: memsift)
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    let rootsProcess = try Foundation.Process.run(URL(fileURLWithPath: "/bin/sleep"), arguments: ["60"])
    let ownProcess = try Foundation.Process.run(URL(fileURLWithPath: "/usr/bin/setpriv"), arguments: nobody + ["/bin/sleep", "60"])
    defer {
      rootsProcess.terminate()
      ownProcess.terminate()
    }
    var env = ProcessInfo.processInfo.environment
    env["XDG_RUNTIME_DIR"] = nil
    let refused = try runCommand(
      "/usr/bin/setpriv", nobody + [memsift, "snapshot", "\(rootsProcess.processIdentifier)", "x"], in: dir,
      environment: env)
    #expect(refused.exitedWith == 1, "\(refused)")
    #expect(
      refused.stderr
        == "memsift: process \(rootsProcess.processIdentifier) belongs to another user; memsift snapshot marks only your own processes\n")
    let own = try runCommand(
      "/usr/bin/setpriv", nobody + [memsift, "snapshot", "\(ownProcess.processIdentifier)", "x"], in: dir,
      environment: env)
    #expect(own.exitedWith == 1, "\(own)")
    #expect(own.stderr.contains("is not traced by memsift run"), "\(own)")
  }

  /// Every variable the shim reads, each with values no parser should
  /// accept: the program runs as without them, a trace is written, and
  /// stderr holds one line naming the variable.
  @Test func everyVariableWithABadValueCostsOneLine() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let long = String(repeating: "9", count: 10_000)
    let words = ["", "-1", "abc", "12abc", "0x10", " 5", "99999999999999999999999", long, String(repeating: "x", count: 5_000)]
    let numeric = [
      "MEMSIFT_DEPTH", "MEMSIFT_RING_MB", "MEMSIFT_RSS_INTERVAL_MS", "MEMSIFT_COLLECTOR_PID", "MEMSIFT_PYTHON_FRAMES",
      "MEMSIFT_PYTHON_ALLOCATORS", "MEMSIFT_SAMPLE_RATE", "MEMSIFT_SAMPLE_SEED", "MEMSIFT_PYTHON_NATIVE",
    ]
    var cases = numeric.flatMap { name in words.map { (name, $0) } }
    // Paths: too long to be a name the shim can build on, or a missing directory.
    cases += [
      ("MEMSIFT_OUTPUT", String(repeating: "d/", count: 2_500)), ("MEMSIFT_RUN_DIR", String(repeating: "d/", count: 2_500)),
      ("MEMSIFT_RUN_DIR", dir.file("missing")),
    ]
    for (index, (name, value)) in cases.enumerated() {
      var env = ProcessInfo.processInfo.environment
      env["LD_PRELOAD"] = E2E.shim
      env["MEMSIFT_RUN_DIR"] = nil
      env["MEMSIFT_OUTPUT"] = dir.file("v\(index).trace")
      env[name] = value
      let result = try runCommand(v.leak, ["2", "10"], in: dir, environment: env)
      let shown = "\(name)=\(value.prefix(20))…"
      #expect(result.exitedWith == 0, "\(shown): \(result)")
      #expect(try result.victim()["leaked_bytes"] == 20, "\(shown)")
      let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
      #expect(lines.count == 1 && lines[0].hasPrefix("memsift: ") && lines[0].contains(name), "\(shown): \(result.stderr)")
      #expect(lines.allSatisfy { $0.utf8.count <= 512 }, "\(shown): a bounded line")
      let trace = name == "MEMSIFT_OUTPUT" ? dir.traces(named: "memsift.leak.").first ?? "" : dir.file("v\(index).trace")
      #expect(try report(trace, in: dir).totals.leakedAllocations == 2, "\(shown)")
    }
  }
}
