import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// What the end-to-end tests run: the `memsift` executable and the shim
/// built next to the test runner, and the victims compiled once per test
/// process from `Tests/Victims`.
///
/// `MEMSIFT_E2E_SHIM=/path/libmemsift.so` makes every run use that shim
/// instead (`memsift run --shim`, and LD_PRELOAD for the plain runs): this
/// is how a deliberately broken shim is shown to fail the tests.
enum E2E {
  /// Seconds a single command may take before it is killed and the test fails.
  static let commandTimeout: Double = 90

  static let memsift: String = locate("memsift")

  /// The shim the runs use.
  static let shim: String = {
    if let override = ProcessInfo.processInfo.environment["MEMSIFT_E2E_SHIM"], !override.isEmpty {
      return override
    }
    return (memsift as NSString).deletingLastPathComponent + "/libmemsift.so"
  }()

  /// Extra `memsift run` options selecting the shim, when overridden.
  static var shimOptions: [String] {
    let override = ProcessInfo.processInfo.environment["MEMSIFT_E2E_SHIM"] ?? ""
    return override.isEmpty ? [] : ["--shim", override]
  }

  /// Finds `name` next to the test runner (`.build/<triple>/debug/`),
  /// walking up the directories above it if needed.
  static func locate(_ name: String) -> String {
    let runner =
      (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = (runner as NSString).deletingLastPathComponent
    while dir != "/" && !dir.isEmpty {
      for candidate in [dir + "/" + name, dir + "/debug/" + name]
      where FileManager.default.isExecutableFile(atPath: candidate) {
        return candidate
      }
      dir = (dir as NSString).deletingLastPathComponent
    }
    return name  // not found: the first run reports it
  }

  /// `Tests/Victims`, next to this file's directory.
  static let victimSources: String = {
    let thisFile = URL(fileURLWithPath: #filePath)
    return thisFile.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Victims").path
  }()

  /// The compiled victims, or why they could not be compiled.
  private static let compiled: Result<Victims, Error> = Result {
    let victims = try Victims.compile()
    victimsDirectoryToRemove = victims.directory
    atexit {
      if let dir = victimsDirectoryToRemove, ProcessInfo.processInfo.environment["MEMSIFT_E2E_KEEP"] == nil {
        try? FileManager.default.removeItem(atPath: dir)
      }
    }
    return victims
  }

  /// The victims, compiled on first use.
  static func victims() throws -> Victims {
    try compiled.get()
  }
}

/// Removed when the test process exits.
private var victimsDirectoryToRemove: String?

/// Paths of the compiled victims.
struct Victims {
  let directory: String

  func path(_ name: String) -> String { directory + "/" + name }

  var functions: String { path("functions") }
  var leak: String { path("leak") }
  var threads: String { path("threads") }
  var forks: String { path("forks") }
  var dlopen: String { path("dlopen") }
  var plugin: String { path("libmsplugin.so") }
  var endings: String { path("endings") }
  var endingsStatic: String { path("endings-static") }
  var semantics: String { path("semantics") }
  var vfork: String { path("vfork") }
  var busy: String { path("busy") }
  var rawfork: String { path("rawfork") }
  var snapshots: String { path("snapshots") }
  var growth: String { path("growth") }
  var containers: String { path("containers") }
  var libinitMain: String { path("libinit_main") }
  var sites: String { path("sites") }
  var fds: String { path("fds") }
  var sampled: String { path("sampled") }
  var cache: String { path("cache") }
  var inlined: String { path("inlined") }
  var plugins: String { path("plugins") }
  var pluginAlpha: String { path("libmsalpha.so") }
  var pluginBeta: String { path("libmsbeta.so") }
  var pluginGamma: String { path("libmsgamma.so") }
  var stress: String { path("stress") }
  var hazards: String { path("hazards") }

  static let flags = ["-O1", "-g", "-fno-omit-frame-pointer"]

  /// Compiles every victim into a fresh directory. The compilers of a
  /// phase run at once; the second phase links against the first's library.
  static func compile() throws -> Victims {
    let dir = try makeTemporaryDirectory(prefix: "memsift-e2e-victims")
    let src = E2E.victimSources
    let phases: [[(compiler: String, output: String, arguments: [String])]] = [
      [
        ("cc", "functions", [src + "/functions.c"]),
        ("cc", "leak", [src + "/leak.c"]),
        ("cc", "threads", ["-pthread", src + "/threads.c"]),
        ("cc", "forks", [src + "/forks.c"]),
        ("cc", "dlopen", [src + "/dlopen.c", "-ldl"]),
        ("cc", "libmsplugin.so", ["-shared", "-fPIC", src + "/plugin.c"]),
        ("cc", "endings", [src + "/endings.c"]),
        ("cc", "endings-static", ["-static", src + "/endings.c"]),
        ("cc", "semantics", [src + "/semantics.c"]),
        ("cc", "vfork", [src + "/vfork.c"]),
        ("cc", "busy", [src + "/busy.c"]),
        ("cc", "rawfork", [src + "/rawfork.c"]),
        ("cc", "fds", [src + "/fds.c"]),
        ("cc", "snapshots", [src + "/snapshots.c", "-ldl"]),
        ("cc", "growth", [src + "/growth.c"]),
        ("c++", "containers", [src + "/containers.cpp"]),
        ("cc", "libmsinit.so", ["-shared", "-fPIC", src + "/libinit.c"]),
        ("cc", "sites", [src + "/sites.c"]),
        ("cc", "sampled", [src + "/sampled.c"]),
        ("c++", "cache", [src + "/cache.cpp"]),
        ("cc", "inlined", ["-O2", src + "/inlined.c"]),  // the later -O wins
        ("cc", "plugins", [src + "/plugins.c", "-ldl"]),
        ("cc", "libmsalpha.so", ["-shared", "-fPIC", src + "/plugin_alpha.c"]),
        ("cc", "libmsbeta.so", ["-shared", "-fPIC", src + "/plugin_beta.c"]),
        ("cc", "libmsgamma.so", ["-shared", "-fPIC", src + "/plugin_gamma.c"]),
        ("cc", "stress", ["-pthread", src + "/stress.c"]),
        ("cc", "hazards", ["-pthread", src + "/hazards.c", "-ldl"]),
      ],
      [
        ("cc", "libinit_main", [src + "/libinit_main.c", "-L" + dir, "-lmsinit", "-Wl,-rpath," + dir])
      ],
    ]
    for phase in phases {
      let running = try phase.map { job -> (String, Foundation.Process, String) in
        let arguments = flags + ["-o", dir + "/" + job.output] + job.arguments
        let log = dir + "/" + job.output + ".log"
        let command = ([job.compiler] + arguments).joined(separator: " ")
        return (command, try launch(job.compiler, arguments, log: log), log)
      }
      var failures: [String] = []
      for (command, process, log) in running {
        process.waitUntilExit()
        if process.terminationStatus != 0 {
          failures.append(command + "\n" + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? ""))
        }
      }
      if !failures.isEmpty { throw E2EError.compile(failures.joined(separator: "\n")) }
    }
    return Victims(directory: dir)
  }

  private static func launch(_ compiler: String, _ args: [String], log: String) throws -> Foundation.Process {
    let process = Foundation.Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [compiler] + args
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let out = FileHandle(forWritingAtPath: log)
    process.standardOutput = out
    process.standardError = out
    process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
    try process.run()
    return process
  }
}

enum E2EError: Error, CustomStringConvertible {
  case compile(String)
  case timeout(String)
  case noVictimLine(String)
  case report(String)

