import ArgumentParser
import Foundation
import MemsiftAnalysis
import MemsiftCollector
import MemsiftReport

#if canImport(Glibc)
  import Glibc
#endif

/// The process the collector forwards SIGTERM and SIGHUP to.
nonisolated(unsafe) private var forwardSignalsTo: pid_t = 0
/// Whether a signal was forwarded already: a second one stops memsift itself.
nonisolated(unsafe) private var signalForwarded: Int32 = 0

/// How much of a Python program's native stack the shim unwinds (MEMSIFT_PYTHON_NATIVE).
enum PythonNativeFrames: String, ExpressibleByArgument, CaseIterable {
  case innermost, all
}

extension MemsiftCommand {
  struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Run a program with every heap operation traced (follows fork and exec).",
      discussion: """
        Writes memsift.PROGRAM.PID.trace in the current directory for each traced process \
        (or -o PATH for the first, PATH with the PID inserted for the others), passes stdin, \
        stdout and stderr through, and exits with the program's exit status (128+N if signal N \
        killed it).

        CPython 3.11-3.13: every object is traced where the program allocates it, through \
        hooks on CPython's own allocators, with its small-object allocator (pymalloc) kept. \
        Other interpreters, or all with MEMSIFT_PYTHON_ALLOCATORS=0, run with \
        PYTHONMALLOC=malloc (unless you set PYTHONMALLOC yourself): CPython then calls malloc \
        for every object, so every allocation is seen (at some cost in speed).
        """)

    @Option(name: .shortAndLong, help: "Trace file of the first process.")
    var output: String?

    @Option(help: "Frames kept per stack (1-512).")
    var depth: Int?

    @Option(
      name: .customLong("python-native"),
      help: """
        Python programs: native frames up to the innermost Python frame only (innermost, the default: \
        the Python frames say the rest, and unwinding stops early) or all of them (all).
        """)
    var pythonNative: PythonNativeFrames?

    @Option(
      name: .customLong("sample-rate"),
      help: """
        Record a sample instead of every event: one allocation per BYTES allocated on average (Poisson, \
        as tcmalloc); reports scale bytes to estimates. E.g. 524288.
        """)
    var sampleRate: UInt64?

    @Flag(
      help: """
        Live mode, for long runs: keep the live set in the collector and write each site's state at \
        snapshots instead of every event (the trace grows with sites x snapshots, not with events).
        """)
    var live = false

    @Option(name: .customLong("snapshot-every"), help: "Live mode: seconds between snapshots (default 60).")
    var snapshotEvery: Double = 60

    @Flag(name: .shortAndLong, help: "Do not print the summary at the end.")
    var quiet = false

    @Option(help: "The preload library (default: found next to memsift; or $MEMSIFT_SHIM).")
    var shim: String?

    @Argument(parsing: .captureForPassthrough, help: "The command to trace, after --.")
    var command: [String] = []

    mutating func validate() throws {
      if command.first == "--" { command.removeFirst() }
      guard !command.isEmpty else { throw ValidationError("missing the command to trace: memsift run -- CMD [ARGS...]") }
      if let depth, !(1...512).contains(depth) { throw ValidationError("--depth must be between 1 and 512") }
      if !(snapshotEvery > 0 && snapshotEvery <= 86_400) {
        throw ValidationError("--snapshot-every must be more than 0 and at most 86400 seconds")
      }
      if let sampleRate, !(1...(1 << 40)).contains(sampleRate) {
        throw ValidationError("--sample-rate must be between 1 and 2^40 bytes")
      }
    }

    func run() throws {
      var environment = Foundation.ProcessInfo.processInfo.environment
      if let pythonNative { environment["MEMSIFT_PYTHON_NATIVE"] = pythonNative.rawValue }
      if let sampleRate { environment["MEMSIFT_SAMPLE_RATE"] = String(sampleRate) }
      let outcome: RunOutcome
      do {
        let shimPath = try ShimLocator.locate(explicit: shim, environment: environment)
        let cwd = FileManager.default.currentDirectoryPath
        let naming = try TraceNaming(explicitPath: output, directory: cwd)
        let runDirectory: RunDirectory
        do {
          runDirectory = try RunDirectory(environment: environment)
        } catch {
          naming.discardUnusedExplicitPath()  // nothing will run: leave no empty trace behind
          throw error
        }
        let launcher = Launcher(
          command: command, shimPath: shimPath, runDirectory: runDirectory.path, depth: depth,
          environment: environment)
        Collector.becomeSubreaper()
        // Ctrl-C reaches the whole process group: the program decides what
        // to do with it, and we stay to finish the traces.
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        let child: pid_t
        do {
          child = try launcher.spawn()
        } catch {
          runDirectory.remove()
          if let output { unlink(output) }
          throw error
        }
        forwardSignalsTo = child
        // The first SIGTERM/SIGHUP goes to the program, which decides how
        // to end (and we stay to finish its traces); a second one, or one
        // that finds the program gone, ends memsift the default way.
        for sig in [SIGTERM, SIGHUP] {
          signal(sig) { s in
            if signalForwarded == 0 && forwardSignalsTo > 0 && kill(forwardSignalsTo, s) == 0 {
              signalForwarded = 1
              return
            }
            signal(s, SIG_DFL)
            raise(s)
          }
        }
        let policy = live ? LivePolicy(intervalNs: UInt64(snapshotEvery * 1e9)) : nil
        outcome = Collector(runDirectory: runDirectory, naming: naming, live: policy).collect(child: child)
      } catch let error as CollectorError {
        printError(error.description)
        if case .launch(_, let code) = error { throw ExitCode(code) }
        throw ExitCode.failure
      }
      for error in outcome.errors { printError(error) }
      if !quiet { printSummary(outcome) }
      throw ExitCode(outcome.exitCode)
    }

    /// One line per trace, in the order the processes started, so a
    /// wrapper that execs the real program stands apart from it.
    private func printSummary(_ outcome: RunOutcome) {
      let count = outcome.traces.count
      var text = "memsift: \(count) trace\(count == 1 ? "" : "s") (events, how it ended, peak heap, leaked, command)\n"
      for trace in outcome.traces {
        var fields = [trace.path, "\(ByteFormat.count(trace.events)) events", trace.endKind.describe(status: trace.endStatus)]
        if let s = try? TraceSummary.read(path: trace.path) {
          fields.append("peak \(ByteFormat.bytes(s.totals.peakBytes))")
          fields.append("leaked \(ByteFormat.bytes(s.totals.leakedBytes))")
        }
        fields.append(CommandDisplay.line(trace.arguments, limit: 100))
        text += "  " + fields.joined(separator: "  ") + "\n"
      }
      FileHandle.standardError.write(Data(text.utf8))
    }
  }
}
