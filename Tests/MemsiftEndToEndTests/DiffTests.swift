import Foundation
import Testing

/// `memsift diff --format json`, decoded.
struct DiffDocument: Decodable {
  struct Point: Decodable {
    var point: String
    var liveBytes: UInt64
    enum CodingKeys: String, CodingKey {
      case point
      case liveBytes = "live_bytes"
    }
  }
  struct Totals: Decodable {
    var bytesDiff: Int64
    var countDiff: Int64
    enum CodingKeys: String, CodingKey {
      case bytesDiff = "bytes_diff"
      case countDiff = "count_diff"
    }
  }
  struct Site: Decodable {
    var bytesDiff: Int64
    var countDiff: Int64
    var oldBytes: UInt64
    var newBytes: UInt64
    var frames: [Report.Frame]
    enum CodingKeys: String, CodingKey {
      case frames
      case bytesDiff = "bytes_diff"
      case countDiff = "count_diff"
      case oldBytes = "old_bytes"
      case newBytes = "new_bytes"
    }
  }
  var schema: String
  var old: Point
  var new: Point
  var totals: Totals
  var sites: [Site]
}

/// `memsift diff` between labels of one run and between two runs.
@Suite struct DiffTests {
  /// Runs `snapshots.c` (labels a, b, c; it waits for a line on stdin).
  func snapshotRun(_ dir: TestDirectory, name: String) throws -> String {
    let v = try E2E.victims()
    let run = try traced([v.snapshots], in: dir, name: name, stdin: "go\n")
    #expect(run.result.exitedWith == 0, "\(run.result)")
    return run.first
  }

  func diff(_ args: [String], in dir: TestDirectory) throws -> (DiffDocument?, CommandResult) {
    let result = try runCommand(E2E.memsift, ["diff", "--format", "json"] + args, in: dir)
    guard result.exitedWith == 0 else { return (nil, result) }
    return (try JSONDecoder().decode(DiffDocument.self, from: Data(result.stdout.utf8)), result)
  }

  @Test func betweenTwoLabelsTheGrowthIsExactAndNamesTheAllocatingLine() throws {
    let dir = try TestDirectory()
    let trace = try snapshotRun(dir, name: "s")
    let line = try sourceLine("malloc(1000)", in: "snapshots.c")
    let (grew, r1) = try diff([trace + "@a", trace + "@b"], in: dir)
    let up = try #require(grew, "\(r1)")
    #expect(up.schema == "memsift.diff/1")
    #expect(up.totals.bytesDiff == 10_000 && up.totals.countDiff == 10)
    try #require(up.sites.count == 1, "\(up.sites)")
    #expect(up.sites[0].bytesDiff == 10_000 && up.sites[0].countDiff == 10)
    #expect(up.sites[0].oldBytes == 0 && up.sites[0].newBytes == 10_000)
    #expect(up.sites[0].frames.first?.function == "main")
    #expect(up.sites[0].frames.first?.line == line)

    let (shrank, r2) = try diff([trace + "@b", trace + "@c"], in: dir)
    let down = try #require(shrank, "\(r2)")
    #expect(down.totals.bytesDiff == -5_000 && down.totals.countDiff == -5)
    #expect(down.sites.map(\.bytesDiff) == [-5_000])
  }

  @Test func twoRunsOfTheSameProgramMatchSiteBySiteDespiteASLR() throws {
    let dir = try TestDirectory()
    let first = try snapshotRun(dir, name: "one")
    let second = try snapshotRun(dir, name: "two")
    // Same program, same allocations: every site matches its twin.
    let (same, r1) = try diff([first, second], in: dir)
    let d = try #require(same, "\(r1)")
    #expect(d.totals.bytesDiff == 0)
    #expect(d.sites.isEmpty, "\(d.sites.map(\.frames))")
    // A label of one run against another point of the other run.
    let (cross, r2) = try diff([first + "@c", second + "@end"], in: dir)
    let c = try #require(cross, "\(r2)")
    #expect(c.totals.bytesDiff == 500 && c.totals.countDiff == 10)
  }

  /// A copy of `trace` claiming a format version from the future.
  func futureVersion(of trace: String, in dir: TestDirectory) throws -> String {
    var bytes = try Data(contentsOf: URL(fileURLWithPath: trace))
    bytes[8] = 99  // the little-endian version field follows the 8-byte magic
    let path = dir.file("future.trace")
    try bytes.write(to: URL(fileURLWithPath: path))
    return path
  }

  @Test func eachPointShowsTheRSSBesideTheHeap() throws {
    let dir = try TestDirectory()
    let trace = try snapshotRun(dir, name: "rss")
    let result = try runCommand(E2E.memsift, ["diff", "--format", "json", trace + "@start", trace + "@end"], in: dir)
    #expect(result.exitedWith == 0, "\(result)")
    #expect(result.stdout.contains("\"rss_bytes\""), "\(result.stdout)")
    let text = try runCommand(E2E.memsift, ["diff", trace + "@b", trace], in: dir)
    #expect(text.stdout.contains("beyond the heap"), "\(text.stdout)")
  }

  @Test func badPointsAreOneClearLineEach() throws {
    let dir = try TestDirectory()
    let trace = try snapshotRun(dir, name: "bad")
    for (spec, message) in [
      (trace + "@nosuchlabel", "has no label \"nosuchlabel\" (labels: a, b, c)"),
      (trace + "@9999s", "is past its end"),
      (trace + "@", "nothing after @"),
      (dir.file("missing.trace"), "cannot open"),
      (try futureVersion(of: trace, in: dir), "newer than this memsift reads"),
    ] {
      let (_, result) = try diff([spec, trace], in: dir)
      #expect(result.exitedWith == 1, "\(spec): \(result)")
      #expect(result.stderr.split(separator: "\n").count == 1, "\(spec): \(result.stderr)")
      #expect(result.stderr.contains(message), "\(spec): \(result.stderr)")
    }
  }
}