  var description: String {
    switch self {
    case .compile(let s): return "compiling the victims failed:\n\(s)"
    case .timeout(let s): return "timed out: \(s)"
    case .noVictimLine(let s): return "no JSON line from the victim in its output: \(s)"
    case .report(let s): return "memsift report failed: \(s)"
    }
  }
}

func makeTemporaryDirectory(prefix: String) throws -> String {
  let base = (NSTemporaryDirectory() as NSString).appendingPathComponent(prefix + ".XXXXXX")
  var template = Array(base.utf8CString)
  guard let made = mkdtemp(&template) else {
    throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: String(cString: template)])
  }
  return String(cString: made)
}

/// A directory of one test's own, removed when the test is done with it
/// (kept when MEMSIFT_E2E_KEEP is set, for looking at the traces).
final class TestDirectory {
  let path: String
  private var counter = 0

  init(_ name: String = #function) throws {
    let cleaned = name.filter { $0.isLetter || $0.isNumber }
    path = try makeTemporaryDirectory(prefix: "memsift-e2e-" + cleaned)
  }

  deinit {
    if ProcessInfo.processInfo.environment["MEMSIFT_E2E_KEEP"] == nil {
      try? FileManager.default.removeItem(atPath: path)
    }
  }

  func file(_ name: String) -> String { path + "/" + name }

  /// A fresh name in the directory.
  func unique(_ stem: String) -> String {
    counter += 1
    return file("\(stem).\(counter)")
  }

