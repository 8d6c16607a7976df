import Foundation
import Testing

/// `memsift run --sample-rate`: a sample of the allocations (Poisson by
/// bytes) whose byte figures the reports scale to estimates. The victim's
/// sites are known by construction (`Tests/Victims/sampled.c`); the seed is
/// fixed (MEMSIFT_SAMPLE_SEED), so the sample is the same every run and the
/// bounds below are checked against one reproducible draw. At one sample per
/// 64 KiB the sites have 240-1,560 samples: a 15% bound is 2.5 standard
/// deviations or more.
@Suite struct SamplingTests {
  static let rate: UInt64 = 65_536
  static let leakPages = 16_384_000.0
  static let leakSmall = 25_600_000.0
  static let churnAllocated = 102_400_000.0

  static func within(_ estimate: UInt64, _ exact: Double, _ tolerance: Double = 0.15) -> Bool {
    abs(Double(estimate) - exact) <= tolerance * exact
  }

  @Test func aSampleEstimatesEachSiteAndRecordsOnlyTheFreesOfItsBlocks() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    var environment = ProcessInfo.processInfo.environment
    environment["MEMSIFT_SAMPLE_SEED"] = "7"
    let trace = dir.file("sampled.trace")
    let run = try memsiftRun(
      [v.sampled], trace: trace, options: ["--sample-rate", String(Self.rate)], in: dir, environment: environment)
    #expect(run.exitedWith == 0, "\(run)")
    let (report, _) = try siteReport(trace, ["--sort", "leaked", "--top", "10"], in: dir)
    #expect(report.sampleRateBytes == Self.rate)
    let t = report.totals
    // Only sampled blocks' frees are recorded, so every free has its allocation.
    #expect(t.unmatchedFrees == 0 && t.reusedWithoutFree == 0, "\(t)")
    // A sample: about 1 in 40 of the 604,000 calls.
    #expect(t.allocations > 1_000 && t.allocations < 20_000, "\(t.allocations) sampled allocations")
    #expect(Self.within(t.leakedBytes, Self.leakPages + Self.leakSmall), "leaked \(t.leakedBytes)")
    #expect(
      Self.within(t.bytesAllocated, Self.leakPages + Self.leakSmall + Self.churnAllocated),
      "allocated \(t.bytesAllocated)")

    let sites = try #require(report.sites)
    func site(_ function: String) throws -> Report.Site {
      try #require(sites.first { $0.frames.first?.function == function }, "no \(function) site: \(sites)")
    }
    let pages = try site("leak_pages")
    let small = try site("leak_small")
    #expect(Self.within(pages.leakedBytes, Self.leakPages), "\(pages)")
    #expect(Self.within(small.leakedBytes, Self.leakSmall), "\(small)")
    let churn = try site("churn")
    #expect(churn.leakedBytes == 0, "\(churn)")
    #expect(Self.within(churn.bytesAllocated, Self.churnAllocated), "\(churn)")

    // The text report says that its bytes are estimates.
    let text = try runCommand(E2E.memsift, ["report", trace], in: dir)
    #expect(text.stdout.contains("sampled      one allocation per 64.0 KiB on average: bytes are estimates"), "\(text)")
  }

  /// Reallocs and frees across 8 threads, with heavy address reuse
  /// (`threads.c`): a sampled block's release is always recorded before its
  /// address can come back, and an unsampled realloc never revives its old
  /// block. Any slip shows as a free of an unknown block or an address
  /// reused without a free. A low rate samples about one call in 35; six
  /// seeds.
  @Test(arguments: 1...6)
  func sampledReallocsAndCrossThreadFreesStayConsistent(seed: Int) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    var environment = ProcessInfo.processInfo.environment
    environment["MEMSIFT_SAMPLE_SEED"] = String(seed)
    let trace = dir.file("threads.trace")
    let run = try memsiftRun(
      [v.threads, "2000"], trace: trace, options: ["--sample-rate", "4096"], in: dir, environment: environment)
    #expect(run.exitedWith == 0, "\(run)")
    let t = try report(trace, in: dir).totals
    #expect(t.unmatchedFrees == 0 && t.reusedWithoutFree == 0, "seed \(seed): \(t)")
    #expect(t.allocations > 200 && t.allocations < 10_000, "seed \(seed): \(t.allocations) sampled")
  }

  @Test func aMalformedRateIsRefusedAndTheShimWarnsOnce() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let refused = try runCommand(E2E.memsift, ["run", "--sample-rate", "0", "--", v.sampled], in: dir)
    #expect(refused.exitedWith == 64 || refused.exitedWith == 1, "\(refused)")
    #expect(refused.stderr.contains("--sample-rate"), "\(refused)")
    var environment = ProcessInfo.processInfo.environment
    environment["LD_PRELOAD"] = E2E.shim
    environment["MEMSIFT_OUTPUT"] = dir.file("plain.trace")
    environment["MEMSIFT_SAMPLE_RATE"] = "lots"
    let warned = try runCommand(v.sampled, [], in: dir, environment: environment)
    #expect(warned.exitedWith == 0, "\(warned)")
    #expect(warned.stderr == "memsift: MEMSIFT_SAMPLE_RATE=lots is not a whole number of bytes up to 2^40; recording every event\n")
    let (report, _) = try siteReport(dir.file("plain.trace"), ["--top", "1"], in: dir)
    #expect(report.sampleRateBytes == nil && report.totals.allocations >= 604_000)
  }
}
