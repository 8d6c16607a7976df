import Foundation
import Testing

/// `stress.c`: 16 threads churning, each from a call site of its own with a
/// size of its own, every block freed by the next thread and its address
/// soon handed out again. A report by site is exact whatever the
/// interleaving; 20 runs in a row must all be.
@Suite struct StressTests {
  static let threads: UInt64 = 16
  static let rounds: UInt64 = 20_000
  static let runs = 20

  static func siteSize(_ n: UInt64) -> UInt64 { 24 + 40 * n }

  /// The sites of `stress_site_N`, summed (the churn and the final leak
  /// call it from two lines of `worker`: two stacks).
  static func sites(_ report: Report, function: String) -> [Report.Site] {
    (report.sites ?? []).filter { $0.frames.first?.function == function }
  }

  @Test func sixteenThreadsChurningGiveExactTotalsPerSiteTwentyRunsInARow() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    var wrong: [String] = []
    for run in 1...Self.runs {
      let name = "run\(run)"
      let result = try memsiftRun(
        [v.stress, String(Self.threads), String(Self.rounds)], trace: dir.file(name + ".trace"), in: dir)
      #expect(result.exitedWith == 0, "run \(run): \(result)")
      let r = try report(dir.file(name + ".trace"), in: dir)
      #expect(r.complete, "run \(run)")
      if r.totals.unmatchedFrees != 0 || r.totals.reusedWithoutFree != 0 {
        wrong.append(
          "run \(run): \(r.totals.unmatchedFrees) unmatched frees, \(r.totals.reusedWithoutFree) reused without free")
      }
      for n in 0..<Self.threads {
        let sites = Self.sites(r, function: "stress_site_\(n)")
        let size = Self.siteSize(n)
        let allocations = sites.reduce(0) { $0 + $1.allocations }
        let bytes = sites.reduce(0) { $0 + $1.bytesAllocated }
        let leaked = sites.reduce(0) { $0 + $1.leakedAllocations }
        let leakedBytes = sites.reduce(0) { $0 + $1.leakedBytes }
        // ROUNDS blocks freed by the next thread, then n + 1 kept.
        let want = (Self.rounds + n + 1, (Self.rounds + n + 1) * size, n + 1, (n + 1) * size)
        if (allocations, bytes, leaked, leakedBytes) != want {
          wrong.append(
            "run \(run) site \(n): \(allocations) allocations, \(bytes) bytes, \(leaked) leaked (\(leakedBytes) bytes) "
              + "in \(sites.count) stacks; want \(want)")
        }
      }
    }
    #expect(wrong.isEmpty, "\(wrong.count) wrong: \(wrong.prefix(20).joined(separator: "; "))")
  }
}
