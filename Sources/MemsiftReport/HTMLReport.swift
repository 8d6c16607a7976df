import MemsiftAnalysis
import MemsiftFormat
import MemsiftSymbols

/// Self-contained HTML pages: the report of a trace (timeline, flame graph,
/// top-site tables), the diff of two points, and a flame graph alone.
/// They embed aggregates (the flame tree, a timeline of at most a few
/// thousand points, the tables), never events, so their size does not
/// grow with the trace's length.
public enum HTMLReport {
  /// Frames narrower than this share of every figure are left to their caller.
  static let pruneBelow = 0.0001
  /// The figures a page's flame graph switches between: name, and whether bytes.
  static let flameMetrics = FlameMetric.allCases.map { ($0.rawValue, $0.isBytes) }

  /// The report page. `sections`: the top-site tables, by the metric they rank by.
  public static func report(_ analysis: TraceAnalysis, tree: FlameTree, sections: [(SiteMetric, [SiteRow])]) -> String {
    let s = analysis.summary
    var body = "<h1>memsift report — \(HTMLText.escape(s.path))</h1>\n"
    body += "<pre class=\"totals\">\(HTMLText.escape(TotalsReport.text(s)))</pre>\n"
    body += "<h2>Memory over time</h2>\n"
    body += "<div class=\"bar muted\">live heap (red), RSS (blue, dashed), peak and snapshot labels marked; hover for values"
      + "<label><input type=\"checkbox\" id=\"show-rss\" checked> RSS</label></div>\n"
    body += "<svg id=\"timeline\" viewBox=\"0 0 1000 232\" preserveAspectRatio=\"none\"></svg>\n"
    body += flameSection(title: "Flame graph of the sites")
    for (metric, rows) in sections { body += table(metric, rows: rows, summary: s) }
    let data = dataJSON(kind: "report", tree: tree, metrics: flameMetrics,
      extra: "\"timeline\":" + timelineJSON(analysis))
    return page(title: "memsift — \(s.path)", body: body, data: data)
  }

  /// A flame graph alone, opening on `metric` (the page switches metrics).
  public static func flameGraph(_ tree: FlameTree, metric: FlameMetric, title: String) -> String {
    let body = "<h1>\(HTMLText.escape(title))</h1>\n" + flameSection(title: "Flame graph")
    let data = dataJSON(
      kind: "flame", tree: tree, metrics: flameMetrics,
      extra: "\"metric\":\(FlameMetric.allCases.firstIndex(of: metric)!)")
    return page(title: title, body: body, data: data)
  }

  /// The diff page: a differential flame graph (a frame's width is the
  /// bytes that changed under it, red where they grew, blue where they
  /// shrank) and the table of the sites that changed most.
  public static func diff(
    oldPath: String, old: PointCapture, newPath: String, new: PointCapture, rows: [DiffRow], top: Int
  ) -> String {
    var body = "<h1>memsift diff</h1>\n"
    let header = DiffReport.text(oldPath: oldPath, old: old, newPath: newPath, new: new, rows: [])
      .split(separator: "\n").filter { !$0.isEmpty && $0 != "no site changed" }.joined(separator: "\n")
    body += "<pre class=\"totals\">\(HTMLText.escape(header))</pre>\n"
    body += flameSection(title: "Differential flame graph: <span class=\"grow\">grew</span> / <span class=\"shrink\">shrank</span>")
    body += "<h2>Sites that changed most</h2>\n<table><tr><th>#</th><th>bytes</th><th>blocks</th><th>old → new</th><th>site</th></tr>\n"
    for (i, r) in rows.prefix(top).enumerated() {
      let cls = r.bytesDiff >= 0 ? "grow" : "shrink"
      body += "<tr><td class=\"n\">\(i + 1)</td><td class=\"n \(cls)\">\(DiffReport.signed(r.bytesDiff, bytes: true))</td>"
        + "<td class=\"n\">\(DiffReport.signed(r.countDiff, bytes: false))</td>"
        + "<td class=\"n\">\(ByteFormat.bytes(r.old.bytes)) → \(ByteFormat.bytes(r.new.bytes))</td><td>\(stack(r.frames))</td></tr>\n"
    }
    body += "</table>\n"
    let data = dataJSON(kind: "diff", tree: FlameTree.diff(rows), metrics: [("change", true)], extra: nil)
    return page(title: "memsift diff — \(oldPath) → \(newPath)", body: body, data: data)
  }

  static func flameSection(title: String) -> String {
    """
    <h2>\(title)</h2>
    <div class="bar"><span id="metrics"></span><input id="search" type="search" placeholder="search functions">\
    <button id="reset">reset zoom</button><span class="muted">click a frame to zoom</span></div>
    <div id="status"></div>
    <div id="flame"></div>

    """
  }

