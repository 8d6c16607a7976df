import Foundation
import Testing

/// Headless Chromium (Debian's `chromium`, installed by tools/setup.sh), for
/// the HTML pages: the DOM after their script ran, what the console said,
/// and a screenshot.
enum Browser {
  static let chromium = "/usr/bin/chromium"
  /// Running as root (CI) needs --no-sandbox; no GPU on these machines.
  static let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]

  /// Where screenshots go: `.build/test-output/` of the package, kept after the run.
  static let outputFolder: String = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    let dir = root.appendingPathComponent(".build/test-output").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }()

  /// A profile directory of the run's own: tests run at once, and two
  /// Chromiums sharing ~/.config/chromium would wait on its lock.
  static func profile(in dir: TestDirectory) throws -> [String] {
    try #require(
      FileManager.default.isExecutableFile(atPath: chromium), "\(chromium) is missing: tools/setup.sh installs chromium")
    return ["--user-data-dir=" + dir.unique("chromium-profile")]
  }

  /// The DOM of `page` (a file, with an optional `#fragment`) after load, and
  /// what the console said (uncaught exceptions, console.error) from Chromium's log.
  static func dom(_ page: String, fragment: String = "", in dir: TestDirectory) throws -> (dom: String, console: [String]) {
    let result = try runCommand(
      chromium, flags + (try profile(in: dir)) + ["--enable-logging=stderr", "--v=0", "--dump-dom", "file://" + page + fragment],
      in: dir)
    try #require(result.exitedWith == 0, "\(result.command): \(result.stderr.suffix(2000))")
    // Console messages are logged as `INFO:CONSOLE:line] "message"` whatever their level; the
    // pages log nothing, so any of them (an uncaught exception, console.error) is a failure.
    let errors = result.stderr.split(separator: "\n").map(String.init).filter {
      $0.contains(":CONSOLE") || $0.contains("Uncaught")
    }
    return (result.stdout, errors)
  }

  /// A 1400×1000 screenshot of `page` into the output folder as NAME.png; its path.
  @discardableResult
  static func screenshot(_ page: String, name: String, in dir: TestDirectory) throws -> String {
    let path = outputFolder + "/" + name + ".png"
    try? FileManager.default.removeItem(atPath: path)
    let result = try runCommand(
      chromium, flags + (try profile(in: dir)) + ["--window-size=1400,1000", "--screenshot=" + path, "file://" + page], in: dir)
    try #require(result.exitedWith == 0, "\(result.command): \(result.stderr.suffix(2000))")
    return path
  }

  /// The elements of `dom` whose opening tag carries `attribute="value"`: each tag's text.
  static func tags(in dom: String, where attribute: String, _ value: String) -> [String] {
    var out: [String] = []
    var rest = dom[...]
    while let hit = rest.range(of: "\(attribute)=\"\(value)\"") {
      let start = rest[..<hit.lowerBound].lastIndex(of: "<") ?? hit.lowerBound
      let end = rest[hit.upperBound...].firstIndex(of: ">") ?? rest.endIndex
      out.append(String(rest[start..<end]))
      rest = rest[end...]
    }
    return out
  }

  /// The percentage of a flame frame's inline `width:…%`.
  static func widthPercent(_ tag: String) -> Double? {
    guard let r = tag.range(of: "width:") else { return nil }
    return Double(tag[r.upperBound...].prefix { $0.isNumber || $0 == "." })
  }
}
