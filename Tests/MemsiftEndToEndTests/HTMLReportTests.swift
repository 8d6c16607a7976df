import Foundation
import Testing

/// `memsift report --format html` and `memsift flamegraph`, opened in
/// headless Chromium: the page's script runs without an error, the timeline
/// and the flame graph are in the DOM, and a frame's width is its figure's
/// share. `sites 100` (Tests/Victims/sites.c): leak_blocks leaks 100×48 B,
/// keep_from_a→leaf 3×100 B; churn_from_b→leaf frees 5×1000 B, all live at
/// the peak (which is 4800 + 300 + 1000 B).
@Suite struct HTMLReportTests {
  @Test func theReportPageDrawsTheTimelineAndAFlameGraphWhoseWidthsAreTheSitesShares() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try memsiftRun([v.sites, "100"], trace: dir.file("sites.trace"), in: dir)
    #expect(run.exitedWith == 0, "\(run)")
    let page = dir.file("report.html")
    let made = try runCommand(E2E.memsift, ["report", dir.file("sites.trace"), "--format", "html", "-o", page], in: dir)
    try #require(made.exitedWith == 0, "\(made)")
    let html = try String(contentsOfFile: page, encoding: .utf8)
    // Self-contained: nothing is fetched.
    #expect(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<link"))

    // Default metric: peak. leak_blocks 4800 B, churn_from_b 1000 B, keep_from_a 300 B of 6100 B.
    let (peak, peakErrors) = try Browser.dom(page, in: dir)
    #expect(peakErrors.isEmpty, "\(peakErrors)")
    try Self.expectRendered(peak)
    try Self.expectWidth(of: "leak_blocks", in: peak, is: 4800.0 / 6100 * 100)
    try Self.expectWidth(of: "churn_from_b", in: peak, is: 1000.0 / 6100 * 100)
    try Self.expectWidth(of: "keep_from_a", in: peak, is: 300.0 / 6100 * 100)
    #expect(Browser.tags(in: peak, where: "id", "heap-line").count == 1, "the timeline has no heap line")
    #expect(Browser.tags(in: peak, where: "id", "peak-marker").count == 1, "the timeline has no peak marker")
    #expect(Browser.tags(in: peak, where: "id", "rss-line").count == 1, "the timeline has no RSS line")
    // Without RSS, the heap's own scale: its peak is the top of the axis.
    let (heapOnly, heapOnlyConsole) = try Browser.dom(page, fragment: "#rss=0", in: dir)
    #expect(heapOnlyConsole.isEmpty, "\(heapOnlyConsole)")
    #expect(Browser.tags(in: heapOnly, where: "id", "rss-line").isEmpty && heapOnly.contains(">6.0 KiB</text>"))
    #expect(peak.contains("peak 6.0 KiB"), "the peak is not labelled")
    // The tables expand to the whole stack.
    #expect(peak.contains("<details><summary>leak_blocks ← main</summary><ol><li>leak_blocks — "))
    #expect(peak.contains("<summary>leaf ← keep_from_a</summary>") && peak.contains("<summary>leaf ← churn_from_b</summary>"))

    // The leaked view: 4800 B against 300 B, one sixteenth.
    let (leaked, leakedErrors) = try Browser.dom(page, fragment: "#metric=leaked", in: dir)
    #expect(leakedErrors.isEmpty, "\(leakedErrors)")
    try Self.expectRendered(leaked)
    let a = try #require(Browser.tags(in: leaked, where: "data-name", "leak_blocks").first.flatMap(Browser.widthPercent))
    let b = try #require(Browser.tags(in: leaked, where: "data-name", "keep_from_a").first.flatMap(Browser.widthPercent))
    #expect(abs(a / b - 16) < 0.01, "leak_blocks \(a)% vs keep_from_a \(b)%")
    #expect(Browser.tags(in: leaked, where: "data-name", "churn_from_b").isEmpty, "churn_from_b leaked nothing")

    // Searching marks both leaf frames and sums their share: (300 + 1000) / 6100 B.
    let (search, searchConsole) = try Browser.dom(page, fragment: "#search=leaf", in: dir)
    #expect(searchConsole.isEmpty, "\(searchConsole)")
    let leaves = Browser.tags(in: search, where: "data-name", "leaf")
    #expect(leaves.count == 2 && leaves.allSatisfy { $0.contains(" match\"") }, "\(leaves)")
    #expect(search.contains("matching \"leaf\": 21.3%"), "\(search.prefix(3000))")

    // Zoomed on keep_from_a (leaked view): its leaf fills the width, its callers are dimmed above it.
    let (zoomed, zoomConsole) = try Browser.dom(page, fragment: "#metric=leaked&zoom=keep_from_a", in: dir)
    #expect(zoomConsole.isEmpty, "\(zoomConsole)")
    try Self.expectWidth(of: "leaf", in: zoomed, is: 100)
    #expect(Browser.tags(in: zoomed, where: "data-name", "main").first?.contains("fr anc") == true)
    #expect(Browser.tags(in: zoomed, where: "data-name", "leak_blocks").isEmpty, "outside the zoomed frame")
    #expect(zoomed.contains("zoomed on keep_from_a: 300 B (300 B)"))

