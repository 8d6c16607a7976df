import Foundation
import Testing

/// `memsift snapshots --format json`, decoded.
struct SnapshotList: Decodable {
  struct Point: Decodable {
    var label: String
    var timeNs: UInt64
    var liveBytes: UInt64
    var liveAllocations: UInt64
    var external: Bool
    enum CodingKeys: String, CodingKey {
      case label, external
      case timeNs = "time_ns"
      case liveBytes = "live_bytes"
      case liveAllocations = "live_allocations"
    }
  }
  var schema: String
  var snapshots: [Point]
}

/// Snapshot labels, from the program (`memsift_snapshot`) and from outside
/// (`memsift snapshot PID LABEL`), with the live heap at each.
@Suite struct SnapshotTests {
  @Test func labelsFromInsideAndOutsideMarkTheHeapAtTheirPlaceInTheEventOrder() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let trace = dir.file("snap.trace")
    let collector = Foundation.Process()
    collector.executableURL = URL(fileURLWithPath: E2E.memsift)
    collector.arguments = ["run", "-q"] + E2E.shimOptions + ["-o", trace, "--", v.snapshots]
    let stdin = Pipe()
    let stdout = Pipe()
    collector.standardInput = stdin
    collector.standardOutput = stdout
    try collector.run()
    // The victim says "ready" once a, b and c are labelled, then waits for us.
    var seen = ""
    while !seen.contains("ready") {
      let chunk = stdout.fileHandleForReading.availableData
      try #require(!chunk.isEmpty, "the victim ended before it was ready: \(seen)")
      seen += String(decoding: chunk, as: UTF8.self)
    }
    let pids = try runCommand("/usr/bin/pgrep", ["-f", "-x", v.snapshots], in: dir).stdout
    let pid = try #require(pids.split(separator: "\n").first.map(String.init))
    let marked = try runCommand(E2E.memsift, ["snapshot", pid, "from outside"], in: dir)
    #expect(marked.exitedWith == 0, "\(marked)")
    try stdin.fileHandleForWriting.write(contentsOf: Data("go\n".utf8))
    collector.waitUntilExit()
    #expect(collector.terminationStatus == 0)

    let listed = try runCommand(E2E.memsift, ["snapshots", "--format", "json", trace], in: dir)
    #expect(listed.exitedWith == 0, "\(listed)")
    let list = try JSONDecoder().decode(SnapshotList.self, from: Data(listed.stdout.utf8))
    #expect(list.schema == "memsift.snapshots/1")
    #expect(list.snapshots.map(\.label) == ["a", "b", "c", "from outside"])
    #expect(list.snapshots.map(\.liveBytes) == [0, 10_000, 5_000, 5_000])
    #expect(list.snapshots.map(\.liveAllocations) == [0, 10, 5, 5])
    #expect(list.snapshots.map(\.external) == [false, false, false, true])
    // After the outside label, the program allocated 10 x 50 more bytes.
    let totals = try report(trace, in: dir).totals
    #expect(totals.leakedBytes == 5_000 + 500)
  }

  @Test func markingAProcessThatIsNotTracedSaysWhy() throws {
    let dir = try TestDirectory()
    let notTraced = try runCommand(E2E.memsift, ["snapshot", String(getpid()), "x"], in: dir)
    #expect(notTraced.exitedWith == 1)
    #expect(notTraced.stderr.contains("is not traced by memsift run"), "\(notTraced)")
    #expect(notTraced.stderr.split(separator: "\n").count == 1)
    let gone = try runCommand(E2E.memsift, ["snapshot", "999999999", "x"], in: dir)
    #expect(gone.exitedWith == 1)
    #expect(gone.stderr == "memsift: no process 999999999\n", "\(gone)")
  }
}
