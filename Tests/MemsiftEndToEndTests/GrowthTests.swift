import Foundation
import Testing

/// `memsift growth --format json`, decoded.
struct GrowthDocument: Decodable {
  struct Site: Decodable {
    var growthBytes: Int64
    var trend: Double
    var values: [UInt64]
    var frames: [Report.Frame]
    enum CodingKeys: String, CodingKey {
      case trend, values, frames
      case growthBytes = "growth_bytes"
    }
  }
  var schema: String
  var sites: [Site]
}

/// The unbounded-cache finder.
@Suite struct GrowthTests {
  func growth(_ mode: String, in dir: TestDirectory) throws -> GrowthDocument {
    let v = try E2E.victims()
    let run = try traced([v.growth, mode, "200"], in: dir, name: mode)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let result = try runCommand(E2E.memsift, ["growth", "--format", "json", run.first], in: dir)
    #expect(result.exitedWith == 0, "\(result)")
    return try JSONDecoder().decode(GrowthDocument.self, from: Data(result.stdout.utf8))
  }

  @Test func aSteadilyGrowingSiteRanksFirstAmongBiggerChurn() throws {
    let dir = try TestDirectory()
    let doc = try growth("grow", in: dir)
    #expect(doc.schema == "memsift.growth/1")
    let top = try #require(doc.sites.first, "nothing ranked as growing")
    #expect(top.frames.first?.function == "cache_add", "\(top.frames)")
    #expect(top.trend > 0.9)
    // 200 rounds of 1,000 bytes, sampled from the first sample to the end.
    #expect(top.growthBytes > 100_000 && top.growthBytes <= 200_000, "\(top.growthBytes)")
    #expect(doc.sites.allSatisfy { $0.frames.first?.function != "churn" }, "churn ranked as growth")
  }

  /// CPython and many programs free everything at exit: the growth before
  /// the teardown is still found.
  @Test func growthFreedAtExitIsStillFound() throws {
    let dir = try TestDirectory()
    let doc = try growth("teardown", in: dir)
    let top = try #require(doc.sites.first, "nothing ranked as growing")
    #expect(top.frames.first?.function == "cache_add", "\(top.frames)")
    #expect(top.growthBytes > 100_000, "\(top.growthBytes)")
  }

  @Test func aProgramThatOnlyChurnsRanksNothingAsGrowing() throws {
    let dir = try TestDirectory()
    let doc = try growth("flat", in: dir)
    #expect(doc.sites.isEmpty, "\(doc.sites.map { ($0.frames.first?.function, $0.growthBytes, $0.trend) })")
  }
}