    let shot = try Browser.screenshot(page, name: "html-report-sites", in: dir)
    let size = (try FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
    #expect(size > 10_000, "screenshot \(shot): \(size) bytes")
  }

  @Test func thePageHoldsAggregatesSoItsSizeDoesNotGrowWithTheEvents() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    var sizes: [Int] = []
    for n in ["100", "1000000"] {
      let trace = dir.file("sites\(n).trace")
      let run = try memsiftRun([v.sites, n], trace: trace, in: dir)
      #expect(run.exitedWith == 0, "\(run)")
      let page = dir.file("sites\(n).html")
      let made = try runCommand(E2E.memsift, ["report", trace, "--format", "html", "-o", page], in: dir)
      try #require(made.exitedWith == 0, "\(made)")
      sizes.append((try FileManager.default.attributesOfItem(atPath: page)[.size] as? Int) ?? 0)
    }
    // A million more events add timeline points (2,048 at most) and longer numbers, nothing per event.
    #expect(sizes[1] < 100_000 && sizes[1] - sizes[0] < 60_000, "\(sizes)")
  }

  @Test func aSnapshotLabelIsMarkedOnTheTimeline() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let trace = dir.file("snap.trace")
    let run = try memsiftRun([v.snapshots], trace: trace, in: dir, stdin: "go\n")
    #expect(run.exitedWith == 0, "\(run)")
    let page = dir.file("snap.html")
    let made = try runCommand(E2E.memsift, ["report", trace, "--format", "html", "-o", page], in: dir)
    try #require(made.exitedWith == 0, "\(made)")
    let (dom, errors) = try Browser.dom(page, in: dir)
    #expect(errors.isEmpty, "\(errors)")
    try Self.expectRendered(dom)
    let labels = Browser.tags(in: dom, where: "class", "snap-label")
    #expect(labels.count == 3, "\(labels)")
    for label in ["a", "b", "c"] { #expect(dom.contains("class=\"snap-label\">\(label)</text>"), "label \(label)") }
  }

  @Test func theFlameGraphCommandWritesAnSVGOrAnInteractivePage() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let trace = dir.file("sites.trace")
    let run = try memsiftRun([v.sites, "100"], trace: trace, in: dir)
    #expect(run.exitedWith == 0, "\(run)")

    let svg = try runCommand(E2E.memsift, ["flamegraph", trace, "--metric", "allocated"], in: dir)
    try #require(svg.exitedWith == 0, "\(svg)")
    #expect(svg.stdout.hasPrefix("<?xml") && svg.stdout.contains("<svg"))
    // 10,100 B allocated: leak_blocks 4800 B, leaf (both callers) 5300 B.
    let total = 1200.0
    func rectWidth(_ name: String) -> Double? {
      guard let title = svg.stdout.range(of: "<title>\(name)\n") else { return nil }
      guard let w = svg.stdout[title.upperBound...].range(of: "width=\"") else { return nil }
      return Double(svg.stdout[w.upperBound...].prefix { $0 != "\"" })
    }
    let leak = try #require(rectWidth("leak_blocks"), "no leak_blocks frame")
    #expect(abs(leak - 4800.0 / 10100 * total) < 0.02, "leak_blocks \(leak) px")
    #expect(svg.stdout.contains("4.7 KiB (4800 B), 47.5%"))

    let page = dir.file("flame.html")
    let html = try runCommand(E2E.memsift, ["flamegraph", trace, "--metric", "leaked", "-o", page], in: dir)
    try #require(html.exitedWith == 0, "\(html)")
    let (dom, errors) = try Browser.dom(page, in: dir)
    #expect(errors.isEmpty, "\(errors)")
    try Self.expectRendered(dom)
    // The page opens on --metric leaked.
    try Self.expectWidth(of: "leak_blocks", in: dom, is: 4800.0 / 5100 * 100)
  }

  @Test func badInputIsOneLineOnStderr() throws {
    let dir = try TestDirectory()
    _ = FileManager.default.createFile(atPath: dir.file("junk.trace"), contents: Data("not a trace".utf8))
    for args in [
      ["report", dir.file("missing.trace"), "--format", "html"],
      ["flamegraph", dir.file("junk.trace")],
      ["export", dir.file("junk.trace"), "--format", "pprof", "-o", dir.file("x.pb.gz")],
      ["export", dir.file("missing.trace") + "@warm", "--format", "pprof"],
    ] {
      let r = try runCommand(E2E.memsift, args, in: dir)
      #expect(r.exitedWith == 1, "\(r)")
      #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.hasPrefix("memsift: "), "\(r)")
    }
  }

  static func expectRendered(_ dom: String) throws {
    #expect(dom.contains("data-rendered=\"1\""), "the script did not finish")
    // The page's own error box stays hidden and empty.
    #expect(dom.contains("<pre id=\"errors\" hidden=\"\"></pre>"), "page errors: \(dom.prefix(400))")
  }

  static func expectWidth(of name: String, in dom: String, is percent: Double) throws {
    let tag = try #require(Browser.tags(in: dom, where: "data-name", name).first, "no frame \(name)")
    let width = try #require(Browser.widthPercent(tag), "\(tag)")
    #expect(abs(width - percent) < 0.001, "\(name): \(width)% instead of \(percent)%")
  }
}
