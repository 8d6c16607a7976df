import Foundation
import Testing

/// The HTML pages of the leaking and the fixed Python service
/// (`Tests/Victims/service.py`): the diff between their ends draws the
/// cache's line in the growth colour, and the leaking run's report renders
/// (its screenshot is the one README shows).
@Suite struct PythonHTMLTests {
  @Test func theDiffOfTheFixedAndTheLeakingServiceDrawsTheCacheLineAsGrowth() throws {
    let python = try PythonDiffTests.interpreter()
    let service = E2E.victimSources + "/service.py"
    let dir = try TestDirectory()
    let leaky = dir.file("leaky.trace")
    let fixed = dir.file("fixed.trace")
    let (n, w) = (String(PythonDiffTests.requests), String(PythonDiffTests.warmup))
    let runs = try concurrently([
      { try memsiftRun([python, "-S", service, "leaky", n, w], trace: leaky, in: $0) },
      { try memsiftRun([python, "-S", service, "fixed", n, w], trace: fixed, in: $0) },
    ])
    for run in runs { #expect(run.exitedWith == 0, "\(run)") }

    let diffPage = dir.file("diff.html")
    let reportPage = dir.file("leaky.html")
    let made = try concurrently([
      { try runCommand(E2E.memsift, ["diff", fixed + "@done", leaky + "@done", "--format", "html", "-o", diffPage], in: $0) },
      { try runCommand(E2E.memsift, ["report", leaky, "--format", "html", "-o", reportPage], in: $0) },
    ])
    for r in made { try #require(r.exitedWith == 0, "\(r)") }

    let (diff, diffConsole) = try Browser.dom(diffPage, in: dir)
    #expect(diffConsole.isEmpty, "\(diffConsole)")
    try HTMLReportTests.expectRendered(diff)
    // The line that builds each cached result, service.py's `@site:remember`.
    let name = "remember service.py:\(try sourceLine("# @site:remember", in: "service.py"))"
    let frames = Browser.tags(in: diff, where: "data-name", name)
    try #require(!frames.isEmpty, "no frame \(name) in the differential flame graph")
    for frame in frames {
      #expect(frame.contains(" grow") && frame.contains("background:rgb(255,"), "\(frame)")
    }
    // ≥ 290 more results of 10,000 B live in the leaking run: the frame spans most of the change.
    let width = try #require(frames.compactMap(Browser.widthPercent).max())
    #expect(width > 50, "\(name) spans \(width)% of the change")
    #expect(!Browser.tags(in: diff, where: "class", "n grow").isEmpty, "the table shows no growth")
    try Browser.screenshot(diffPage, name: "html-diff-python-service", in: dir)

    let (report, reportConsole) = try Browser.dom(reportPage, in: dir)
    #expect(reportConsole.isEmpty, "\(reportConsole)")
    try HTMLReportTests.expectRendered(report)
    for label in ["warm", "done"] { #expect(report.contains("class=\"snap-label\">\(label)</text>"), "label \(label)") }
    #expect(!Browser.tags(in: report, where: "data-name", name).isEmpty, "the report's flame graph lacks \(name)")
    try Browser.screenshot(reportPage, name: "html-report-python-service", in: dir)

    // On a terminal (script(1) gives it one), symbolizing its 9,000-odd stacks shows a bar, then erases it.
    let tty = try runCommand(
      "/usr/bin/script", ["-qec", "\(E2E.memsift) report \(leaky) --format html -o \(dir.file("tty.html"))", "/dev/null"],
      in: dir)
    #expect(tty.exitedWith == 0, "\(tty)")
    #expect(tty.stdout.contains("\rsymbolizing [") && tty.stdout.contains("] 100%"), "\(tty.stdout.suffix(300))")
    #expect(tty.stdout.hasSuffix("\r\u{1B}[K"), "\(tty.stdout.suffix(300))")
  }
}
