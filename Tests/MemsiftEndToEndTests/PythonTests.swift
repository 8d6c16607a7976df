import Testing

/// CPython under `memsift run`, which hooks its allocators. `python3`
/// may be a wrapper (pyenv's shim is a bash script that execs pyenv, which
/// execs the interpreter): the interpreter's trace is picked by the command
/// line it recorded.
@Suite struct PythonTests {
  static let program = #"import sys; x=[bytearray(1000) for _ in range(1000)]; print("ok", len(x))"#

  @Test func pythonRunsWithItsOutputIntactAndEveryBytearrayTraced() throws {
    let dir = try TestDirectory()
    let run = try traced(["python3", "-c", Self.program], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    #expect(run.result.stdout == "ok 1000\n")
    #expect(run.result.stderr == "")

    // The interpreter's image: it runs the program (-c) and was not replaced.
    let interpreters = run.reports.filter {
      $0.arguments.contains("-c") && $0.arguments.contains(Self.program) && $0.ended.how != "exec"
        && ($0.arguments.first?.split(separator: "/").last?.hasPrefix("python") ?? false)
    }
    try #require(interpreters.count == 1, "traces: \(run.reports.map { "\($0.arguments) \($0.ended)" })")
    let python = interpreters[0]
    #expect(python.complete)
    #expect(python.ended == .init("exited", 0))
    #expect(python.totals.allocations >= 1000)
    #expect(python.totals.bytesAllocated >= 1_000_000)
    #expect(python.totals.reusedWithoutFree == 0)
  }
}