  /// Trace files whose name starts with `stem`, sorted.
  func traces(named stem: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    return names.filter { $0.hasPrefix(stem) && $0.hasSuffix(".trace") }.sorted().map { file($0) }
  }

  /// Every file in the directory whose name ends in `.trace`.
  var allTraces: [String] { traces(named: "") }
}

/// How a command ended, and what it wrote.
struct CommandResult: CustomStringConvertible {
  var command: [String]
  /// The exit status, or the signal number when `signaled`.
  var status: Int32
  var signaled: Bool
  var stdout: String
  var stderr: String

  var exitedWith: Int32? { signaled ? nil : status }

  var description: String {
    "\(command.joined(separator: " ")): \(signaled ? "killed by signal" : "exit") \(status)\n"
      + "stdout: \(stdout)\nstderr: \(stderr)"
  }

  /// The victim's JSON lines on stdout (each program prints one; an exec'd
  /// image or a child adds its own).
  func victimLines() throws -> [VictimLine] {
    let lines = stdout.split(separator: "\n").filter { $0.hasPrefix("{") }
    guard !lines.isEmpty else { throw E2EError.noVictimLine(description) }
    return try lines.map { try VictimLine(json: String($0)) }
  }

  /// The only (or last) JSON line of the victim.
  func victim() throws -> VictimLine {
    try victimLines().last!
  }
}

