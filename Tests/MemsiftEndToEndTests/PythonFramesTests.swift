import Foundation
import Testing

/// Python frames in the stacks of CPython programs (`Tests/Victims/pyframes.py`),
/// on every interpreter of a supported version found on the machine. The
/// victim makes one allocation of a known size at each `@site:` line and
/// leaves with os._exit, so each site is found by its leaked bytes and its
/// Python frames are checked against the source's lines.
@Suite struct PythonFramesTests {
  /// Interpreters tried, where installed: Debian's (static libpython,
  /// stripped) and pyenv's shared builds of 3.11, 3.12 and 3.13.
  static let interpreters = [
    "/usr/bin/python3.11",
    "/root/.pyenv/versions/3.11.7/bin/python3.11",
    "/root/.pyenv/versions/3.12.1/bin/python3.12",
    "/root/.pyenv/versions/3.13.0/bin/python3.13",
  ]
  static let victim = "pyframes.py"
  static let kib: UInt64 = 1024

  /// The interpreter, or nil (and a note) when this machine lacks it.
  static func installed(_ path: String) -> String? {
    if FileManager.default.isExecutableFile(atPath: path) { return path }
    print("skipped: \(path) is not installed")
    return nil
  }

  static func line(_ site: String) throws -> Int { try sourceLine("@site:\(site)", in: victim) }

