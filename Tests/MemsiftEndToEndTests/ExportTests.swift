import Foundation
import Testing

/// `memsift export`: pprof read by `go tool pprof` (Debian's golang-go,
/// installed by tools/setup.sh), collapsed stacks, and the JSON report.
/// `sites N` (Tests/Victims/sites.c): leak_blocks leaks N×48 B,
/// keep_from_a→leaf leaks 3×100 B, churn_from_b→leaf frees 5×1000 B.
@Suite struct ExportTests {
  static let go = "/usr/bin/go"

  @Test func pprofListsTheLeakingFunctionWithItsExactInuseAndAllocatedBytes() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let trace = dir.file("sites.trace")
    let run = try memsiftRun([v.sites, "1000"], trace: trace, in: dir)
    #expect(run.exitedWith == 0, "\(run)")
    let profile = dir.file("sites.pb.gz")
    let export = try runCommand(E2E.memsift, ["export", trace, "--format", "pprof", "-o", profile], in: dir)
    try #require(export.exitedWith == 0, "\(export)")
    let bytes = try #require(FileManager.default.contents(atPath: profile))
    #expect(Array(bytes.prefix(2)) == [0x1f, 0x8b], "not gzip")

    let inuse = try Self.pprof(["-top", "-unit=B", "-sample_index=inuse_space", profile], in: dir)
    #expect(Self.flat(of: "leak_blocks", in: inuse) == "48000B", "\(inuse)")
    #expect(Self.flat(of: "leaf", in: inuse) == "300B", "\(inuse)")
    let objects = try Self.pprof(["-top", "-sample_index=inuse_objects", profile], in: dir)
    #expect(Self.flat(of: "leak_blocks", in: objects) == "1000", "\(objects)")
    // leaf allocated for both callers: 300 B kept and 5000 B freed.
    let allocated = try Self.pprof(["-top", "-unit=B", "-sample_index=alloc_space", profile], in: dir)
    #expect(Self.flat(of: "leaf", in: allocated) == "5300B", "\(allocated)")