  static func table(_ metric: SiteMetric, rows: [SiteRow], summary: TraceSummary) -> String {
    var out = "<h2>\(HTMLText.escape(SiteText.title(metric, summary)))</h2>\n"
    let shown = rows.filter { metric.value($0.stats) > 0 }
    if shown.isEmpty { return out + "<p class=\"muted\">(none)</p>\n" }
    out += "<table><tr><th>#</th><th>figure</th><th>site (click for its stack)</th></tr>\n"
    for (i, row) in shown.enumerated() {
      out += "<tr><td class=\"n\">\(i + 1)</td><td>\(HTMLText.escape(SiteText.headline(metric, row.stats, summary)))</td>"
        + "<td>\(stack(row.frames))</td></tr>\n"
    }
    return out + "</table>\n"
  }

  /// A stack that expands: its innermost frame, then every frame.
  static func stack(_ frames: [SymbolizedFrame]) -> String {
    guard let first = frames.first else { return "<span class=\"muted\">(no frames)</span>" }
    let items = frames.map { "<li>\(HTMLText.escape(SiteText.line($0)))</li>" }.joined()
    // The frame that allocated and who called it (for Python code, its innermost line): two
    // sites in one helper read apart.
    var title = FlameTree.name(of: first)
    if first.kind != .python, let line = frames.first(where: { $0.kind == .python }) {
      title += " ← " + FlameTree.name(of: line)
    } else if frames.count > 1 {
      title += " ← " + FlameTree.name(of: frames[1])
    }
    return "<details><summary>\(HTMLText.escape(title))</summary><ol>\(items)</ol></details>"
  }

  /// The page's data: strings once in `names`, each node flat as
  /// [name, detail, parent, figures...] in `nodes` (parents before children).
  static func dataJSON(kind: String, tree: FlameTree, metrics: [(String, Bool)], extra: String?) -> String {
    let tree = tree.pruned(below: pruneBelow)
    var names: [String] = []
    var index: [String: Int] = [:]
    func intern(_ s: String) -> Int {
      if let i = index[s] { return i }
      names.append(s)
      index[s] = names.count - 1
      return names.count - 1
    }
    var nodes: [String] = []
    nodes.reserveCapacity(tree.nodes.count * (3 + tree.width))
    var parent = [Int](repeating: 0, count: tree.nodes.count)
    for (i, n) in tree.nodes.enumerated() { for c in n.children { parent[c] = i } }
    for (i, n) in tree.nodes.enumerated() {
      nodes.append("\(intern(n.name)),\(intern(n.detail)),\(parent[i])")
      nodes.append(contentsOf: n.values.map(String.init))
    }
    let metricList = metrics.map { "{\"name\":\(HTMLText.json($0.0)),\"bytes\":\($0.1)}" }.joined(separator: ",")
    return "{\"kind\":\(HTMLText.json(kind)),\"width\":\(tree.width),\"metrics\":[\(metricList)],"
      + "\"names\":[\(names.map(HTMLText.json).joined(separator: ","))],\"nodes\":[\(nodes.joined(separator: ","))]"
      + (extra.map { "," + $0 } ?? "") + "}"
  }

  /// Times in milliseconds since the start, flat [t, bytes, t, bytes...].
  static func timelineJSON(_ a: TraceAnalysis) -> String {
    func series(_ t: HeapTimeline) -> String {
      t.points.map { "\(ms($0.elapsedNs)),\($0.bytes)" }.joined(separator: ",")
    }
    let s = a.summary
    let snapshots = s.snapshots.map { "[\(HTMLText.json($0.label)),\(ms(s.elapsed(at: $0.timeNs))),\($0.liveBytes)]" }
    return "{\"duration\":\(ms(s.durationNs)),\"heap\":[\(series(a.heapTimeline))],\"rss\":[\(series(a.rssTimeline))],"
      + "\"peak\":[\(ms(s.elapsed(at: s.totals.peakTimeNs))),\(s.totals.peakBytes)],"
      + "\"snapshots\":[\(snapshots.joined(separator: ","))]}"
  }

  static func ms(_ ns: UInt64) -> String { ByteFormat.thousandths(ns / 1000) }

  static func page(title: String, body: String, data: String) -> String {
    """
    <!DOCTYPE html>
    <html lang="en"><head><meta charset="utf-8"><title>\(HTMLText.escape(title))</title>
    <style>\(HTMLAssets.css)</style></head>
    <body>
    <pre id="errors" hidden></pre>
    \(body)
    <div id="tip" hidden></div>
    <script id="data" type="application/json">\(data)</script>
    <script>\(HTMLAssets.script)</script>
    </body></html>

    """
  }
}
