import Foundation
import Testing

/// `memsift diff` on CPython programs (`Tests/Victims/service.py`,
/// `Tests/Victims/phases.py`) under `memsift run`, which hooks CPython's
/// allocators so every object is a traced allocation.
///
/// The interpreter is run directly (`sys.executable`, asked once of
/// `python3`), not through pyenv's wrapper scripts: the run then writes one
/// trace, the interpreter's, instead of dozens of bash and env traces. It runs
/// with `-S` (no site module; not `-I`, which would ignore PYTHON* variables):
/// fewer startup allocations and modules, so fewer stacks to symbolize.
/// The sites are native CPython frames (bytes_repeat, _PyEval_EvalFrameDefault…),
/// the same for every Python line, so the tests check byte totals and match
/// sites by frames, never by Python names.
@Suite struct PythonDiffTests {
  static let resultBytes: Int64 = 10_000  // service.py's RESULT_BYTES
  static let requests = 300
  static let warmup = 50
  static let lruCapacity = 10  // service.py's LRU_CAPACITY

  // MARK: 1. The leaking and the fixed service

  @Test func theUnboundedCacheGrowsWithinARunAndItsGrowthIsGoneInTheFixedRun() throws {
    let python = try Self.interpreter()
    let service = E2E.victimSources + "/service.py"
    let dir = try TestDirectory()
    let leaky = dir.file("leaky.trace")
    let fixed = dir.file("fixed.trace")
    let n = String(Self.requests)
    let w = String(Self.warmup)

    // Both runs at once; each job has its own directory for its output.
    let runs = try concurrently([
      { try memsiftRun([python, "-S", service, "leaky", n, w], trace: leaky, in: $0) },
      { try memsiftRun([python, "-S", service, "fixed", n, w], trace: fixed, in: $0) },
    ])
    for (run, (mode, cached)) in zip(runs, [("leaky", Self.requests), ("fixed", Self.lruCapacity)]) {
      #expect(run.exitedWith == 0, "\(run)")
      let line = try run.victim()
      #expect(line.string("mode") == mode && line["cached"] == UInt64(cached), "\(line)")
    }
    for trace in [leaky, fixed] {
      let labels = try Self.snapshots(trace, in: dir).map(\.label)
      #expect(labels == ["warm", "done"], "\(trace): \(labels)")
    }

    // The three diffs symbolize libpython (seconds each in a debug build): at once.
    let docs = try concurrently([
      { try Self.diff([leaky + "@warm", leaky + "@done"], in: $0) },
      { try Self.diff([fixed + "@warm", fixed + "@done"], in: $0) },
      { try Self.diff([leaky + "@done", fixed + "@done"], in: $0) },
    ])
    let (leakyGrowth, fixedGrowth, between) = (docs[0], docs[1], docs[2])
    let afterWarmup = Int64(Self.requests - Self.warmup)

    // Within the leaky run: every result after the warm-up is still live.
    #expect(leakyGrowth.schema == "memsift.diff/1")
    #expect(
      leakyGrowth.totals.bytesDiff >= afterWarmup * Self.resultBytes,
      "leaky warm→done: \(leakyGrowth.totals.bytesDiff) bytes")
    #expect(leakyGrowth.totals.countDiff >= afterWarmup, "leaky warm→done: \(leakyGrowth.totals.countDiff) blocks")
    let cacheSite = try #require(leakyGrowth.sites.first, "the leaky run's diff lists no site")
    #expect(
      cacheSite.bytesDiff >= afterWarmup * Self.resultBytes && cacheSite.countDiff == afterWarmup,
      "top site: \(cacheSite.bytesDiff) bytes in \(cacheSite.countDiff) blocks\n\(Self.describe(cacheSite.frames))")
    #expect(cacheSite.oldBytes < cacheSite.newBytes)
    // Its frames are CPython's: the result is built by bytes' repeat.
    #expect(
      cacheSite.frames.contains { $0.module.contains("python") },
      "\(Self.describe(cacheSite.frames))")

    // Within the fixed run: the LRU holds 10 results at warm and at done.
    let bound = 15 * Self.resultBytes
    #expect(fixedGrowth.totals.bytesDiff < bound, "fixed warm→done: \(fixedGrowth.totals.bytesDiff) bytes")
    let sameSite = fixedGrowth.sites.first { Self.sameFrames($0.frames, cacheSite.frames) }
    #expect((sameSite?.bytesDiff ?? 0) < bound, "fixed run's cache site grew \(sameSite?.bytesDiff ?? 0) bytes")
    #expect(
      fixedGrowth.sites.allSatisfy { $0.bytesDiff < bound },
      "fixed warm→done: \(fixedGrowth.sites.prefix(3).map { ($0.bytesDiff, Self.describe($0.frames)) })")

    // Between the runs, at done: the cache growth is gone, at the cache site.
    let gone = -Int64(Self.requests - Self.lruCapacity) * Self.resultBytes
    #expect(between.totals.bytesDiff <= gone, "leaky@done → fixed@done: \(between.totals.bytesDiff) bytes")
    let topBetween = try #require(between.sites.first, "the diff between the runs lists no site")
    #expect(
      topBetween.bytesDiff <= gone && topBetween.countDiff == -Int64(Self.requests - Self.lruCapacity),
      "top site between the runs: \(topBetween.bytesDiff) bytes in \(topBetween.countDiff) blocks\n\(Self.describe(topBetween.frames))")
    // Matched by frames across the two processes (ASLR): the same site as
    // the leaky run's growth, with both runs' bytes on one row.
    #expect(Self.sameFrames(topBetween.frames, cacheSite.frames), "\(Self.describe(topBetween.frames))")
    #expect(topBetween.oldBytes >= UInt64(Self.requests) * UInt64(Self.resultBytes))
    #expect(topBetween.newBytes > 0 && topBetween.newBytes <= UInt64(Self.lruCapacity + 1) * UInt64(Self.resultBytes + 100))
  }

  // MARK: 2. A time point agrees with a label

  @Test func aTimeInsideAQuietPauseShowsTheSameHeapAsTheLabelBeforeIt() throws {
    let python = try Self.interpreter()
    let phases = E2E.victimSources + "/phases.py"
    let dir = try TestDirectory()
    let trace = dir.file("phases.trace")
    // 20 blocks, "mid", 0.3 s asleep, 30 blocks, "after".
    let run = try memsiftRun([python, "-S", phases, "20", "30", "0.3"], trace: trace, in: dir)
    #expect(run.exitedWith == 0, "\(run)")
    #expect(try run.victim()["kept"] == 50)

    let labels = try Self.snapshots(trace, in: dir)
    try #require(labels.map(\.label) == ["mid", "after"], "\(labels.map(\.label))")
    let mid = labels[0].timeNs, after = labels[1].timeNs
    #expect(after - mid >= 290_000_000, "the pause lasted \(after - mid) ns")
    // Halfway through the pause: far from both edges at the tick's resolution.
    let x = Double(mid) / 1e9 + 0.15
    let at = String(format: "%.6fs", x)

    let docs = try concurrently([
      { try Self.diff([trace + "@start", trace + "@mid"], in: $0) },
      { try Self.diff([trace + "@start", trace + "@" + at], in: $0) },
      { try Self.diff([trace + "@mid", trace + "@" + at], in: $0) },
      { try Self.diff([trace + "@" + at, trace + "@after"], in: $0) },
    ])
    let (byLabel, byTime, between, second) = (docs[0], docs[1], docs[2], docs[3])
    #expect(byLabel.totals.bytesDiff >= 20 * 10_000, "start→mid: \(byLabel.totals.bytesDiff)")
    #expect(
      byTime.totals.bytesDiff == byLabel.totals.bytesDiff && byTime.totals.countDiff == byLabel.totals.countDiff,
      "start→@\(at): \(byTime.totals.bytesDiff) B in \(byTime.totals.countDiff); start→@mid: \(byLabel.totals.bytesDiff) B in \(byLabel.totals.countDiff)")
    #expect(byTime.new.liveBytes == byLabel.new.liveBytes)
    #expect(
      between.totals.bytesDiff == 0 && between.totals.countDiff == 0 && between.sites.isEmpty,
      "mid→@\(at): \(between.totals.bytesDiff) B in \(between.totals.countDiff), \(between.sites.count) sites")
    // And the point is before the second phase: its 30 blocks come after.
    #expect(second.totals.bytesDiff >= 30 * 10_000, "@\(at)→after: \(second.totals.bytesDiff)")
    #expect(second.totals.countDiff >= 30, "@\(at)→after: \(second.totals.countDiff) blocks")
  }

  // MARK: Helpers

  /// The interpreter `python3` runs (pyenv's wrapper execs it).
  static func interpreter() throws -> String {
    let dir = try TestDirectory()
    let result = try runCommand("/usr/bin/env", ["python3", "-c", "import sys; print(sys.executable)"], in: dir)
    let path = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    try #require(result.exitedWith == 0 && !path.isEmpty, "\(result)")
    return path
  }

  /// `memsift snapshots --format json TRACE`: the labels with their times.
  static func snapshots(_ trace: String, in dir: TestDirectory) throws -> [SnapshotList.Point] {
    let result = try runCommand(E2E.memsift, ["snapshots", "--format", "json", trace], in: dir)
    try #require(result.exitedWith == 0, "\(result)")
    let list = try JSONDecoder().decode(SnapshotList.self, from: Data(result.stdout.utf8))
    #expect(list.schema == "memsift.snapshots/1")
    return list.snapshots
  }

  /// `memsift diff --format json OLD NEW`, decoded; a failure is thrown with its output.
  static func diff(_ points: [String], in dir: TestDirectory) throws -> DiffDocument {
    let result = try runCommand(E2E.memsift, ["diff", "--format", "json"] + points, in: dir)
    guard result.exitedWith == 0 else { throw E2EError.report(result.description) }
    do {
      return try JSONDecoder().decode(DiffDocument.self, from: Data(result.stdout.utf8))
    } catch {
      throw E2EError.report("\(points): cannot decode \(error): \(result.stdout.prefix(2000))")
    }
  }

  /// Two sites' stacks name the same frames (function, file, line, module basename).
  static func sameFrames(_ a: [Report.Frame], _ b: [Report.Frame]) -> Bool {
    func key(_ f: Report.Frame) -> String {
      "\(f.function ?? "?")|\(f.file ?? "?")|\(f.line ?? -1)|\((f.module as NSString).lastPathComponent)"
    }
    return a.map(key) == b.map(key)
  }

  static func describe(_ frames: [Report.Frame]) -> String {
    frames.prefix(6).map { "    \($0)" }.joined(separator: "\n")
  }
}

/// Runs `jobs` at once, each with a directory of its own for its commands'
/// output (a `TestDirectory` names its files with a counter that is not
/// safe to share between threads); the results in order, or the first error.
func concurrently<T>(_ jobs: [(TestDirectory) throws -> T]) throws -> [T] {
  let dirs = try jobs.indices.map { try TestDirectory("job\($0)") }
  let lock = NSLock()
  var results = [Result<T, Error>?](repeating: nil, count: jobs.count)
  DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
    let r = Result { try jobs[i](dirs[i]) }
    lock.lock()
    results[i] = r
    lock.unlock()
  }
  return try results.map { try $0!.get() }
}