    // The mapping carries the victim's build-id, as the JSON report gives it.
    let report = try report(trace, in: dir)
    let module = try #require(report.loadedModules.first { $0.path == v.sites })
    let raw = try Self.pprof(["-raw", profile], in: dir)
    #expect(raw.contains("\(v.sites) \(module.buildID)"), "\(raw)")
    // And the line of the call, from DWARF.
    let line = try sourceLine("@site:leak_blocks.malloc", in: "sites.c")
    #expect(raw.contains("leak_blocks \(E2E.victimSources)/sites.c:\(line)") || raw.contains("sites.c:\(line)"), "\(raw)")
  }

  @Test func anInlinedFrameIsALineOfTheLocationOfTheFunctionItWasInlinedInto() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let trace = dir.file("inlined.trace")
    let run = try memsiftRun([v.inlined, "6"], trace: trace, in: dir)
    #expect(run.exitedWith == 0, "\(run)")
    let profile = dir.file("inlined.pb.gz")
    let export = try runCommand(E2E.memsift, ["export", trace, "--format", "pprof", "-o", profile], in: dir)
    try #require(export.exitedWith == 0, "\(export)")
    // One location, two lines: make_block (inlined, the malloc's line) first, then fill (the call's line).
    let (malloc, call) = (try sourceLine("@site:make_block.malloc", in: "inlined.c"), try sourceLine("@site:fill.make_block", in: "inlined.c"))
    let raw = try Self.pprof(["-raw", profile], in: dir).split(separator: "\n").map(String.init)
    let first = try #require(raw.firstIndex { $0.contains(" make_block ") }, "\(raw)")
    #expect(raw[first].hasSuffix("inlined.c:\(malloc) s=0") && raw[first].contains(": 0x"), "\(raw[first])")
    #expect(
      raw[first + 1].trimmingCharacters(in: .whitespaces).hasPrefix("fill ") && raw[first + 1].hasSuffix("inlined.c:\(call) s=0"),
      "\(raw[first + 1])")
    let traces = try Self.pprof(["-traces", "-sample_index=inuse_space", profile], in: dir)
    #expect(traces.contains("384B   make_block (inline)"), "\(traces)")
  }

  @Test func aCPlusPlusFunctionHasItsDemangledNameAndItsSystemName() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let trace = dir.file("cache.trace")
    let run = try memsiftRun([v.cache, "9"], trace: trace, in: dir)
    #expect(run.exitedWith == 0, "\(run)")
    let profile = dir.file("cache.pb.gz")
    let export = try runCommand(E2E.memsift, ["export", trace, "--format", "pprof", "-o", profile], in: dir)
    try #require(export.exitedWith == 0, "\(export)")
    // 9 entries of 72 bytes, leaked.
    let top = try Self.pprof(["-top", "-unit=B", "-sample_index=inuse_space", profile], in: dir)
    #expect(Self.flat(of: SymbolizedReportTests.cacheInsert, in: top) == "648B", "\(top)")
    // The raw name is the function's system_name, in the string table.
    let unzipped = try runCommand("/bin/gzip", ["-dk", profile], in: dir)
    try #require(unzipped.exitedWith == 0, "\(unzipped)")
    let proto = try #require(FileManager.default.contents(atPath: dir.file("cache.pb")))
    #expect(proto.range(of: Data(SymbolizedReportTests.cacheInsertMangled.utf8)) != nil)
  }

  @Test func pprofDiffBaseShowsWhatTheSecondRunLeakedMore() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    var profiles: [String] = []
    for n in [100, 300] {
      let trace = dir.file("sites\(n).trace")
      let run = try memsiftRun([v.sites, String(n)], trace: trace, in: dir)
      #expect(run.exitedWith == 0, "\(run)")
      let profile = dir.file("sites\(n).pb.gz")
      let export = try runCommand(E2E.memsift, ["export", trace, "--format", "pprof", "-o", profile], in: dir)
      try #require(export.exitedWith == 0, "\(export)")
      profiles.append(profile)
    }
    let diff = try Self.pprof(
      ["-top", "-unit=B", "-sample_index=inuse_space", "-diff_base", profiles[0], profiles[1]], in: dir)
    #expect(Self.flat(of: "leak_blocks", in: diff) == "9600B", "\(diff)")
    #expect(Self.flat(of: "leaf", in: diff) == nil || Self.flat(of: "leaf", in: diff) == "0", "\(diff)")
  }

  @Test func pprofInuseAtALabelIsWhatWasLiveThere() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let trace = dir.file("snap.trace")
    let run = try memsiftRun([v.snapshots], trace: trace, in: dir, stdin: "go\n")
    #expect(run.exitedWith == 0, "\(run)")
    // At b: 10 blocks of 1000 B live; at the end: 5 of them and 10 blocks of 50 B.
    for (point, expected) in [("@b", "10000B"), ("@c", "5000B"), ("", "5500B")] {
      let profile = dir.unique("snap") + ".pb.gz"
      let export = try runCommand(E2E.memsift, ["export", trace + point, "--format", "pprof", "-o", profile], in: dir)
      try #require(export.exitedWith == 0, "\(export)")
      let top = try Self.pprof(["-top", "-unit=B", "-sample_index=inuse_space", profile], in: dir)
      #expect(top.contains("Total samples = \(expected)") || top.contains("of \(expected) total"), "\(point): \(top)")
    }
    let missing = try runCommand(E2E.memsift, ["export", trace + "@nosuch", "--format", "pprof"], in: dir)
    #expect(missing.exitedWith == 1 && missing.stderr.contains("no label \"nosuch\""), "\(missing)")
  }

  @Test func collapsedStacksCarryEachStacksExactFigure() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let trace = dir.file("sites.trace")
    let run = try memsiftRun([v.sites, "1000"], trace: trace, in: dir)
    #expect(run.exitedWith == 0, "\(run)")
    func collapsed(_ metric: String) throws -> [String: UInt64] {
      let r = try runCommand(E2E.memsift, ["export", trace, "--format", "collapsed", "--metric", metric], in: dir)
      try #require(r.exitedWith == 0, "\(r)")
      var out: [String: UInt64] = [:]
      for line in r.stdout.split(separator: "\n") {
        let space = try #require(line.lastIndex(of: " "), "\(line)")
        // Keyed by the stack from main on: what is outside main depends on the libc.
        let stack = String(line[..<space])
        let fromMain = stack.range(of: ";main;").map { String(stack[stack.index(after: $0.lowerBound)...]) } ?? stack
        out[fromMain] = try #require(UInt64(line[line.index(after: space)...]), "\(line)")
      }
      return out
    }
    #expect(try collapsed("leaked") == ["main;leak_blocks": 48000, "main;keep_from_a;leaf": 300])
    #expect(
      try collapsed("allocations")
        == ["main;leak_blocks": 1000, "main;keep_from_a;leaf": 3, "main;churn_from_b;leaf": 5])
    #expect(try collapsed("peak")["main;churn_from_b;leaf"] == 1000)
  }

  @Test func jsonExportIsTheReport() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let trace = dir.file("sites.trace")
    let run = try memsiftRun([v.sites, "10"], trace: trace, in: dir)
    #expect(run.exitedWith == 0, "\(run)")
    let export = try runCommand(E2E.memsift, ["export", trace, "--format", "json"], in: dir)
    let report = try runCommand(E2E.memsift, ["report", trace, "--format", "json"], in: dir)
    try #require(export.exitedWith == 0 && report.exitedWith == 0, "\(export)\n\(report)")
    #expect(export.stdout == report.stdout)
  }

  @Test func anOptionTheFormatWouldIgnoreIsRefused() throws {
    let dir = try TestDirectory()
    for (args, message) in [
      (["--format", "pprof", "--metric", "leaked"], "--metric does not apply to pprof"),
      (["--format", "collapsed", "--group-by", "function"], "--group-by applies to --format json only"),
      (["--format", "pprof", "--top", "5"], "--top applies to --format json only"),
    ] {
      let r = try runCommand(E2E.memsift, ["export", dir.file("any.trace")] + args, in: dir)
      #expect(r.exitedWith == 64 && r.stderr.hasPrefix("Error: \(message)"), "\(r)")
    }
  }

  /// `go tool pprof ARGS`; its output, or a failure with what it said.
  static func pprof(_ args: [String], in dir: TestDirectory) throws -> String {
    try #require(FileManager.default.isExecutableFile(atPath: go), "\(go) is missing: tools/setup.sh installs golang-go")
    var env = ProcessInfo.processInfo.environment
    env["HOME"] = dir.path  // pprof keeps a cache there
    env["GOCACHE"] = dir.file("gocache")
    let r = try runCommand(go, ["tool", "pprof"] + args, in: dir, environment: env)
    try #require(r.exitedWith == 0, "\(r)")
    return r.stdout
  }

  /// The flat column of `function`'s row in `pprof -top` output.
  static func flat(of function: String, in top: String) -> String? {
    // Five columns of figures, then the name (which may hold spaces).
    for line in top.split(separator: "\n") {
      let fields = line.split(separator: " ", maxSplits: 5)
      if fields.count == 6 && fields[5].trimmingCharacters(in: .whitespaces) == function { return String(fields[0]) }
    }
    return nil
  }
}
