import Foundation
import MemsiftFormat
import Testing

/// `memsift run --live`: the collector keeps the live set and writes each
/// site's state at snapshots instead of the events. On the growth victim
/// (`growth grow 200`: 200 rounds 5 ms apart, each churning 20 blocks of
/// 5,000 B and keeping one of 1,000 B in cache_add) the totals at the end
/// equal those of a full trace exactly, the snapshots come every 0.2 s, the
/// trace holds site states at snapshots and no events, and `growth` and
/// `diff` read it.
@Suite struct LiveModeTests {
  @Test func aLiveTraceHasTheFullTotalsSiteStatesInsteadOfEventsAndGrowthFindsTheCache() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let full = try traced([v.growth, "grow", "200"], in: dir, name: "full")
    #expect(full.result.exitedWith == 0, "\(full.result)")
    let live = dir.file("live.trace")
    let run = try memsiftRun(
      [v.growth, "grow", "200"], trace: live, options: ["--live", "--snapshot-every", "0.2"], in: dir)
    #expect(run.exitedWith == 0, "\(run)")
    let exact = try full.main().totals
    let summary = try report(live, in: dir)
    #expect(summary.complete)
    let t = summary.totals
    #expect(t.leakedBytes == exact.leakedBytes && t.leakedAllocations == exact.leakedAllocations, "\(t) vs \(exact)")
    #expect(t.allocations == exact.allocations && t.bytesAllocated == exact.bytesAllocated, "\(t) vs \(exact)")
    #expect(t.frees == exact.frees, "\(t) vs \(exact)")
    #expect(t.unmatchedFrees == 0)

    // Sites × snapshots, not events: 4,200 allocations and 4,000 frees
    // became at most one SITE record per site and snapshot.
    var events = 0, siteRecords = 0, snapshotRecords = 0
    var sites = Set<UInt32>()
    try TraceReader(path: live).forEachRecord { record in
      switch record {
      case .alloc, .free, .realloc, .reallocDone, .events: events += 1
      case .site(let s):
        siteRecords += 1
        sites.insert(s.stack.rawValue)
      case .snapshot: snapshotRecords += 1
      default: break
      }
    }
    #expect(events == 0)
    #expect(siteRecords > 0 && siteRecords <= sites.count * (snapshotRecords + 1), "\(siteRecords) SITE records")

    // At least four periodic snapshots in a run of about a second.
    let list = try runCommand(E2E.memsift, ["snapshots", "--format", "json", live], in: dir)
    let labels = try JSONDecoder().decode(SnapshotList.self, from: Data(list.stdout.utf8)).snapshots.map(\.label)
    let periodic = labels.filter { $0.hasPrefix("every") }
    #expect(periodic.count >= 4, "\(labels)")
    let text = try runCommand(E2E.memsift, ["snapshots", live], in: dir)
    #expect(text.stdout.contains("every 0s #") == false && text.stdout.contains("(memsift)"), "\(text)")

    // growth reads it as any trace: the cache grows, the churn does not.
    let growth = try runCommand(E2E.memsift, ["growth", "--labels", "--format", "json", live], in: dir)
    #expect(growth.exitedWith == 0, "\(growth)")
    let doc = try JSONDecoder().decode(GrowthDocument.self, from: Data(growth.stdout.utf8))
    #expect(doc.sites.first?.frames.first?.function == "cache_add", "\(doc.sites.map(\.frames))")
    #expect(doc.sites.allSatisfy { $0.frames.first?.function != "churn" })

    // diff between two snapshots: the cache grew by whole 1,000-byte blocks.
    let first = try #require(periodic.first), last = try #require(periodic.last)
    let diff = try PythonDiffTests.diff([live + "@" + first, live + "@" + last], in: dir)
    let cache = try #require(diff.sites.first { $0.frames.first?.function == "cache_add" }, "\(diff.sites)")
    #expect(cache.bytesDiff > 0 && cache.bytesDiff % 1000 == 0 && cache.countDiff == cache.bytesDiff / 1000, "\(cache)")
  }

  @Test func aBadSnapshotIntervalIsRefused() throws {
    let dir = try TestDirectory()
    let result = try runCommand(E2E.memsift, ["run", "--live", "--snapshot-every", "0", "--", "/bin/true"], in: dir)
    #expect(result.exitedWith != 0)
    #expect(result.stderr.contains("--snapshot-every"), "\(result)")
  }
}