/// Runs a command with stdout and stderr captured in files of `dir`, stdin
/// from `stdin` (else /dev/null), killed after `E2E.commandTimeout`.
func runCommand(
  _ executable: String, _ arguments: [String], in dir: TestDirectory, stdin: String? = nil,
  environment: [String: String]? = nil
) throws -> CommandResult {
  let base = dir.unique("command")
  let outPath = base + ".stdout"
  let errPath = base + ".stderr"
  let inPath = base + ".stdin"
  _ = FileManager.default.createFile(atPath: outPath, contents: nil)
  _ = FileManager.default.createFile(atPath: errPath, contents: nil)
  _ = FileManager.default.createFile(atPath: inPath, contents: Data((stdin ?? "").utf8))
  let process = Foundation.Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  process.currentDirectoryURL = URL(fileURLWithPath: dir.path)
  if let environment { process.environment = environment }
  let out = FileHandle(forWritingAtPath: outPath)!
  let err = FileHandle(forWritingAtPath: errPath)!
  let input = FileHandle(forReadingAtPath: stdin == nil ? "/dev/null" : inPath)!
  defer {
    try? out.close()
    try? err.close()
    try? input.close()
  }
  process.standardOutput = out
  process.standardError = err
  process.standardInput = input
  let done = DispatchSemaphore(value: 0)
  process.terminationHandler = { _ in done.signal() }
  try process.run()
  if done.wait(timeout: .now() + E2E.commandTimeout) == .timedOut {
    kill(process.processIdentifier, SIGKILL)
    _ = done.wait(timeout: .now() + 10)
    throw E2EError.timeout(([executable] + arguments).joined(separator: " "))
  }
  return CommandResult(
    command: [executable] + arguments,
    status: process.terminationStatus,
    signaled: process.terminationReason == .uncaughtSignal,
    stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
    stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// One run under `memsift run`: how it ended and every trace it wrote.
struct TracedRun {
  var result: CommandResult
  /// The reports of the traces named after `-o`, by path.
  var reports: [Report]
  /// The trace given to `-o`.
  var first: String

  /// The report of the first process's trace.
  func main() throws -> Report {
    guard let r = reports.first(where: { $0.trace == first }) else {
      throw E2EError.report("no trace at \(first); traces: \(reports.map(\.trace)); \(result)")
    }
    return r
  }

  /// The reports of the process with `pid`, in the order their images ran
  /// (an exec'd image's trace has the later start).
  func reports(pid: Int32) -> [Report] {
    reports.filter { $0.process?.pid == pid }.sorted { ($0.process?.startWallNs ?? 0) < ($1.process?.startWallNs ?? 0) }
  }
}

/// `memsift run -q [OPTIONS] -o TRACE -- COMMAND...`, with the shim the tests use.
func memsiftRun(
  _ command: [String], trace: String, options: [String] = [], in dir: TestDirectory, stdin: String? = nil,
  environment: [String: String]? = nil
) throws -> CommandResult {
  try runCommand(
    E2E.memsift, ["run", "-q"] + E2E.shimOptions + options + ["-o", trace, "--"] + command, in: dir, stdin: stdin,
    environment: environment)
}

/// `memsift run -q -o DIR/NAME.trace -- COMMAND...`, then `memsift report
/// --format json` of every trace the run wrote.
func traced(
  _ command: [String], in dir: TestDirectory, name: String = "run", stdin: String? = nil,
  environment: [String: String]? = nil
) throws -> TracedRun {
  let first = dir.file(name + ".trace")
  let result = try memsiftRun(command, trace: first, in: dir, stdin: stdin, environment: environment)
  // NAME.trace, NAME.PID.trace, NAME.PID.2.trace...
  let reports = try dir.traces(named: name + ".").map { try report($0, in: dir) }
  return TracedRun(result: result, reports: reports, first: first)
}

/// Runs a command with the shim preloaded and no collector; the shim
/// writes `DIR/NAME.trace` itself.
func preloaded(_ command: [String], in dir: TestDirectory, name: String = "plain") throws -> (CommandResult, Report) {
  var env = ProcessInfo.processInfo.environment
  env["LD_PRELOAD"] = E2E.shim
  env["MEMSIFT_OUTPUT"] = dir.file(name + ".trace")
  env["MEMSIFT_RUN_DIR"] = nil
  let result = try runCommand(command[0], Array(command.dropFirst()), in: dir, environment: env)
  return (result, try report(dir.file(name + ".trace"), in: dir))
}

/// `memsift report --format json TRACE`, decoded.
func report(_ trace: String, in dir: TestDirectory) throws -> Report {
  let result = try runCommand(E2E.memsift, ["report", "--format", "json", trace], in: dir)
  guard result.exitedWith == 0 else { throw E2EError.report(result.description) }
  do {
    return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
  } catch {
    throw E2EError.report("\(trace): cannot decode \(error): \(result.stdout)")
  }
}

/// The fields of schema `memsift.report/1` the tests look at.
struct Report: Decodable {
  struct Process: Decodable {
    var pid: Int32
    var ppid: Int32
    var executable: String
    var arguments: [String]
    var exit: Ended
    var startWallNs: UInt64
    var maxDepth: UInt32

    enum CodingKeys: String, CodingKey {
      case pid, ppid, executable, exit
      case arguments = "command"
      case startWallNs = "start_wall_ns"
      case maxDepth = "max_depth"
    }
  }

  struct Ended: Decodable, Equatable, CustomStringConvertible {
    var how: String
    var status: Int32

    init(_ how: String, _ status: Int32) {
      self.how = how
      self.status = status
    }

    var description: String { "\(how) \(status)" }
  }

  struct Totals: Decodable {
    var allocations: UInt64
    var frees: UInt64
    var bytesAllocated: UInt64
    var peakBytes: UInt64
    var leakedBytes: UInt64
    var leakedAllocations: UInt64
    var temporaryAllocations: UInt64
    var calls: [String: UInt64]
    var unmatchedFrees: UInt64
    var reusedWithoutFree: UInt64

    enum CodingKeys: String, CodingKey {
      case allocations, frees, calls
      case bytesAllocated = "bytes_allocated"
      case peakBytes = "peak_heap_bytes"
      case leakedBytes = "leaked_bytes"
      case leakedAllocations = "leaked_allocations"
      case temporaryAllocations = "temporary_allocations"
      case unmatchedFrees = "unmatched_frees"
      case reusedWithoutFree = "reused_without_free"
    }

    func calls(_ function: String) -> UInt64 { calls[function] ?? 0 }
  }

  struct Module: Decodable {
    var path: String
    var base: UInt64
    var buildID: String
    var unloaded: Bool

    enum CodingKeys: String, CodingKey {
      case path, base, unloaded
      case buildID = "build_id"
    }
  }

  /// One frame of a site, innermost first; absent fields are unknown.
  struct Frame: Decodable, CustomStringConvertible {
    var function: String?
    var file: String?
    var line: Int?
    var module: String
    var address: UInt64
    var inlined: Bool
    /// "python" or "native"
    var kind: String?

    var isPython: Bool { kind == "python" }

    var description: String {
      "\(function ?? "?") \(file ?? "?"):\(line.map(String.init) ?? "?") \(module)\(inlined ? " (inlined)" : "")"
        + (isPython ? " [python]" : "")
    }
  }

  /// A row of `sites`: one stack, or one group with `--group-by`.
  struct Site: Decodable, CustomStringConvertible {
    var allocations: UInt64
    var bytesAllocated: UInt64
    var peakBytes: UInt64
    var leakedBytes: UInt64
    var leakedAllocations: UInt64
    var temporaryAllocations: UInt64
    var frames: [Frame]

    enum CodingKeys: String, CodingKey {
      case allocations, frames
      case bytesAllocated = "bytes_allocated"
      case peakBytes = "peak_bytes"
      case leakedBytes = "leaked_bytes"
      case leakedAllocations = "leaked_allocations"
      case temporaryAllocations = "temporary_allocations"
    }

    var description: String {
      "allocations \(allocations), bytes \(bytesAllocated), peak \(peakBytes), leaked \(leakedBytes) in "
        + "\(leakedAllocations), temporary \(temporaryAllocations)\n    "
        + frames.map(\.description).joined(separator: "\n    ")
    }
  }

  var schema: String
  var trace: String
  var process: Process?
  var complete: Bool
  var events: UInt64
  var totals: Totals
  var threads: Int
  var loadedModules: [Module]
  var warnings: [String]
  var sites: [Site]?
  /// Present when the trace is a sample.
  var sampleRateBytes: UInt64?

  enum CodingKeys: String, CodingKey {
    case schema, trace, process, complete, events, totals, threads, warnings, sites
    case sampleRateBytes = "sample_rate_bytes"
    case loadedModules = "loaded_modules"
  }

  var arguments: [String] { process?.arguments ?? [] }
  /// How the process ended: `process.exit`.
  var ended: Ended { process?.exit ?? Ended("unknown", 0) }
}

/// The JSON line a victim prints about itself.
struct VictimLine: CustomStringConvertible {
  let object: [String: Any]
  let text: String

  init(json: String) throws {
    text = json
    object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
  }

  var description: String { text }

  /// A whole number field; 0 when absent (the victims omit zero call counts).
  subscript(_ key: String) -> UInt64 {
    (object[key] as? NSNumber)?.uint64Value ?? 0
  }

  func int32(_ key: String) -> Int32 { (object[key] as? NSNumber)?.int32Value ?? -1 }

  func string(_ key: String) -> String? { object[key] as? String }

  /// The `calls` object of a tally.
  var calls: [String: UInt64] {
    ((object["calls"] as? [String: Any]) ?? [:]).compactMapValues { ($0 as? NSNumber)?.uint64Value }
  }
}

/// Expects a trace's totals to equal a victim's own tally (victim.h), field by field.
func expectTotals(
  _ totals: Report.Totals, equal tally: VictimLine, sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(totals.calls == tally.calls, "calls per function", sourceLocation: sourceLocation)
  #expect(totals.allocations == tally["allocations"], "allocations", sourceLocation: sourceLocation)
  #expect(totals.frees == tally["frees"], "frees", sourceLocation: sourceLocation)
  #expect(totals.bytesAllocated == tally["bytes_allocated"], "bytes allocated", sourceLocation: sourceLocation)
  #expect(totals.peakBytes == tally["peak_bytes"], "peak", sourceLocation: sourceLocation)
  #expect(totals.leakedBytes == tally["leaked_bytes"], "leaked bytes", sourceLocation: sourceLocation)
  #expect(totals.leakedAllocations == tally["leaked_allocations"], "leaked allocations", sourceLocation: sourceLocation)
  #expect(
    totals.temporaryAllocations == tally["temporary_allocations"], "temporary allocations",
    sourceLocation: sourceLocation)
  #expect(totals.unmatchedFrees == 0, "unmatched frees", sourceLocation: sourceLocation)
  #expect(totals.reusedWithoutFree == 0, "reused without free", sourceLocation: sourceLocation)
}

/// The difference between two traces' totals: what a workload added to a
/// baseline run that did everything else the same way.
struct TotalsDifference {
  var allocations: Int64
  var frees: Int64
  var bytesAllocated: Int64
  var leakedBytes: Int64
  var leakedAllocations: Int64
  var calls: [String: Int64]

  init(_ work: Report.Totals, minus base: Report.Totals) {
    allocations = Int64(work.allocations) - Int64(base.allocations)
    frees = Int64(work.frees) - Int64(base.frees)
    bytesAllocated = Int64(work.bytesAllocated) - Int64(base.bytesAllocated)
    leakedBytes = Int64(work.leakedBytes) - Int64(base.leakedBytes)
    leakedAllocations = Int64(work.leakedAllocations) - Int64(base.leakedAllocations)
    var calls: [String: Int64] = [:]
    for key in Set(work.calls.keys).union(base.calls.keys) {
      let d = Int64(work.calls(key)) - Int64(base.calls(key))
      if d != 0 { calls[key] = d }
    }
    self.calls = calls
  }
}