  /// The site that leaked `count` blocks of `kib` KiB (plus a bytes object's
  /// header each; with `slack`, also up to that many more bytes in more
  /// blocks: a line that appends grows its list there too).
  static func site(_ sites: [Report.Site], kib: UInt64, count: UInt64 = 1, slack: UInt64 = 0) throws -> Report.Site {
    let bytes = kib * Self.kib * count
    return try #require(
      sites.first {
        (slack > 0 ? $0.leakedAllocations >= count : $0.leakedAllocations == count) && $0.leakedBytes >= bytes
          && $0.leakedBytes <= bytes + 64 * count + slack
      },
      "no site leaked \(count) × \(kib) KiB among \(sites.prefix(12).map { ($0.leakedBytes, $0.leakedAllocations) })")
  }

  /// The Python frames of a stack as "function:line", innermost first.
  static func python(_ site: Report.Site) -> [String] {
    site.frames.filter(\.isPython).map { "\($0.function ?? "?"):\($0.line.map(String.init) ?? "?")" }
  }

  static func traceVictim(_ interpreter: String, in dir: TestDirectory, options: [String] = []) throws -> String {
    let trace = dir.file("run.trace")
    let result = try memsiftRun(
      [interpreter, E2E.victimSources + "/" + victim], trace: trace, options: options, in: dir)
    let run = TracedRun(result: result, reports: [], first: trace)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    #expect(run.result.stderr == "", "\(run.result)")
    let line = try run.result.victim()
    #expect(line["kept"] == 37, "\(run.result)")
    return run.first
  }

  @Test(arguments: interpreters)
  func eachSiteNamesItsPythonLinesInOrderAboveTheNativeFramesInEveryView(_ path: String) throws {
    guard let interpreter = Self.installed(path) else { return }
    let dir = try TestDirectory()
    let trace = try Self.traceVictim(interpreter, in: dir)
    let (report, _) = try siteReport(trace, ["--sort", "leaked", "--top", "40"], in: dir)
    let sites = try #require(report.sites)
    let file = E2E.victimSources + "/" + Self.victim
    let line = try Dictionary(
      uniqueKeysWithValues: [
        "inner", "outer", "module", "worker", "drive_gen", "gen", "meth", "sorted", "native", "thread_a", "thread_b",
        "thread_c", "thread_d",
      ].map { ($0, String(try Self.line($0))) })

    // Nested calls in one evaluation loop: inner, under outer, under the module.
    let nested = try Self.site(sites, kib: 101)
    #expect(
      Self.python(nested).prefix(3) == ["inner:\(line["inner"]!)", "outer:\(line["outer"]!)",
        "<module>:\(line["module"]!)"], "\(nested)")
    #expect(nested.frames.first { $0.isPython }?.file == file, "\(nested)")
    // Native frames (the bytes object's allocation) sit above the Python ones,
    // and no evaluation loop is left where Python frames took its place.
    #expect(nested.frames.first?.isPython == false, "\(nested)")
    let innerIndex = try #require(nested.frames.firstIndex { $0.isPython })
    #expect(
      !nested.frames[..<innerIndex].contains { $0.function?.hasPrefix("_PyEval_EvalFrameDefault") == true },
      "\(nested)")

    // A thread, and a generator it drives: each in its own evaluation loop.
    let threaded = try Self.site(sites, kib: 103)
    #expect(
      Self.python(threaded).prefix(2) == ["worker:\(line["worker"]!)", "Thread.run:\(Self.threadRunLine(threaded))"],
      "\(threaded)")
    let generated = try Self.site(sites, kib: 102)
    #expect(
      Self.python(generated).prefix(3)
        == ["gen:\(line["gen"]!)", "worker:\(line["drive_gen"]!)", "Thread.run:\(Self.threadRunLine(generated))"],
      "\(generated)")

    // A method called back by the C builtin sorted. The shim unwinds natively
    // only up to the innermost evaluation loop (--python-native innermost,
    // the default): the Python frames say the rest.
    let callback = try Self.site(sites, kib: 104)
    #expect(Self.python(callback) == ["K.meth:\(line["meth"]!)", "<module>:\(line["sorted"]!)"], "\(callback)")
    let meth = try #require(callback.frames.firstIndex { $0.isPython })
    #expect(callback.frames[meth...].allSatisfy { $0.isPython }, "native frames above Python code: \(callback)")

    // Native code called through ctypes: the Python caller above libffi.
    let native = try Self.site(sites, kib: 105)
    #expect(Self.python(native).first == "call_native:\(line["native"]!)", "\(native)")
    let caller = try #require(native.frames.firstIndex { $0.isPython })
    #expect(native.frames[..<caller].contains { $0.function == "ffi_call" }, "\(native)")

    // Four threads at once: each thread's allocations name its own function.
    for (i, name) in ["thread_a", "thread_b", "thread_c", "thread_d"].enumerated() {
      let site = try Self.site(sites, kib: 111 + UInt64(i), count: 8)
      #expect(Self.python(site).first == "\(name):\(line[name]!)", "\(site)")
    }

    try viewsShowPythonOnlyOrNativeOnlyAndLinesGroupByTheirPythonLine(trace, in: dir)
  }

  /// `--python-native all`: the native frames between Python frames stay,
  /// each evaluation loop replaced by the Python frames it ran.
  @Test(arguments: interpreters)
  func allNativeFramesStayBetweenThePythonFramesOnRequest(_ path: String) throws {
    guard let interpreter = Self.installed(path) else { return }
    let dir = try TestDirectory()
    let trace = try Self.traceVictim(interpreter, in: dir, options: ["--python-native", "all"])
    let (report, _) = try siteReport(trace, ["--sort", "leaked", "--top", "40"], in: dir)
    let callback = try Self.site(try #require(report.sites), kib: 104)
    let line = try Self.line("meth")
    #expect(Self.python(callback).first == "K.meth:\(line)", "\(callback)")
    let meth = try #require(callback.frames.firstIndex { $0.isPython })
    // sorted's own frames, and below the module the interpreter's start-up.
    #expect(!callback.frames[(meth + 1)...].prefix { !$0.isPython }.isEmpty, "sorted's native frames: \(callback)")
    #expect(callback.frames.last?.isPython == false, "\(callback)")
  }

  /// Thread.run's line in this interpreter's threading.py (the frame under
  /// worker); read from the site itself, checked to be Thread.run's.
  static func threadRunLine(_ site: Report.Site) -> String {
    let frame = site.frames.first { $0.isPython && $0.function == "Thread.run" }
    return frame.flatMap { $0.file?.hasSuffix("/threading.py") == true ? $0.line.map(String.init) : nil } ?? "?"
  }

  func viewsShowPythonOnlyOrNativeOnlyAndLinesGroupByTheirPythonLine(_ trace: String, in dir: TestDirectory) throws {
    let top = ["--sort", "leaked", "--top", "40"]

    // --frames python: the native frame that allocated, then Python frames only.
    let (pythonView, _) = try siteReport(trace, top + ["--frames", "python"], in: dir)
    let nested = try Self.site(try #require(pythonView.sites), kib: 101)
    #expect(nested.frames.first?.isPython == false, "\(nested)")
    #expect(nested.frames.dropFirst().allSatisfy { $0.isPython }, "\(nested)")
    #expect(Self.python(nested).prefix(3).map { $0.split(separator: ":")[0] } == ["inner", "outer", "<module>"])

    // --frames native: no Python frame; the evaluation loop is there instead.
    let (nativeView, _) = try siteReport(trace, top + ["--frames", "native"], in: dir)
    let raw = try Self.site(try #require(nativeView.sites), kib: 101)
    #expect(!raw.frames.contains { $0.isPython }, "\(raw)")
    #expect(raw.frames.contains { $0.function?.hasPrefix("_PyEval_EvalFrameDefault") == true }, "\(raw)")

    // --group-by line: the four threads' sites are their four lines, named by
    // the Python frame (file and line), with all 8 blocks each.
    let (byLine, _) = try siteReport(trace, top + ["--group-by", "line"], in: dir)
    let groups = try #require(byLine.sites)
    for (i, name) in ["thread_a", "thread_b", "thread_c", "thread_d"].enumerated() {
      let group = try Self.site(groups, kib: 111 + UInt64(i), count: 8, slack: 4096)
      let frame = try #require(group.frames.first)
      let expected = try Self.line(name)
      #expect(frame.isPython && frame.line == expected, "\(group)")
      #expect(frame.file == E2E.victimSources + "/" + Self.victim, "\(group)")
    }
  }
}
