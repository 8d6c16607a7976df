import Foundation
import MemsiftAnalysis
import MemsiftFormat
import MemsiftSymbols

/// The unbounded-cache finder: every site's live bytes sampled at moments
/// across the trace, ranked by how steadily they grow. Churn that returns to
/// its baseline scores nothing; a cache that only ever grows scores high.
public enum GrowthReport {
  /// A site whose live bytes grow steadily.
  public struct Row: Sendable {
    /// Live bytes at each sample.
    public var values: [UInt64]
    /// Last sample minus first.
    public var growth: Int64
    /// Kendall's tau of the samples against time, from -1 to 1: 1 when every
    /// later sample is above every earlier one.
    public var trend: Double
    public var frames: [SymbolizedFrame]
  }

  /// Below these a site is not reported as growing.
  static let minimumTrend = 0.6
  static let minimumShareOfMax = 0.25

  /// Kendall's tau of `v` against its index.
  static func trend(_ v: [UInt64]) -> Double {
    guard v.count > 1 else { return 0 }
    var s = 0
    for i in 0..<v.count {
      for j in (i + 1)..<v.count { s += v[j] > v[i] ? 1 : (v[j] < v[i] ? -1 : 0) }
    }
    return Double(s) / Double(v.count * (v.count - 1) / 2)
  }

  /// Ranks the sites of `captures` (in time order) that grow steadily.
  public static func rows(builder: SiteReportBuilder, captures: [PointCapture], top: Int?) -> [Row] {
    var series: [StackID: [UInt64]] = [:]
    for (i, c) in captures.enumerated() {
      for (stack, live) in c.live {
        series[stack, default: [UInt64](repeating: 0, count: captures.count)][i] = live.bytes
      }
    }
    // Group (function, line, ...) by the builder's key; stacks stay stacks.
    var grouped: [String: (values: [UInt64], stack: StackID)] = [:]
    if builder.grouping == .stack {
      for (stack, v) in series { grouped["\(stack.rawValue)"] = (v, stack) }
    } else {
      for (stack, v) in series {
        let key = builder.matchKey(builder.siteFrames(of: stack))
        var g = grouped[key] ?? ([UInt64](repeating: 0, count: captures.count), stack)
        for i in v.indices { g.values[i] &+= v[i] }
        grouped[key] = g
      }
    }
    var ranked: [(row: Row, stack: StackID, score: Double)] = []
    for (_, g) in grouped {
      let v = g.values
      guard let first = v.first, let last = v.last, let peak = v.max(), last > first else { continue }
      let tau = trend(v)
      let growth = last - first
      guard tau >= minimumTrend, Double(growth) >= minimumShareOfMax * Double(peak) else { continue }
      ranked.append((Row(values: v, growth: Int64(clamping: growth), trend: tau, frames: []), g.stack, Double(growth) * tau))
    }
    ranked.sort { ($0.score, $1.stack.rawValue) > ($1.score, $0.stack.rawValue) }
    if let top { ranked = Array(ranked.prefix(top)) }
    return ranked.map { r in
      var row = r.row
      row.frames = builder.siteFrames(of: r.stack)
      return row
    }
  }

  /// Eight levels, scaled to the row's own largest sample.
  public static func sparkline(_ v: [UInt64]) -> String {
    let bars = Array("▁▂▃▄▅▆▇█")
    let top = max(v.max() ?? 1, 1)
    return String(v.map { bars[Int((Double($0) / Double(top)) * Double(bars.count - 1))] })
  }

  public static func text(path: String, captures: [PointCapture], rows: [Row]) -> String {
    let span = captures.last?.elapsedNs.map(ByteFormat.seconds) ?? "?"
    var out = "GROWTH in \(path): sites whose live memory grows steadily (\(captures.count) samples up to \(span))\n"
    if rows.isEmpty { return out + "  no site grows steadily\n" }
    for (i, r) in rows.enumerated() {
      out += "  \(i + 1). +\(ByteFormat.bytes(UInt64(r.growth))), trend \(String(format: "%.2f", r.trend))  "
        + "\(sparkline(r.values))  \(ByteFormat.bytes(r.values.first ?? 0)) → \(ByteFormat.bytes(r.values.last ?? 0))\n"
      for f in r.frames.prefix(SiteText.framesShown) { out += "       " + SiteText.line(f) + "\n" }
    }
    return out
  }

  /// Schema `memsift.growth/1` (README).
  public static func json(path: String, captures: [PointCapture], rows: [Row], warnings: [String]) throws -> String {
    struct Site: Encodable {
      var growth_bytes: Int64
      var trend: Double
      var values: [UInt64]
      var frames: [TotalsReport.Document.Frame]
    }
    struct Document: Encodable {
      var schema = "memsift.growth/1"
      var trace: String
      var samples_ns: [UInt64]
      var sites: [Site]
      var warnings: [String]
    }
    let document = Document(
      trace: path, samples_ns: captures.map { $0.elapsedNs ?? 0 },
      sites: rows.map {
        Site(growth_bytes: $0.growth, trend: $0.trend, values: $0.values, frames: $0.frames.map(TotalsReport.Document.Frame.init))
      }, warnings: warnings)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(document), as: UTF8.self) + "\n"
  }
}
