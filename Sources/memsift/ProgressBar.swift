#if canImport(Glibc)
  import Glibc
#endif

/// A one-line progress bar on stderr, only when stderr is a terminal.
final class ProgressBar {
  private let label: String
  private let minimum: UInt64
  private var shown = -1

  /// nil when stderr is not a terminal: nothing extra is printed then.
  /// `minimum`: totals below it (bytes of a file, stacks) finish before a bar would help.
  init?(label: String, minimum: UInt64 = 64 << 20) {
    guard isatty(STDERR_FILENO) != 0 else { return nil }
    self.label = label
    self.minimum = minimum
  }

  func update(_ done: UInt64, of total: UInt64) {
    guard total >= minimum else { return }
    let percent = Int(min(100, done * 100 / max(total, 1)))
    guard percent != shown else { return }
    shown = percent
    let width = 30
    let filled = percent * width / 100
    draw("\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: " ", count: width - filled))] \(percent)%")
  }

  /// Erases the bar (once, however often it is called).
  func finish() {
    if shown >= 0 { draw("\r\u{1B}[K") }
    shown = -1
  }

  private func draw(_ text: String) {
    var t = text
    t.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
  }
}
