import MemsiftAnalysis
import MemsiftSymbols

/// The per-site sections of the text report, like heaptrack_print's.
public enum SiteText {
  /// How many frames of each stack are printed.
  static let framesShown = 8

  public static func section(_ metric: SiteMetric, rows: [SiteRow], summary: TraceSummary) -> String {
    var out = "\n" + title(metric, summary) + "\n"
    if rows.isEmpty || rows.allSatisfy({ metric.value($0.stats) == 0 }) { return out + "  (none)\n" }
    for (i, row) in rows.enumerated() where metric.value(row.stats) > 0 {
      out += "  \(i + 1). " + headline(metric, row.stats, summary) + "\n"
      for frame in row.frames.prefix(framesShown) { out += "       " + line(frame) + "\n" }
      if row.frames.count > framesShown { out += "       … \(row.frames.count - framesShown) more frames\n" }
    }
    return out
  }

  static func title(_ metric: SiteMetric, _ s: TraceSummary) -> String {
    switch metric {
    case .peak:
      return "PEAK \(ByteFormat.bytes(s.totals.peakBytes)) at \(ByteFormat.seconds(s.elapsed(at: s.totals.peakTimeNs))): "
        + "sites by bytes live at the peak"
    case .leaked: return "LEAKS \(ByteFormat.bytes(s.totals.leakedBytes)): sites by bytes never freed"
    case .allocated: return "ALLOCATED \(ByteFormat.bytes(s.totals.bytesAllocated)): sites by bytes allocated"
    case .allocations: return "CALLS \(ByteFormat.count(s.totals.allocations)): sites by allocation calls"
    case .temporary:
      return "TEMPORARY \(ByteFormat.count(s.totals.temporaryAllocations)): sites by allocations freed right away"
    }
  }

  static func headline(_ metric: SiteMetric, _ st: SiteStats, _ s: TraceSummary) -> String {
    func share(_ part: UInt64, _ whole: UInt64) -> String {
      whole == 0 ? "" : " (" + String(format1: Double(part) * 100 / Double(whole)) + "%)"
    }
    switch metric {
    case .peak:
      // The count is every allocation the site made, not the blocks live at the peak.
      return "\(ByteFormat.bytes(st.peakBytes))\(share(st.peakBytes, s.totals.peakBytes)) live at the peak; "
        + "\(ByteFormat.count(st.allocations, "allocation")) in all"
    case .leaked:
      return "\(ByteFormat.bytes(st.leakedBytes))\(share(st.leakedBytes, s.totals.leakedBytes)) leaked "
        + "in \(ByteFormat.count(st.leakedAllocations, "allocation"))"
    case .allocated:
      return "\(ByteFormat.bytes(st.bytesAllocated))\(share(st.bytesAllocated, s.totals.bytesAllocated)) allocated "
        + "in \(ByteFormat.count(st.allocations, "allocation"))"
    case .allocations:
      return "\(ByteFormat.count(st.allocations))\(share(st.allocations, s.totals.allocations)) "
        + "\(st.allocations == 1 ? "allocation" : "allocations"), "
        + "\(ByteFormat.bytes(st.bytesAllocated))"
    case .temporary:
      return "\(ByteFormat.count(st.temporaryAllocations))\(share(st.temporaryAllocations, s.totals.temporaryAllocations)) "
        + "temporary of \(ByteFormat.count(st.allocations, "allocation"))"
    }
  }

  /// "function — file:line — module", or module+offset when unknown; a
  /// Python frame is "function — file:line [python]".
  public static func line(_ f: SymbolizedFrame) -> String {
    if f.kind == .python {
      return "\(f.function ?? "?") — \(f.file ?? "?"):\(f.line.map(String.init) ?? "?") [python]"
    }
    guard let function = f.function else { return f.moduleOffsetName }
    var parts = [function]
    if let file = f.file { parts.append("\(file):\(f.line ?? 0)") }
    parts.append(f.moduleName)
    return parts.joined(separator: " — ") + (f.inlined ? " (inlined)" : "")
  }
}
