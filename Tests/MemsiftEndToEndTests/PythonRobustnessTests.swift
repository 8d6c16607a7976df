import Foundation
import Testing

/// Python frames in the forms CPython runs code other than a script's
/// straight line: `-c` and `-m`, multiprocessing children (fork and spawn),
/// finalization under running daemon threads, code objects dying and their
/// addresses reused, interpreters whose frames are not read, and C code
/// allocating with the GIL released. Each victim (`Tests/Victims/py*.py`)
/// allocates blocks of sizes of its own at `@site:` lines, so each block is
/// found by its size and its Python frames are checked against the lines.
///
/// The interpreters are run directly (not through pyenv's wrapper scripts,
/// which would add traces of bash) and with `-S` (no site module: fewer
/// startup allocations, so smaller traces to read). Every report has
/// `--top`: a Python trace has thousands of stacks.
@Suite struct PythonRobustnessTests {
  static let kib: UInt64 = 1024
  /// What `b"x" * n` asks of malloc beyond n: a bytes object's header and NUL.
  static let bytesHeader: UInt64 = 33

  static func victim(_ name: String) -> String { E2E.victimSources + "/" + name }

  static func line(_ site: String, in file: String) throws -> Int { try sourceLine("@site:\(site)", in: file) }

  /// `memsift run -q -o DIR/NAME.trace -- COMMAND...` with `environment`
  /// added to the test's, then every trace it wrote reported with `--sort
  /// SORT --top TOP`.
  static func trace(
    _ command: [String], in dir: TestDirectory, name: String = "run", sort: String, top: Int,
    environment: [String: String] = [:]
  ) throws -> TracedRun {
    let result = try run(command, in: dir, name: name, environment: environment)
    let reports = try Self.reports(named: name + ".", in: dir, sort: sort, top: top)
    return TracedRun(result: result, reports: reports, first: dir.file(name + ".trace"))
  }

  /// `memsift run -q -o DIR/NAME.trace -- COMMAND...` with `environment` added to the test's.
  static func run(
    _ command: [String], in dir: TestDirectory, name: String = "run", environment: [String: String] = [:]
  ) throws -> CommandResult {
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    return try memsiftRun(command, trace: dir.file(name + ".trace"), in: dir, environment: env)
  }

  /// The traces of `dir` whose names start with `stem`, reported with
  /// `--sort SORT --top TOP`, in the order their images started.
  static func reports(named stem: String, in dir: TestDirectory, sort: String, top: Int) throws -> [Report] {
    try dir.traces(named: stem).map { try siteReport($0, ["--sort", sort, "--top", String(top)], in: dir).0 }
      .sorted { ($0.process?.startWallNs ?? 0) < ($1.process?.startWallNs ?? 0) }
  }

