import Foundation
import MemsiftAnalysis

/// `memsift snapshots`: every label with the heap and RSS at it.
public enum SnapshotTable {
  public static func text(_ s: TraceSummary) -> String {
    guard !s.snapshots.isEmpty else {
      return "\(s.path): no snapshot labels (memsift_snapshot() in the program, or memsift snapshot PID LABEL)\n"
    }
    var rows = [["label", "time", "live heap", "allocations", "RSS", "RSS not in the heap"]]
    for p in s.snapshots {
      let gap = p.rssBytes.map { $0 > p.liveBytes ? ByteFormat.bytes($0 - p.liveBytes) : "0 B" } ?? "-"
      rows.append([
        p.label + [.program: "", .external: " (from outside)", .collector: " (memsift)"][p.source, default: ""], ByteFormat.seconds(s.elapsed(at: p.timeNs)),
        ByteFormat.bytes(p.liveBytes), ByteFormat.count(p.liveAllocations),
        p.rssBytes.map(ByteFormat.bytes) ?? "-", gap,
      ])
    }
    let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
    var out = ""
    for row in rows {
      let cells = row.enumerated().map { c, cell in
        c == 0 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
          : String(repeating: " ", count: widths[c] - cell.count) + cell
      }
      out += cells.joined(separator: "  ") + "\n"
    }
    out += "RSS is the last sample before each label; what it holds beyond the live heap is not explained by "
      + "the heap tracker (allocator caches and fragmentation, non-heap mappings, code).\n"
    return out
  }
}

extension SnapshotTable {
  /// Schema `memsift.snapshots/1` (README).
  public static func json(_ s: TraceSummary) throws -> String {
    struct Point: Encodable {
      var label: String
      var time_ns: UInt64
      var live_bytes: UInt64
      var live_allocations: UInt64
      var rss_bytes: UInt64?
      var external: Bool
      /// "program", "external" (`memsift snapshot`) or "collector" (live mode).
      var source: String
    }
    struct Document: Encodable {
      var schema = "memsift.snapshots/1"
      var trace: String
      var snapshots: [Point]
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let points = s.snapshots.map {
      Point(
        label: $0.label, time_ns: s.elapsed(at: $0.timeNs), live_bytes: $0.liveBytes,
        live_allocations: $0.liveAllocations, rss_bytes: $0.rssBytes, external: $0.external,
        source: "\($0.source)")
    }
    return String(decoding: try encoder.encode(Document(trace: s.path, snapshots: points)), as: UTF8.self) + "\n"
  }
}
