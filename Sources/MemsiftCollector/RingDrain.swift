import CMemsiftFormat
import CMemsiftRing
import CMemsiftSys
import MemsiftFormat

#if canImport(Glibc)
  import Glibc
#endif

/// Drains one process image's ring into its trace file.
///
/// The ring file is unlinked once the trace is finished; the mapping is the
/// only thing that keeps it alive in between.
final class RingDrain {
  let ringPath: String
  let pid: Int32
  let startMonoNs: UInt64
  private var ring = ms_ring_t()
  private var pidfd: Int32
  private(set) var writer: TraceWriter?
  private(set) var process: ProcessInfo?
  private(set) var events: UInt64 = 0
  private(set) var lostBytes: UInt64 = 0
  private(set) var lastExit: (kind: ExitKind, status: Int32)?
  private(set) var finished = false
  private(set) var failure: String?
  /// Live mode: events are summarized into site states at snapshots.
  private let summarizer: LiveSummarizer?
  /// Full mode: events become EVENTS ops (format 4).
  private let compactor: EventCompactor?

  /// Maps a published ring file; `live`: summarize instead of writing events.
  /// - Throws: `CollectorError.io` when it cannot be opened or is not a ring.
  init(path: String, live: LivePolicy? = nil) throws {
    ringPath = path
    let fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { throw CollectorError.io("cannot open ring \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let rc = ms_ring_attach(&ring, fd)
    guard rc == 0 else { throw CollectorError.io("\(path) is not a memsift ring (\(String(cString: strerror(-rc))))") }
    pid = ring.header.pointee.pid
    startMonoNs = ring.header.pointee.start_mono_ns
    let start = startMonoNs
    summarizer = live.map { LiveSummarizer(policy: $0, startNs: start) }
    compactor = live == nil ? EventCompactor(startNs: start) : nil
    // Opened while the process is alive; if it is already gone, it is
    // finished as soon as the ring is drained.
    pidfd = CMemsiftSys_pidfdOpen(pid)
  }

  deinit {
    if ring.header != nil { ms_ring_unmap(&ring) }
    if pidfd >= 0 { close(pidfd) }
  }

  /// Whether the process that owns the ring has exited.
  var processExited: Bool { pidfd < 0 || CMemsiftSys_pidfdExited(pidfd) != 0 }

  /// Moves every committed record into the trace. Returns the bytes moved.
  func drain(naming: TraceNaming) -> Int {
    var moved = 0
    while true {
      var span: UnsafePointer<UInt8>?
      var corrupt: Int32 = 0
      let n = ms_ring_peek(&ring, &span, &corrupt)
      guard n > 0, let span else { break }
      let bytes = UnsafeRawBufferPointer(start: span, count: n)
      scan(bytes)
      if writer == nil && failure == nil { openTrace(naming: naming) }
      if let writer {
        do {
          if let summarizer {
            try summarizer.consume(bytes) { try writer.append($0) }
          } else if let compactor {
            try compactor.consume(bytes) { try writer.append($0) }
          } else {
            try writer.append(bytes)
          }
        } catch { fail("\(error)") }
      }
      ms_ring_consume(&ring, n)
      moved += n
    }
    return moved
  }

  /// Notes what the collector needs from the records: the process, the
  /// number of heap events, the last exit the process reported.
  private func scan(_ bytes: UnsafeRawBufferPointer) {
    var at = 0
    while at + 8 <= bytes.count {
      let word = bytes.loadUnaligned(fromByteOffset: at, as: ms_record_header_t.self)
      let record = UnsafeRawBufferPointer(rebasing: bytes[at..<at + Int(word.size)])
      switch UInt32(word.type) {
      case MS_REC_ALLOC.rawValue, MS_REC_FREE.rawValue, MS_REC_REALLOC.rawValue:
        events += 1  // a realloc's DONE record is the same event
      case MS_REC_PROCESS.rawValue, MS_REC_EXIT.rawValue:
        switch try? TraceRecord.decode(record) {
        case .process(let info)?: if process == nil { process = info }
        case .exit(_, let kind, let status)?: lastExit = (kind, status)
        default: break
        }
      default:
        break
      }
      at += Int(word.size)
    }
  }

  private func openTrace(naming: TraceNaming) {
    let program = process.map { String($0.executable.split(separator: "/").last ?? "process") } ?? "process"
    do {
      let (path, fd) = try naming.create(program: program, pid: pid)
      let header = TraceHeader(
        flags: summarizer == nil ? 0 : MS_FILE_LIVE, writer: MS_WRITER_COLLECTOR, pid: pid, ppid: process?.ppid ?? 0,
        startWallNs: process?.startWallNs ?? 0, startMonoNs: startMonoNs,
        pageSize: process?.pageSize ?? UInt32(sysconf(Int32(_SC_PAGESIZE))))
      writer = try TraceWriter(fd: fd, path: path, header: header)
    } catch {
      fail("\(error)")
    }
  }

  /// Records go on being consumed after a failure, so the target never
  /// waits on a ring nobody drains; the failure is reported once.
  private func fail(_ message: String) {
    if failure == nil { failure = message }
    writer = nil
  }

  func flush() {
    guard let writer else { return }
    do {
      try summarizer?.tick(now: monotonicNow()) { try writer.append($0) }
      try compactor?.flush { try writer.append($0) }
      try writer.flush()
    } catch { fail("\(error)") }
  }

  /// Drains what is left once no producer can write any more (the process
  /// exited or exec'd), stepping over records a dying thread never committed.
  func drainRemaining(naming: TraceNaming) {
    _ = drain(naming: naming)
    while true {
      let skipped = ms_ring_skip_hole(&ring)
      if skipped == 0 { break }
      lostBytes += skipped
      _ = drain(naming: naming)
    }
  }

  /// Drains the rest, writes the END record and removes the ring file.
  func finish(kind: ExitKind, status: Int32, naming: TraceNaming) {
    guard !finished else { return }
    drainRemaining(naming: naming)
    if writer == nil && failure == nil { openTrace(naming: naming) }
    let h = ring.header.pointee
    let end = EndInfo(
      timeNs: monotonicNow(), kind: kind, status: status, backpressureNs: h.backpressure_ns,
      backpressureWaits: h.backpressure_waits, lostBytes: lostBytes, stackTableFull: h.stack_table_full)
    if let writer {
      do {
        try summarizer?.finish(at: end.timeNs) { try writer.append($0) }
        try compactor?.finish { try writer.append($0) }
        try writer.finish(with: TraceRecord.encodeEnd(end))
      } catch { fail("\(error)") }
    }
    unlink(ringPath)
    ms_ring_unmap(&ring)
    if pidfd >= 0 { close(pidfd) }
    pidfd = -1
    finished = true
  }
}

func monotonicNow() -> UInt64 {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
