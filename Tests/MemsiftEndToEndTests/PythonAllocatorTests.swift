import Foundation
import Testing

/// CPython's own allocators hooked by the shim (`cshim/src/pymem.c`):
/// `memsift run` leaves pymalloc in place, and each object is still one
/// allocation at the line that made it (`Tests/Victims/pyobjects.py`), on
/// every supported interpreter found on the machine. Each test would fail if
/// the hooks were not installed (small objects unseen), recorded an object
/// twice (pymalloc's malloc of a big one), or lost frees.
@Suite struct PythonAllocatorTests {
  static let victim = "pyobjects.py"

  /// One line's group (`--group-by line`): allocations, bytes, and what leaked.
  struct Line: Equatable, CustomStringConvertible {
    var allocations: UInt64
    var bytes: UInt64
    var leakedAllocations: UInt64
    var leakedBytes: UInt64
    var description: String { "\(allocations) allocations of \(bytes) B, \(leakedAllocations) leaked (\(leakedBytes) B)" }
  }

  /// The victim's three sites as the victim's docstring sizes them: 1000
  /// bytes objects of 133 bytes kept, 10 of 633 (over pymalloc's 512-byte
  /// limit) kept, 500 of 183 each freed by the next but the last.
  static let expected: [String: Line] = [
    "small": Line(allocations: 1000, bytes: 133_000, leakedAllocations: 1000, leakedBytes: 133_000),
    "big": Line(allocations: 10, bytes: 6330, leakedAllocations: 10, leakedBytes: 6330),
    "temp": Line(allocations: 500, bytes: 91_500, leakedAllocations: 1, leakedBytes: 183),
  ]

  /// Runs the victim under `memsift run` with `environment` added to the
  /// test's (PYTHONMALLOC removed unless given); returns the victim's line
  /// and its sites grouped by line.
  static func run(_ interpreter: String, environment: [String: String] = [:], options: [String] = []) throws -> (
    VictimLine, [String: Line], Report
  ) {
    let dir = try TestDirectory()
    var env = ProcessInfo.processInfo.environment
    env["PYTHONMALLOC"] = nil
    env.merge(environment) { $1 }
    let trace = dir.file("run.trace")
    let result = try memsiftRun(
      [interpreter, E2E.victimSources + "/" + victim], trace: trace, options: options, in: dir, environment: env)
    #expect(result.exitedWith == 0, "\(result)")
    #expect(result.stderr == "", "\(result)")
    let line = try result.victim()
    #expect(line["kept"] == 1010, "\(result)")
    let (byLine, _) = try siteReport(trace, ["--group-by", "line", "--top", "100000"], in: dir)
    let file = E2E.victimSources + "/" + victim
    var lines: [String: Line] = [:]
    for name in expected.keys {
      let number = try sourceLine("@site:\(name)", in: victim)
      let group = (byLine.sites ?? []).first {
        $0.frames.first.map { $0.isPython && $0.file == file && $0.line == number } ?? false
      }
      if let group {
        lines[name] = Line(
          allocations: group.allocations, bytes: group.bytesAllocated, leakedAllocations: group.leakedAllocations,
          leakedBytes: group.leakedBytes)
      }
    }
    let (bySite, _) = try siteReport(trace, ["--sort", "leaked", "--top", "40", "--keep-allocator-frames"], in: dir)
    return (line, lines, bySite)
  }

  /// Without PYTHONMALLOC=malloc (memsift run no longer sets it): every
  /// object counted once at its line, small or big, and every free matched.
  @Test(arguments: PythonFramesTests.interpreters)
  func pymallocObjectsAreEachOneAllocationAtTheirLine(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let (victim, lines, bySite) = try Self.run(interpreter)
    #expect(victim.string("pythonmalloc") == "", "memsift run set PYTHONMALLOC: \(victim)")
    #expect(lines == Self.expected, "\(lines)")
    // The hooks' own frames are not in the stack: the innermost frame is the
    // interpreter's, even with the allocator frames kept.
    let top = try #require(bySite.sites?.first { $0.leakedAllocations == 1000 }, "\(bySite.sites ?? [])")
    #expect(!top.frames.contains { $0.module.hasSuffix("libmemsift.so") }, "\(top)")
    #expect(top.frames.first?.isPython == false, "\(top)")
  }

  /// PYTHONMALLOC=malloc set by the user: the hooks call malloc under the
  /// shim's guard, so each object is still recorded once, by the hook.
  @Test(arguments: PythonFramesTests.interpreters)
  func pythonMallocSetByTheUserStillCountsEachObjectOnce(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let (victim, lines, _) = try Self.run(interpreter, environment: ["PYTHONMALLOC": "malloc"])
    #expect(victim.string("pythonmalloc") == "malloc", "\(victim)")
    #expect(lines == Self.expected, "\(lines)")
  }

  /// MEMSIFT_PYTHON_ALLOCATORS=0: no hooks, and memsift run sets
  /// PYTHONMALLOC=malloc as it did before them; the same counts, from malloc.
  @Test(arguments: PythonFramesTests.interpreters)
  func withoutTheHooksMemsiftRunFallsBackToPythonMallocMalloc(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let (victim, lines, _) = try Self.run(interpreter, environment: ["MEMSIFT_PYTHON_ALLOCATORS": "0"])
    #expect(victim.string("pythonmalloc") == "malloc", "\(victim)")
    #expect(lines == Self.expected, "\(lines)")
  }

  /// An interpreter whose allocators are not hooked (older than 3.11) keeps
  /// the PYTHONMALLOC=malloc memsift run sets as its fallback: its small
  /// objects are mallocs, all in one native stack (no Python frames there).
  @Test func anUnhookedPythonKeepsPythonMallocMallocAndEveryObjectIsSeen() throws {
    guard let interpreter = PythonFramesTests.installed("/root/.pyenv/versions/3.10.13/bin/python3.10") else { return }
    let dir = try TestDirectory()
    var env = ProcessInfo.processInfo.environment
    env["PYTHONMALLOC"] = nil
    let trace = dir.file("run.trace")
    let result = try memsiftRun(
      [interpreter, E2E.victimSources + "/" + Self.victim], trace: trace, in: dir, environment: env)
    #expect(result.exitedWith == 0, "\(result)")
    let victim = try result.victim()
    #expect(victim.string("pythonmalloc") == "malloc", "\(victim)")
    let (report, _) = try siteReport(trace, ["--sort", "leaked", "--top", "5"], in: dir)
    // The 1000 small objects, the 10 big ones and the last temporary.
    #expect((report.sites ?? []).contains { $0.leakedAllocations == 1011 }, "\(report.sites ?? [])")
  }

  /// Sampled: the hooks sample as malloc does. At a rate of 1 byte every
  /// allocation is sampled, so the counts are exact and frees still match.
  @Test(arguments: PythonFramesTests.interpreters)
  func sampledAtEveryByteTheHooksRecordTheSameCounts(_ path: String) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let (_, lines, _) = try Self.run(interpreter, options: ["--sample-rate", "1"])
    // Scaled by 1 / (1 - exp(-s)): the counts are exact, the bytes too.
    #expect(lines.mapValues(\.allocations) == Self.expected.mapValues(\.allocations), "\(lines)")
    #expect(lines.mapValues(\.leakedAllocations) == Self.expected.mapValues(\.leakedAllocations), "\(lines)")
  }
}