  /// The site of exactly one block of `bytes`, still live at the end.
  static func leaked(_ sites: [Report.Site], bytes: UInt64) throws -> Report.Site {
    try #require(
      sites.first { $0.leakedAllocations == 1 && $0.leakedBytes == bytes },
      "no site leaked one block of \(bytes) among \(sites.prefix(12).map { ($0.leakedBytes, $0.leakedAllocations) })")
  }

  /// The site of exactly one allocation, of `bytes`.
  static func allocated(_ sites: [Report.Site], bytes: UInt64) throws -> Report.Site {
    try #require(
      sites.first { $0.allocations == 1 && $0.bytesAllocated == bytes },
      "no site allocated one block of \(bytes) among \(sites.prefix(12).map { ($0.bytesAllocated, $0.allocations) })")
  }

  static func python(_ site: Report.Site) -> [String] { PythonFramesTests.python(site) }

  /// The innermost Python frame's file.
  static func pythonFile(_ site: Report.Site) -> String? { site.frames.first { $0.isPython }?.file }

  // MARK: 1. -c and -m

  /// A `-c` program: CPython compiles it as file `<string>`, its lines
  /// counted from the first of the argument.
  static let program = [
    "import os",
    "kept = []",
    "def allocate():",
    "    kept.append(b'c' * (122 * 1024))  # @site:c_allocate",
    "allocate()  # @site:c_call",
    "print('{\"kept\": %d}' % len(kept), flush=True)",
    "os._exit(0)",
  ]

  static func programLine(_ marker: String) throws -> Int {
    try #require(program.firstIndex { $0.contains("@site:" + marker) }) + 1
  }

  /// Neither form is a file the interpreter opens itself: `-c` code has no
  /// file at all, and `-m` code is run by runpy from Python, under frames of
  /// its own. Both must still name their lines.
  @Test(arguments: PythonFramesTests.interpreters)
  func dashCNamesStringAndItsLineAndDashMNamesTheModuleFileAndLine(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let dir = try TestDirectory()

    // -c: the module code is the argument, run from C (no Python frame under it).
    let c = try Self.trace(
      [interpreter, "-S", "-c", Self.program.joined(separator: "\n")], in: dir, name: "c", sort: "leaked", top: 5)
    #expect(c.result.exitedWith == 0 && c.result.stderr == "", "\(c.result)")
    #expect(try c.result.victim()["kept"] == 1, "\(c.result)")
    let fromC = try Self.leaked(try #require(c.main().sites), bytes: 122 * Self.kib + Self.bytesHeader)
    let cLines = ["allocate:\(try Self.programLine("c_allocate"))", "<module>:\(try Self.programLine("c_call"))"]
    #expect(Self.python(fromC) == cLines, "\(fromC)")
    #expect(fromC.frames.filter(\.isPython).allSatisfy { $0.file == "<string>" }, "\(fromC)")

    // -m: runpy finds the module on PYTHONPATH and runs it as __main__.
    let m = try Self.trace(
      [interpreter, "-S", "-m", "pymodule"], in: dir, name: "m", sort: "leaked", top: 5,
      environment: ["PYTHONPATH": E2E.victimSources])
    #expect(m.result.exitedWith == 0 && m.result.stderr == "", "\(m.result)")
    let line = try m.result.victim()
    #expect(line.string("name") == "__main__" && line["kept"] == 1, "\(line)")
    let fromM = try Self.leaked(try #require(m.main().sites), bytes: 121 * Self.kib + Self.bytesHeader)
    let module = "pymodule.py"
    #expect(
      Self.python(fromM).prefix(2)
        == ["allocate:\(try Self.line("allocate", in: module))", "<module>:\(try Self.line("call", in: module))"],
      "\(fromM)")
    #expect(fromM.frames.filter(\.isPython).prefix(2).allSatisfy { $0.file == Self.victim(module) }, "\(fromM)")
    // Under the module: runpy's frames, which ran it.
    #expect(Self.python(fromM).dropFirst(2).contains { $0.hasPrefix("_run_module_as_main:") }, "\(fromM)")
  }

  // MARK: 2. multiprocessing

  /// A fork child inherits the parent's code table and frames mid-call; a
  /// spawn child is a new interpreter started by fork and exec. Each must
  /// write a trace of its own, naming its own function, and exit cleanly.
  @Test(arguments: PythonFramesTests.interpreters)
  func forkAndSpawnChildrenEachTraceTheirOwnFunctionAndLineAndExitZero(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let dir = try TestDirectory()
    let file = "pyprocs.py"
    // The children's traces only: picked by the pids the parent prints.
    let result = try Self.run([interpreter, "-S", Self.victim(file)], in: dir)
    #expect(result.exitedWith == 0 && result.stderr == "", "\(result)")
    let children = try #require(try result.victim().object["children"] as? [String: [String: Int]], "\(result)")

    // The fork child leaves through os._exit (multiprocessing's fork
    // children do); the spawn child, a new interpreter, through sys.exit.
    for (method, function, kib, ended) in [
      ("fork", "in_fork_child", UInt64(1031), Report.Ended("_exit", 0)),
      ("spawn", "in_spawn_child", UInt64(1032), Report.Ended("exit", 0)),
    ] {
      let child = try #require(children[method], "\(result)")
      #expect(child["exitcode"] == 0, "\(method): \(child)")
      let pid = try #require(child["pid"])
      // One trace per image of the child: the last one ran the target.
      let reports = try Self.reports(named: "run.\(pid).", in: dir, sort: "allocated", top: 5)
      let report = try #require(reports.last, "\(method): no trace of pid \(pid) in \(dir.allTraces)")
      #expect(report.complete, "\(method)")
      #expect(report.ended == ended, "\(method)")
      let site = try Self.allocated(try #require(report.sites), bytes: kib * Self.kib + Self.bytesHeader)
      let python = Self.python(site)
      #expect(python.first == "\(function):\(try Self.line(method + "_child", in: file))", "\(method): \(site)")
      #expect(Self.pythonFile(site) == Self.victim(file), "\(method): \(site)")
      // multiprocessing called the target from BaseProcess.run.
      #expect(python.dropFirst().first?.hasPrefix("BaseProcess.run:") == true, "\(method): \(site)")
    }
  }

  // MARK: 3. Finalization under daemon threads

  static let finalizationRuns = 15
  /// pyfinal.py's THREADS, WARMUP and BLOCK.
  static let daemons: UInt64 = 4
  static let warmup: UInt64 = 100
  static let block: UInt64 = 1024 * 1024 + 1

  /// Finalization frees the thread states of daemon threads that may be in
  /// malloc at that moment, reading their frames: the one place where what
  /// the shim reads can die under it. Run many times, every run must end
  /// (a hang is killed at E2E.commandTimeout and fails the test) with status
  /// 0, nothing on stderr, and a complete trace.
  @Test(arguments: PythonFramesTests.interpreters)
  func daemonThreadsAllocatingWhileTheInterpreterFinalizesNeverCrashOrHang(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let dir = try TestDirectory()
    let file = "pyfinal.py"
    let warm = "churn:\(try Self.line("warm", in: file))"
    for k in 1...Self.finalizationRuns {
      // A hang is killed at E2E.commandTimeout and fails here.
      let run = try Self.trace(
        [interpreter, "-S", Self.victim(file)], in: dir, name: "run\(k)", sort: "allocated", top: 1000)
      #expect(run.result.exitedWith == 0 && run.result.stderr == "", "run \(k): \(run.result)")
      #expect(try run.result.victim()["threads"] == Self.daemons, "run \(k): \(run.result)")
      try #require(run.reports.count == 1, "run \(k): \(run.reports.map(\.trace))")
      let report = run.reports[0]
      #expect(report.complete, "run \(k)")
      #expect(report.ended == .init("exited", 0), "run \(k)")
      #expect(report.threads == Int(Self.daemons) + 1, "run \(k): the main thread and the daemons")
      // Every daemon's warm-up blocks, named by its warm-up line (one stack
      // or a few: the native frames of a call may differ once specialized).
      // All sites are read: single-block warm-up stacks can rank below the
      // churn loop's (a top 12 lost some of them once in about 12 runs).
      let warmSites = try #require(report.sites).filter {
        Self.python($0).first == warm && $0.bytesAllocated == $0.allocations * Self.block
      }
      #expect(
        warmSites.reduce(0) { $0 + $1.allocations } == Self.daemons * Self.warmup,
        "run \(k): \(warmSites)")
    }
  }

  // MARK: 4. Code objects freed and their addresses reused

  static let rounds = 30

  /// The shim names code objects by address: once one dies, the next may
  /// take its address, and its file name and line table may take those of
  /// the dead one's too. Each round must still be a stack of its own, named
  /// by its own file and lines, never by a dead round's.
  @Test(arguments: PythonFramesTests.interpreters)
  func everyRoundOfReusedCodeAddressesNamesItsOwnFileAndLine(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let dir = try TestDirectory()
    let file = "pyreuse.py"
    // Both series' 60 blocks are the biggest leaks: every one among the top.
    let run = try Self.trace([interpreter, "-S", Self.victim(file)], in: dir, sort: "leaked", top: 2 * Self.rounds + 10)
    #expect(run.result.exitedWith == 0 && run.result.stderr == "", "\(run.result)")
    let line = try run.result.victim()
    #expect(line["kept"] == UInt64(2 * Self.rounds), "\(line)")
    let sites = try #require(try run.main().sites)

    for (series, base, caller) in [("file", UInt64(200), "in_file"), ("string", UInt64(300), "in_string")] {
      let counts = try #require(line.object[series] as? [String: Int], "\(line)")
      print("\(interpreter) \(series): \(counts["reused"] ?? 0) of \(Self.rounds) rounds reused a code address")
      #expect((counts["reused"] ?? 0) > 0, "no address was reused: the test proves nothing here: \(line)")
      let exec = "\(caller):\(try Self.line(caller, in: file))"
      var wrong: [String] = []
      for i in 0..<Self.rounds {
        let expectedFile = series == "file" ? "gen\(i).py" : "<string>"
        let expected = ["f:\(i + 2)", "<module>:\(i + 3)", exec]
        // A round named as another shares that round's stack: no site of its own.
        guard let site = sites.first(where: {
          $0.leakedAllocations == 1 && $0.leakedBytes == (base + UInt64(i)) * Self.kib + Self.bytesHeader
        }) else {
          wrong.append("\(expectedFile) round \(i): no site of its own")
          continue
        }
        let python = Self.python(site)
        let files = site.frames.filter(\.isPython).prefix(2).map { $0.file ?? "?" }
        if Array(python.prefix(3)) != expected || files != [expectedFile, expectedFile] {
          wrong.append("\(expectedFile) round \(i): \(zip(files, python).map { "\($0) \($1)" })")
        }
      }
      #expect(
        wrong.isEmpty,
        "\(series): \(wrong.count) of \(Self.rounds) rounds misnamed (\(counts)):\n\(wrong.joined(separator: "\n"))")
    }
  }

  // MARK: 5. Interpreters whose frames are not read

  /// Older than 3.11: no Py_Version symbol.
  static let unsupported = [
    "/root/.pyenv/versions/3.10.13/bin/python3.10",
    "/root/.pyenv/versions/2.7.18/bin/python2.7",
  ]
  static let olderWarning = "memsift: Python older than 3.11: its allocations are traced with native frames only"

  /// An interpreter the shim has no layout for must run as before, with one
  /// line saying its frames are native only, and no Python frame made up.
  @Test(arguments: unsupported)
  func anOlderPythonRunsWithOneWarningLineAndNativeFramesOnly(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let dir = try TestDirectory()
    let run = try Self.trace([interpreter, "-S", Self.victim("pymodule.py")], in: dir, sort: "leaked", top: 10)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    #expect(run.result.stderr == Self.olderWarning + "\n", "\(run.result)")
    #expect(try run.result.victim()["kept"] == 1, "\(run.result)")
    let sites = try #require(try run.main().sites)
    #expect(!sites.contains { $0.frames.contains(where: \.isPython) }, "\(sites.prefix(3))")
    // The block (a bytes or, in 2.7, a str object of 121 KiB) under the
    // evaluation loop, which stays a native frame.
    let site = try #require(
      sites.first { $0.leakedAllocations == 1 && (121 * Self.kib..<121 * Self.kib + 64).contains($0.leakedBytes) },
      "\(sites.prefix(5))")
    #expect(
      site.frames.contains { ["_PyEval_EvalFrameDefault", "PyEval_EvalFrameEx"].contains($0.function ?? "") },
      "\(site)")
  }

  /// MEMSIFT_PYTHON_FRAMES=0 turns the feature off quietly, leaving the
  /// stacks as they were without it.
  @Test(arguments: PythonFramesTests.interpreters)
  func pythonFramesOffGivesNativeFramesOnlyAndNoWarning(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let dir = try TestDirectory()
    let run = try Self.trace(
      [interpreter, "-S", Self.victim("pymodule.py")], in: dir, sort: "leaked", top: 10,
      environment: ["MEMSIFT_PYTHON_FRAMES": "0"])
    #expect(run.result.exitedWith == 0 && run.result.stderr == "", "\(run.result)")
    let sites = try #require(try run.main().sites)
    #expect(!sites.contains { $0.frames.contains(where: \.isPython) }, "\(sites.prefix(3))")
    // The evaluation loop is where Python frames would have been.
    let site = try Self.leaked(sites, bytes: 121 * Self.kib + Self.bytesHeader)
    #expect(site.frames.contains { $0.function?.hasPrefix("_PyEval_EvalFrameDefault") == true }, "\(site)")
  }

  // MARK: 6. C code allocating with the GIL released

  /// OpenSSL's scrypt work area for pygil.py's N, r and p: p·128·r + 32·r·(N+2)·4.
  static let scryptBytes: UInt64 = 1 * 128 * 8 + 32 * 8 * (4096 + 2) * 4
  /// pygil.py's SPIN_BLOCK, as a bytes object.
  static let spinBytes: UInt64 = 1024 * 1024 + bytesHeader

  /// With the GIL released, the thread allocating is not the one whose
  /// frames are current in the interpreter: the shim must read the
  /// allocating thread's own state, so its Python caller is the one named.
  @Test(arguments: PythonFramesTests.interpreters)
  func anAllocationWithTheGILReleasedNamesItsOwnThreadsPythonCallerAboveTheNativeFrames(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let dir = try TestDirectory()
    let file = "pygil.py"
    let run = try Self.trace([interpreter, "-S", Self.victim(file)], in: dir, sort: "allocated", top: 5)
    #expect(run.result.exitedWith == 0 && run.result.stderr == "", "\(run.result)")
    #expect(try run.result.victim()["kept"] == 1, "\(run.result)")
    let sites = try #require(try run.main().sites)

    let work = try Self.allocated(sites, bytes: Self.scryptBytes)
    let caller = try #require(work.frames.firstIndex { $0.isPython }, "\(work)")
    let derive = "derive:\(try Self.line("derive", in: file))"
    #expect(Self.python(work).first == derive, "\(work)")
    #expect(Self.python(work).dropFirst().first?.hasPrefix("Thread.run:") == true, "\(work)")
    #expect(Self.pythonFile(work) == Self.victim(file), "\(work)")
    // Above derive: OpenSSL and the C extension, native frames only, and no
    // evaluation loop left unreplaced.
    let native = work.frames[..<caller]
    #expect(native.contains { $0.function == "EVP_PBE_scrypt" }, "\(work)")
    #expect(!native.contains { $0.function?.hasPrefix("_PyEval_EvalFrameDefault") == true }, "\(work)")

    // Meanwhile the main thread, holding the GIL, allocated at its own line
    // (one block of pygil.py's SPIN_BLOCK a round), under the module's code.
    let spin = "spin:\(try Self.line("spin", in: file))"
    let spinning = try #require(sites.first { Self.python($0).first == spin }, "\(sites.map(Self.python))")
    #expect(spinning.bytesAllocated == spinning.allocations * Self.spinBytes, "\(spinning)")
    #expect(Self.python(spinning).dropFirst().first?.hasPrefix("<module>:") == true, "\(spinning)")
  }
}
