import CMemsiftSys
import MemsiftFormat

#if canImport(Glibc)
  import Glibc
#endif

/// One trace a run produced.
public struct CollectedTrace: Sendable {
  public var path: String
  public var pid: Int32
  /// When the process (image) started, on the monotonic clock.
  public var startMonoNs: UInt64
  public var arguments: [String]
  public var events: UInt64
  public var endKind: ExitKind
  public var endStatus: Int32
  public var lostBytes: UInt64
}

/// The outcome of `memsift run`.
public struct RunOutcome: Sendable {
  /// The exit status memsift passes on: the target's, or 128+N when signal N killed it.
  public var exitCode: Int32
  public var traces: [CollectedTrace]
  /// One line each: traces that could not be written.
  public var errors: [String]
}

/// Drains the rings of every process of a run into trace files, salvages
/// the rings of processes that died, and waits for every descendant.
///
/// The collector is a child subreaper: descendants orphaned during the run
/// are reparented to it, so it can wait for all of them and knows how each
/// one it reaps ended.
public final class Collector {
  private let runDirectory: RunDirectory
  private let naming: TraceNaming
  /// Every ring of the run, in the order their images started.
  private var drains: [RingDrain] = []
  private var attachedPaths: Set<String> = []
  private var done: [CollectedTrace] = []
  private var errors: [String] = []
  /// waitpid statuses of the processes we reaped.
  private var statuses: [Int32: Int32] = [:]

  /// Live mode (`memsift run --live`): nil writes every event.
  private let live: LivePolicy?

  public init(runDirectory: RunDirectory, naming: TraceNaming, live: LivePolicy? = nil) {
    self.runDirectory = runDirectory
    self.naming = naming
    self.live = live
  }

  /// Makes the calling process the subreaper of everything it spawns next.
  public static func becomeSubreaper() {
    _ = CMemsiftSys_setChildSubreaper()
  }

  /// Runs until the target and every descendant have exited and every ring is drained.
  public func collect(child: pid_t) -> RunOutcome {
    naming.firstPid = child
    var idleSleepNs = 50_000
    var lastFlush = monotonicNow()
    var lastHousekeeping: UInt64 = 0
    var moved = 0
    while true {
      // Looking for new rings and exited processes costs system calls
      // (readdir, waitpid, poll): every 10 ms while data flows, else each time.
      let now = monotonicNow()
      if moved == 0 || now - lastHousekeeping >= 10_000_000 {
        lastHousekeeping = now
        if housekeep(child: child) { break }
      }
      moved = 0
      for drain in drains where !drain.finished { moved += drain.drain(naming: naming) }
      if now - lastFlush > 100_000_000 {
        drains.forEach { $0.flush() }
        lastFlush = now
      }
      // Back off while little arrives (a sampled run's trickle used to keep
      // the collector polling every 50 µs, stealing the CPU a
      // multithreaded target needs); a 16 MiB ring takes over 100 ms to
      // fill even at full tracing's rate, so 10 ms is never too late.
      if moved < 256 * 1024 {
        var ts = timespec(tv_sec: 0, tv_nsec: idleSleepNs)
        nanosleep(&ts, nil)
        idleSleepNs = min(idleSleepNs * 2, 10_000_000)
      } else {
        idleSleepNs = 50_000
      }
    }
    runDirectory.remove()
    if let path = naming.discardUnusedExplicitPath() {
      errors.append("no trace for \(path): the program was not traced (statically linked, or it removed LD_PRELOAD?)")
    }
    let exitCode: Int32
    if let status = statuses[child] {
      exitCode =
        CMemsiftSys_WIFSIGNALED(status) != 0
        ? 128 + CMemsiftSys_WTERMSIG(status) : CMemsiftSys_WEXITSTATUS(status)
    } else {
      exitCode = 1
    }
    return RunOutcome(
      exitCode: exitCode, traces: done.sorted { $0.startMonoNs < $1.startMonoNs }, errors: naming.notices + errors)
  }

  /// Attaches new rings, reaps, finishes the traces of processes that are
  /// gone. Returns true once the run is over: the child and every
  /// descendant exited and every ring is finished.
  private func housekeep(child: pid_t) -> Bool {
    attachNewRings()
    var noChildren = false
    while true {
      var status: Int32 = 0
      let pid = waitpid(-1, &status, WNOHANG)
      if pid > 0 {
        statuses[pid] = status
        continue
      }
      noChildren = pid < 0 && errno == ECHILD
      break
    }
    finishExitedProcesses()
    // (finishExitedProcesses may reap the child itself, so look in statuses.)
    guard noChildren && statuses[child] != nil else { return false }
    // Everything is gone: one last look for rings published at the end.
    attachNewRings()
    finishExitedProcesses()
    return drains.allSatisfy(\.finished)
  }

  private func attachNewRings() {
    var attached: [RingDrain] = []
    for path in runDirectory.ringFiles() where !attachedPaths.contains(path) {
      attachedPaths.insert(path)
      do {
        attached.append(try RingDrain(path: path, live: live))
      } catch {
        errors.append("\(error)")
        unlink(path)
      }
    }
    // In start order: trace names (and -o) go to the images as they started.
    attached.sort { $0.startMonoNs < $1.startMonoNs }
    drains.append(contentsOf: attached)
    // A newer ring from the same PID means the older image exec'd: it will
    // never write again.
    for drain in attached {
      for older in drains
      where !older.finished && older.pid == drain.pid && older.startMonoNs < drain.startMonoNs {
        older.drainRemaining(naming: naming)
        complete(older, kind: .exec, status: 0)
      }
    }
  }

  private func finishExitedProcesses() {
    for drain in drains where !drain.finished && drain.processExited {
      // Reap first, so a process we are the parent of has its status; drain
      // first, so the shim's last EXIT record has been seen.
      var status: Int32 = 0
      if statuses[drain.pid] == nil, waitpid(drain.pid, &status, WNOHANG) == drain.pid {
        statuses[drain.pid] = status
      }
      drain.drainRemaining(naming: naming)
      if let status = statuses[drain.pid] {
        if CMemsiftSys_WIFSIGNALED(status) != 0 {
          complete(drain, kind: .signal, status: CMemsiftSys_WTERMSIG(status))
        } else {
          complete(drain, kind: .status, status: CMemsiftSys_WEXITSTATUS(status))
        }
      } else if let exit = drain.lastExit {
        // Not our child: its parent reaped it. The shim saw how it ended.
        complete(drain, kind: exit.kind, status: exit.status)
      } else {
        complete(drain, kind: .unknown, status: 0)
      }
    }
  }

  private func complete(_ drain: RingDrain, kind: ExitKind, status: Int32) {
    drain.finish(kind: kind, status: status, naming: naming)
    if let failure = drain.failure { errors.append(failure) }
    guard let path = drain.writer?.path else { return }
    done.append(
      CollectedTrace(
        path: path, pid: drain.pid, startMonoNs: drain.startMonoNs, arguments: drain.process?.arguments ?? [], events: drain.events,
        endKind: kind, endStatus: status, lostBytes: drain.lostBytes))
  }
}
