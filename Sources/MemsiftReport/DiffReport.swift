import Foundation
import MemsiftAnalysis
import MemsiftFormat
import MemsiftSymbols

/// One side of a diff: a trace, the point in it, and what its sites held there.
public struct DiffSide {
  public var builder: SiteReportBuilder
  public var capture: PointCapture

  public init(builder: SiteReportBuilder, capture: PointCapture) {
    self.builder = builder
    self.capture = capture
  }
}

/// A site (or group) and what it held at OLD and at NEW.
public struct DiffRow: Sendable {
  public var old: SiteLive
  public var new: SiteLive
  public var frames: [SymbolizedFrame]

  public var bytesDiff: Int64 { Int64(bitPattern: new.bytes &- old.bytes) }
  public var countDiff: Int64 { Int64(bitPattern: new.count &- old.count) }
}

/// What grew and what shrank between two points, like tracemalloc's
/// `Snapshot.compare_to`: sites matched by their symbolized frames (never by
/// address), ordered by the absolute change of their live bytes.
public enum DiffReport {
  /// Every site whose live bytes or count differ, largest change first.
  public static func rows(old: DiffSide, new: DiffSide, top: Int?) -> [DiffRow] {
    var merged: [String: DiffRow] = [:]
    func add(_ side: DiffSide, isOld: Bool) {
      for (stack, live) in side.capture.live {
        let frames = side.builder.siteFrames(of: stack)
        let key = side.builder.matchKey(frames)
        var row = merged[key] ?? DiffRow(old: SiteLive(bytes: 0, count: 0), new: SiteLive(bytes: 0, count: 0), frames: frames)
        if isOld {
          row.old.bytes &+= live.bytes
          row.old.count &+= live.count
        } else {
          row.new.bytes &+= live.bytes
          row.new.count &+= live.count
          row.frames = frames  // the newer build's frames are the ones to show
        }
        merged[key] = row
      }
    }
    add(old, isOld: true)
    add(new, isOld: false)
    var ranked = merged.filter { $0.value.bytesDiff != 0 || $0.value.countDiff != 0 }
      .sorted { ($0.value.bytesDiff.magnitude, $1.key) > ($1.value.bytesDiff.magnitude, $0.key) }
      .map(\.value)
    if let top { ranked = Array(ranked.prefix(top)) }
    return ranked
  }

  static func signed(_ n: Int64, bytes: Bool) -> String {
    let magnitude = UInt64(n.magnitude)
    return (n < 0 ? "-" : "+") + (bytes ? ByteFormat.bytes(magnitude) : ByteFormat.count(magnitude))
  }

  static func describe(_ path: String, _ c: PointCapture) -> String {
    "\(path) at \(c.point)" + (c.elapsedNs.map { " (\(ByteFormat.seconds($0)))" } ?? "")
  }

  static func rssLine(_ c: PointCapture) -> String {
    c.rssBytes.map { "     RSS " + HeapVersusRSS.describe(heap: c.totalBytes, rss: $0) + "\n" } ?? ""
  }

  public static func text(oldPath: String, old: PointCapture, newPath: String, new: PointCapture, rows: [DiffRow]) -> String {
    let bytes = Int64(bitPattern: new.totalBytes &- old.totalBytes)
    let count = Int64(bitPattern: new.totalCount &- old.totalCount)
    var out = "old  \(describe(oldPath, old)): \(ByteFormat.bytes(old.totalBytes)) live in \(ByteFormat.count(old.totalCount)) blocks\n"
    out += rssLine(old)
    out += "new  \(describe(newPath, new)): \(ByteFormat.bytes(new.totalBytes)) live in \(ByteFormat.count(new.totalCount)) blocks\n"
    out += rssLine(new)
    out += "diff \(signed(bytes, bytes: true)) (\(signed(count, bytes: false)) blocks)\n\n"
    if rows.isEmpty { return out + "no site changed\n" }
    for (i, r) in rows.enumerated() {
      out += "  \(i + 1). \(signed(r.bytesDiff, bytes: true)) (\(signed(r.countDiff, bytes: false)) blocks): "
        + "\(ByteFormat.bytes(r.old.bytes)) → \(ByteFormat.bytes(r.new.bytes))\n"
      for f in r.frames.prefix(SiteText.framesShown) { out += "       " + SiteText.line(f) + "\n" }
      if r.frames.count > SiteText.framesShown { out += "       … \(r.frames.count - SiteText.framesShown) more frames\n" }
    }
    return out
  }

  /// Schema `memsift.diff/1` (README).
  public static func json(oldPath: String, old: PointCapture, newPath: String, new: PointCapture, rows: [DiffRow], warnings: [String]) throws -> String {
    struct Point: Encodable {
      var trace: String
      var point: String
      var elapsed_ns: UInt64?
      var live_bytes: UInt64
      var live_count: UInt64
      var rss_bytes: UInt64?
    }
    struct Totals: Encodable {
      var bytes_diff: Int64
      var count_diff: Int64
    }
    struct Site: Encodable {
      var bytes_diff, count_diff: Int64
      var old_bytes, new_bytes, old_count, new_count: UInt64
      var frames: [TotalsReport.Document.Frame]
    }
    struct Document: Encodable {
      var schema = "memsift.diff/1"
      var old: Point
      var new: Point
      var totals: Totals
      var sites: [Site]
      var warnings: [String]
    }
    func point(_ path: String, _ c: PointCapture) -> Point {
      Point(
        trace: path, point: c.point.description, elapsed_ns: c.elapsedNs, live_bytes: c.totalBytes,
        live_count: c.totalCount, rss_bytes: c.rssBytes)
    }
    let document = Document(
      old: point(oldPath, old), new: point(newPath, new),
      totals: Totals(
        bytes_diff: Int64(bitPattern: new.totalBytes &- old.totalBytes),
        count_diff: Int64(bitPattern: new.totalCount &- old.totalCount)),
      sites: rows.map { r in
        Site(
          bytes_diff: r.bytesDiff, count_diff: r.countDiff, old_bytes: r.old.bytes, new_bytes: r.new.bytes,
          old_count: r.old.count, new_count: r.new.count, frames: r.frames.map(TotalsReport.Document.Frame.init))
      }, warnings: warnings)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(document), as: UTF8.self) + "\n"
  }
}
