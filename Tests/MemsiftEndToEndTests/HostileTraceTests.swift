import Foundation
import Testing

/// Contract 7 through the CLI: on garbage, the reading commands print one
/// line on stderr and exit 1; on a cut trace, a partial result with a
/// warning (or that one line); never a crash.
@Suite struct HostileTraceTests {
  /// The collector-written trace of `leak 5 100` in the fuzz corpus (its
  /// first byte is the fuzz target's mode).
  func corpusTrace() throws -> Data {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    return try Data(contentsOf: root.appendingPathComponent("tools/fuzz/corpus/leak-whole")).dropFirst()
  }

  func expectOneLineError(_ r: CommandResult) {
    #expect(r.exitedWith == 1, "\(r)")
    let lines = r.stderr.split(separator: "\n")
    #expect(lines.count == 1 && lines[0].hasPrefix("memsift: "), "\(r)")
  }

  @Test func garbageGetsOneLineOnStderrAndExitStatus1() throws {
    let dir = try TestDirectory()
    var random = SystemRandomNumberGenerator()
    let garbage: [String: Data] = [
      "empty": Data(),
      "random": Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &random) }),
      "header-cut": try corpusTrace().prefix(30),
    ]
    for (name, bytes) in garbage {
      let path = dir.file(name + ".trace")
      try bytes.write(to: URL(fileURLWithPath: path))
      for command in [["report", path], ["snapshots", path], ["growth", path], ["diff", path, path]] {
        expectOneLineError(try runCommand(E2E.memsift, command, in: dir))
      }
    }
  }

  @Test func aCutTraceGivesAPartialReportWithAWarning() throws {
    let dir = try TestDirectory()
    let whole = try corpusTrace()
    let path = dir.file("cut.trace")
    for cut in stride(from: 56, to: whole.count, by: 61) {
      try whole.prefix(cut).write(to: URL(fileURLWithPath: path))
      let r = try runCommand(E2E.memsift, ["report", path], in: dir)
      #expect(r.exitedWith == 0, "cut at \(cut): \(r)")
      #expect(r.stdout.contains("warning: "), "cut at \(cut): \(r)")
      for command in [["snapshots", path], ["growth", path], ["diff", path + "@start", path]] {
        let other = try runCommand(E2E.memsift, command, in: dir)
        #expect(other.exitedWith == 0 || other.exitedWith == 1, "cut at \(cut): \(other)")
      }
    }
  }
}
