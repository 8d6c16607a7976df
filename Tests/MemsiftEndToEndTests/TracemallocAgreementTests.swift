import Foundation
import Testing

/// The acceptance of Python frames: on the leaking data service
/// (`tools/examples/data_service.py`), `memsift diff TRACE@warm
/// TRACE@label:end --group-by line` names the same top five growth lines as
/// tracemalloc's `Snapshot.compare_to(warm, 'lineno')` taken at the same two
/// moments of the same workload (an untraced run), each within 10%.
/// `tools/python-compare.py` runs both and compares; this runs it, smaller
/// than its defaults, on every interpreter present.
@Suite struct TracemallocAgreementTests {
  static let script: String = {
    let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    return tests.deletingLastPathComponent().appendingPathComponent("tools/python-compare.py").path
  }()

  @Test(arguments: PythonFramesTests.interpreters)
  func topFiveGrowthLinesAgreeWithTracemalloc(_ path: String) throws {
    try agree(path, options: [])
  }

  /// Under pymalloc, CPython's default, which memsift sees through its hooks
  /// on CPython's allocators (`cshim/src/pymem.c`): the same lines, and on
  /// this workload the same bytes.
  @Test(arguments: PythonFramesTests.interpreters)
  func topFiveGrowthLinesAgreeWithTracemallocUnderPymalloc(_ path: String) throws {
    try agree(path, options: ["--pythonmalloc", "pymalloc"])
  }

  /// Live mode writes each site's state at the labels instead of the
  /// events: the diff between the labels is the same.
  @Test func topFiveGrowthLinesAgreeInLiveMode() throws {
    guard let interpreter = PythonFramesTests.installed("/usr/bin/python3.11") else { return }
    let dir = try TestDirectory()
    try agree(interpreter, options: ["--run-option=--live"], in: dir)
    // It was a live trace: the collector placed its own snapshots.
    let list = try runCommand(E2E.memsift, ["snapshots", "--format", "json", dir.file("service.trace")], in: dir)
    let labels = try JSONDecoder().decode(SnapshotList.self, from: Data(list.stdout.utf8)).snapshots.map(\.label)
    #expect(labels.contains { $0.hasPrefix("peak #") }, "\(labels)")
  }

  func agree(_ path: String, options: [String], in directory: TestDirectory? = nil) throws {
    guard let interpreter = PythonFramesTests.installed(path) else { return }
    let dir = try directory ?? TestDirectory()
    var arguments = [Self.script, "--memsift", E2E.memsift, "--python", interpreter] + options
    arguments += ["--requests", "3000", "--warmup", "300", "--keep", dir.path]
    var environment = ProcessInfo.processInfo.environment
    if !E2E.shimOptions.isEmpty { environment["MEMSIFT_SHIM"] = E2E.shim }
    let result = try runCommand("/usr/bin/python3", arguments, in: dir, environment: environment)
    #expect(result.exitedWith == 0, "\(result)")
    #expect(result.stdout.contains("AGREE: the same top 5 growth lines"), "\(result)")
  }
}
