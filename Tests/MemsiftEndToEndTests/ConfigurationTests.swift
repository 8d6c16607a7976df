import Foundation
import Testing

/// MEMSIFT_* variables and `memsift run` options reach the shim; a bad value
/// costs one line on stderr and the default, never the program.
@Suite struct ConfigurationTests {
  @Test func depthOptionReachesTheShim() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let result = try runCommand(
      E2E.memsift, ["run", "-q", "--depth", "3"] + E2E.shimOptions + ["-o", dir.file("d.trace"), "--", v.leak, "2", "10"],
      in: dir)
    #expect(result.exitedWith == 0, "\(result)")
    #expect(try report(dir.file("d.trace"), in: dir).process?.maxDepth == 3)
    let defaulted = try traced([v.leak, "2", "10"], in: dir, name: "default")
    #expect(try defaulted.main().process?.maxDepth == 64)
  }

  @Test func anOutOfRangeDepthIsRefusedBeforeAnythingRuns() throws {
    let dir = try TestDirectory()
    let result = try runCommand(E2E.memsift, ["run", "--depth", "0", "--", "/bin/true"], in: dir)
    #expect(result.exitedWith != 0)
    #expect(result.stderr.contains("--depth must be between 1 and 512"), "\(result)")
    #expect(dir.allTraces.isEmpty)
  }

  @Test func aMalformedVariableCostsOneLineAndTheDefault() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    var env = ProcessInfo.processInfo.environment
    env["MEMSIFT_DEPTH"] = "lots"
    env["MEMSIFT_RING_MB"] = "-5"
    let run = try traced([v.leak, "4", "25"], in: dir, environment: env)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let warnings = run.result.stderr.split(separator: "\n")
    #expect(warnings.count == 2, "\(run.result.stderr)")
    #expect(run.result.stderr.contains("memsift: MEMSIFT_DEPTH=lots is not a whole number from 1 to 512; using 64"))
    #expect(run.result.stderr.contains("memsift: MEMSIFT_RING_MB=-5 is not a whole number from 1 to 4096; using 16"))
    let report = try run.main()
    #expect(report.process?.maxDepth == 64)
    #expect(report.totals.leakedAllocations == 4)
    #expect(report.totals.leakedBytes == 100)
  }
}
