import CMemsiftFormat

/// Identifies a deduplicated call stack within one trace.
public struct StackID: Hashable, Sendable {
  public var rawValue: UInt32
  public init(_ rawValue: UInt32) { self.rawValue = rawValue }
  /// Events whose stack could not be captured or interned.
  public static let unknown = StackID(UInt32(MS_STACK_UNKNOWN))
}

/// The interposed function that made an allocation.
///
/// The corresponding C enum is `ms_alloc_function`.
public enum AllocFunction: UInt8, Sendable, CaseIterable {
  case malloc = 1, calloc, realloc, reallocarray, posixMemalign, alignedAlloc, memalign, valloc, pvalloc

  /// The C name of the function.
  public var name: String {
    switch self {
    case .malloc: return "malloc"
    case .calloc: return "calloc"
    case .realloc: return "realloc"
    case .reallocarray: return "reallocarray"
    case .posixMemalign: return "posix_memalign"
    case .alignedAlloc: return "aligned_alloc"
    case .memalign: return "memalign"
    case .valloc: return "valloc"
    case .pvalloc: return "pvalloc"
    }
  }
}

/// The `PROCESS` record that opens every trace.
public struct ProcessInfo: Sendable, Equatable {
  public var pid: Int32
  public var ppid: Int32
  public var startWallNs: UInt64
  public var startMonoNs: UInt64
  public var pageSize: UInt32
  public var maxDepth: UInt32
  public var executable: String
  public var arguments: [String]
}

/// One PT_LOAD segment of a module, relative to its load bias.
public struct Segment: Sendable, Equatable {
  public var vaddr: UInt64
  public var memsz: UInt64
  public var flags: UInt32
}

/// A loaded object: the executable, a shared library or the vDSO.
public struct Module: Sendable, Equatable {
  public var timeNs: UInt64
  public var base: UInt64
  public var segments: [Segment]
  public var buildID: [UInt8]
  public var path: String
}

/// A Python frame in a stack: the code object it runs and the instruction executing.
public struct PythonFrameRef: Sendable, Hashable {
  /// Id of the `PythonCode` (its CODE record); 0 when the shim could not record it.
  public var code: UInt32
  /// Index (in 2-byte code units) of the executing instruction; -1 before the first.
  public var instruction: Int32
  /// The outermost frame of one native call of the evaluation loop.
  public var isEntry: Bool
  /// Not yet at its first traceable instruction: CPython (tracebacks,
  /// tracemalloc) does not show it, and neither do the reports.
  public var isIncomplete: Bool

  public init(code: UInt32, instruction: Int32, isEntry: Bool, isIncomplete: Bool = false) {
    self.code = code
    self.instruction = instruction
    self.isEntry = isEntry
    self.isIncomplete = isIncomplete
  }
}

/// A Python code object as a CODE record describes it.
public struct PythonCode: Sendable, Equatable {
  public var id: UInt32
  public var address: UInt64
  /// co_firstlineno
  public var firstLine: Int32
  /// co_qualname
  public var name: String
  /// co_filename
  public var file: String
  /// co_linetable (the 3.11+ location table)
  public var lineTable: [UInt8]
  /// A string or the line table was cut by the shim.
  public var truncated: Bool

  public init(
    id: UInt32, address: UInt64, firstLine: Int32, name: String, file: String, lineTable: [UInt8], truncated: Bool
  ) {
    self.id = id
    self.address = address
    self.firstLine = firstLine
    self.name = name
    self.file = file
    self.lineTable = lineTable
    self.truncated = truncated
  }
}

/// A site's state in a live-mode trace (MS_REC_SITE), in place of its events.
public struct SiteState: Sendable, Equatable {
  public var timeNs: UInt64
  public var stack: StackID
  public var liveBytes: UInt64
  public var liveCount: UInt64
  /// Since the start of the trace.
  public var allocations: UInt64
  public var bytesAllocated: UInt64

  public init(
    timeNs: UInt64, stack: StackID, liveBytes: UInt64, liveCount: UInt64, allocations: UInt64, bytesAllocated: UInt64
  ) {
    self.timeNs = timeNs
    self.stack = stack
    self.liveBytes = liveBytes
    self.liveCount = liveCount
    self.allocations = allocations
    self.bytesAllocated = bytesAllocated
  }
}

/// Who placed a snapshot label (`ms_snapshot_source`).
public enum SnapshotSource: UInt32, Sendable {
  /// The program called memsift_snapshot().
  case program = 1
  /// `memsift snapshot PID LABEL`, from outside.
  case external = 2
  /// The collector itself, in live mode (periodic, new peak).
  case collector = 3
}

/// The writer's final record: how the process ended, and what tracing cost.
public struct EndInfo: Sendable, Equatable {
  public var timeNs: UInt64
  public var kind: ExitKind
  public var status: Int32
  public var backpressureNs: UInt64
  public var backpressureWaits: UInt64
  public var lostBytes: UInt64
  public var stackTableFull: UInt64

  public init(
    timeNs: UInt64, kind: ExitKind, status: Int32, backpressureNs: UInt64, backpressureWaits: UInt64,
    lostBytes: UInt64, stackTableFull: UInt64
  ) {
    self.timeNs = timeNs
    self.kind = kind
    self.status = status
    self.backpressureNs = backpressureNs
    self.backpressureWaits = backpressureWaits
    self.lostBytes = lostBytes
    self.stackTableFull = stackTableFull
  }
}

/// A decoded trace record.
///
/// The layouts are the C structs of `trace_format.h`; see the comments there.
public enum TraceRecord: Sendable, Equatable {
  case process(ProcessInfo)
  case moduleLoad(Module)
  case moduleUnload(timeNs: UInt64, base: UInt64)
  case thread(timeNs: UInt64, tid: UInt32, name: String)
  /// Native return addresses and (innermost first) the Python frames above them.
  case stack(id: StackID, frames: [UInt64], python: [PythonFrameRef])
  case code(PythonCode)
  /// The events are a sample: one allocation per `rateBytes` bytes on average.
  case sampling(rateBytes: UInt64)
  /// Live mode: a site's state at this point, in place of its events.
  case site(SiteState)
  case alloc(timeNs: UInt64, ptr: UInt64, size: UInt64, stack: StackID, tid: UInt32, function: AllocFunction?)
  case free(timeNs: UInt64, ptr: UInt64)
  /// A realloc taking its place before the real call (see `reallocDone`).
  case realloc(timeNs: UInt64, oldPtr: UInt64, size: UInt64, stack: StackID, tid: UInt32, function: AllocFunction?)
  /// The same realloc, after the real call returned `newPtr`.
  case reallocDone(timeNs: UInt64, oldPtr: UInt64, newPtr: UInt64, tid: UInt32)
  /// The collector's compact events (version 4): ops for `EventOpDecoder`.
  case events([UInt8])
  case rss(timeNs: UInt64, bytes: UInt64)
  case exit(timeNs: UInt64, kind: ExitKind, status: Int32)
  case end(EndInfo)
  /// A named moment, and who placed it.
  case snapshot(timeNs: UInt64, label: String, source: SnapshotSource)
  /// A record type this reader does not know (a newer writer); skipped.
  case unknown(type: UInt8)
}

/// Why a record could not be decoded.
public struct RecordError: Error, CustomStringConvertible {
  public var description: String

  public init(description: String) { self.description = description }
}

extension TraceRecord {
  /// No writer writes a larger record: the largest are CODE records (a
  /// 64 KiB line table and two 4 KiB names), EVENTS records (64 KiB of ops)
  /// and MODULE_LOAD records (an ELF file's program headers).
  public static let maxSize: UInt32 = 16 << 20

  /// The size in bytes of the record that starts at `bytes`, from its header word.
  /// Returns nil when fewer than 8 bytes are available.
  @inline(__always)
  public static func headerSize(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
    bytes.count >= 8 ? bytes.loadUnaligned(as: UInt32.self) : nil
  }

  /// Decodes one whole record (`bytes.count` == its size).
  /// - Throws: `RecordError` when the record is internally inconsistent.
  public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> TraceRecord {
    let header = bytes.loadUnaligned(as: ms_record_header_t.self)
    guard header.magic == UInt8(MS_RECORD_MAGIC), header.state == UInt8(MS_STATE_COMMITTED.rawValue) else {
      throw RecordError(description: "record header is damaged")
    }
    func need<T>(_ type: T.Type) throws -> T {
      guard bytes.count >= MemoryLayout<T>.size else {
        throw RecordError(description: "record of type \(header.type) is shorter than its fields")
      }
      return bytes.loadUnaligned(as: T.self)
    }
    func string(at offset: Int, count: Int) throws -> String {
      guard offset >= 0, count >= 0, offset + count <= bytes.count else {
        throw RecordError(description: "string runs past the end of its record")
      }
      return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]), as: UTF8.self)
    }
    switch UInt32(header.type) {
    case MS_REC_ALLOC.rawValue:
      let r = try need(ms_alloc_record_t.self)
      return .alloc(
        timeNs: r.time_ns, ptr: r.ptr, size: r.size, stack: StackID(r.stack), tid: r.tid,
        function: AllocFunction(rawValue: header.aux))
    case MS_REC_FREE.rawValue:
      let r = try need(ms_free_record_t.self)
      return .free(timeNs: r.time_ns, ptr: r.ptr)
    case MS_REC_REALLOC.rawValue:
      let r = try need(ms_realloc_record_t.self)
      return .realloc(
        timeNs: r.time_ns, oldPtr: r.old_ptr, size: r.size, stack: StackID(r.stack), tid: r.tid,
        function: AllocFunction(rawValue: header.aux))
    case MS_REC_REALLOC_DONE.rawValue:
      let r = try need(ms_realloc_done_record_t.self)
      return .reallocDone(timeNs: r.time_ns, oldPtr: r.old_ptr, newPtr: r.new_ptr, tid: r.tid)
    case MS_REC_EVENTS.rawValue:
      let r = try need(ms_events_record_t.self)
      let offset = MemoryLayout<ms_events_record_t>.size
      guard offset + Int(r.len) <= bytes.count else {
        throw RecordError(description: "events record is shorter than its ops")
      }
      return .events(Array(bytes[offset..<offset + Int(r.len)]))
    case MS_REC_STACK.rawValue:
      let r = try need(ms_stack_record_t.self)
      let offset = MemoryLayout<ms_stack_record_t>.size
      let pyOffset = offset + Int(r.depth) * 8
      let pySize = MemoryLayout<ms_py_frame_t>.size
      guard pyOffset + Int(r.py_depth) * pySize <= bytes.count else {
        throw RecordError(description: "stack \(r.id) claims more frames than its record holds")
      }
      var frames = [UInt64](repeating: 0, count: Int(r.depth))
      for i in 0..<Int(r.depth) { frames[i] = bytes.loadUnaligned(fromByteOffset: offset + i * 8, as: UInt64.self) }
      let python = (0..<Int(r.py_depth)).map { i -> PythonFrameRef in
        let f = bytes.loadUnaligned(fromByteOffset: pyOffset + i * pySize, as: ms_py_frame_t.self)
        return PythonFrameRef(
          code: f.code & MS_PY_CODE_MASK, instruction: f.instr, isEntry: f.code & MS_PY_FRAME_ENTRY != 0,
          isIncomplete: f.code & MS_PY_FRAME_INCOMPLETE != 0)
      }
      return .stack(id: StackID(r.id), frames: frames, python: python)
    case MS_REC_CODE.rawValue:
      let r = try need(ms_code_record_t.self)
      let offset = MemoryLayout<ms_code_record_t>.size
      let lengths = [Int(r.name_len), Int(r.file_len), Int(r.linetable_len)]
      guard offset + lengths.reduce(0, +) <= bytes.count else {
        throw RecordError(description: "code record \(r.id) is shorter than its contents")
      }
      let name = Self.pythonString(bytes, at: offset, count: lengths[0], kind: r.name_kind)
      let file = Self.pythonString(bytes, at: offset + lengths[0], count: lengths[1], kind: r.file_kind)
      let tableStart = offset + lengths[0] + lengths[1]
      return .code(
        PythonCode(
          id: r.id, address: r.address, firstLine: r.first_line, name: name, file: file,
          lineTable: Array(bytes[tableStart..<tableStart + lengths[2]]), truncated: r.flags & UInt8(MS_CODE_TRUNCATED) != 0))
    case MS_REC_SITE.rawValue:
      let r = try need(ms_site_record_t.self)
      return .site(
        SiteState(
          timeNs: r.time_ns, stack: StackID(r.stack), liveBytes: r.live_bytes, liveCount: r.live_count,
          allocations: r.allocations, bytesAllocated: r.bytes_allocated))
    case MS_REC_SAMPLING.rawValue:
      let r = try need(ms_sampling_record_t.self)
      return .sampling(rateBytes: r.rate_bytes)
    case MS_REC_THREAD.rawValue:
      let r = try need(ms_thread_record_t.self)
      let nameOffset = MemoryLayout<ms_thread_record_t>.offset(of: \ms_thread_record_t.name)!
      let raw = UnsafeRawBufferPointer(rebasing: bytes[nameOffset..<nameOffset + 16])
      let name = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      return .thread(timeNs: r.time_ns, tid: r.tid, name: name)
    case MS_REC_RSS.rawValue:
      let r = try need(ms_rss_record_t.self)
      return .rss(timeNs: r.time_ns, bytes: r.rss_bytes)
    case MS_REC_MODULE_LOAD.rawValue:
      let r = try need(ms_module_record_t.self)
      var offset = MemoryLayout<ms_module_record_t>.size
      let segmentSize = MemoryLayout<ms_segment_t>.size
      guard Int(r.segment_count) <= bytes.count / segmentSize,
        offset + Int(r.segment_count) * segmentSize + Int(r.build_id_len) + Int(r.path_len) <= bytes.count
      else { throw RecordError(description: "module record is shorter than its contents") }
      var segments: [Segment] = []
      for _ in 0..<Int(r.segment_count) {
        let s = bytes.loadUnaligned(fromByteOffset: offset, as: ms_segment_t.self)
        segments.append(Segment(vaddr: s.vaddr, memsz: s.memsz, flags: s.flags))
        offset += segmentSize
      }
      let buildID = Array(bytes[offset..<offset + Int(r.build_id_len)])
      offset += Int(r.build_id_len)
      let path = try string(at: offset, count: Int(r.path_len))
      return .moduleLoad(Module(timeNs: r.time_ns, base: r.base, segments: segments, buildID: buildID, path: path))
    case MS_REC_MODULE_UNLOAD.rawValue:
      let r = try need(ms_module_unload_record_t.self)
      return .moduleUnload(timeNs: r.time_ns, base: r.base)
    case MS_REC_PROCESS.rawValue:
      let r = try need(ms_process_record_t.self)
      let offset = MemoryLayout<ms_process_record_t>.size
      let exe = try string(at: offset, count: Int(r.exe_len))
      let argv = try string(at: offset + Int(r.exe_len), count: Int(r.argv_len))
      var args = argv.split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
      if args.last == "" { args.removeLast() }
      return .process(
        ProcessInfo(
          pid: r.pid, ppid: r.ppid, startWallNs: r.start_wall_ns, startMonoNs: r.start_mono_ns,
          pageSize: r.page_size, maxDepth: r.max_depth, executable: exe, arguments: args))
    case MS_REC_SNAPSHOT.rawValue:
      let r = try need(ms_snapshot_record_t.self)
      let label = try string(at: MemoryLayout<ms_snapshot_record_t>.size, count: Int(r.label_len))
      return .snapshot(timeNs: r.time_ns, label: label, source: SnapshotSource(rawValue: r.source) ?? .external)
    case MS_REC_EXIT.rawValue:
      let r = try need(ms_exit_record_t.self)
      return .exit(timeNs: r.time_ns, kind: ExitKind(rawValue: r.kind) ?? .unknown, status: r.status)
    case MS_REC_END.rawValue:
      let r = try need(ms_end_record_t.self)
      return .end(
        EndInfo(
          timeNs: r.time_ns, kind: ExitKind(rawValue: r.kind) ?? .unknown, status: r.status,
          backpressureNs: r.backpressure_ns, backpressureWaits: r.backpressure_waits, lostBytes: r.lost_bytes,
          stackTableFull: r.stack_table_full))
    default:
      return .unknown(type: header.type)
    }
  }

  /// The record's time, for the records that carry one.
  public var timeNs: UInt64? {
    switch self {
    case .alloc(let t, _, _, _, _, _), .free(let t, _), .realloc(let t, _, _, _, _, _), .reallocDone(let t, _, _, _),
      .rss(let t, _), .exit(let t, _, _), .snapshot(let t, _, _), .thread(let t, _, _), .moduleUnload(let t, _):
      return t
    case .site(let s): return s.timeNs
    case .moduleLoad(let m): return m.timeNs
    case .end(let e): return e.timeNs
    case .process, .stack, .code, .sampling, .events, .unknown: return nil
    }
  }

  /// A CPython string as stored: `kind` bytes per character (1: Latin-1,
  /// 2: UCS-2, 4: UCS-4), little-endian. Unknown kinds read as Latin-1.
  public static func pythonString(_ bytes: UnsafeRawBufferPointer, at offset: Int, count: Int, kind: UInt8) -> String {
    let raw = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
    let width = kind == 2 || kind == 4 ? Int(kind) : 1
    var scalars = String.UnicodeScalarView()
    for i in stride(from: 0, to: raw.count - width + 1, by: width) {
      let value: UInt32
      switch width {
      case 2: value = UInt32(raw.loadUnaligned(fromByteOffset: i, as: UInt16.self))
      case 4: value = raw.loadUnaligned(fromByteOffset: i, as: UInt32.self)
      default: value = UInt32(raw[i])
      }
      scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
    }
    return String(scalars)
  }

  /// Encodes a SITE record (written by the collector in live mode).
  public static func encodeSite(_ site: SiteState) -> [UInt8] {
    var r = ms_site_record_t()
    r.h = committedHeader(MemoryLayout<ms_site_record_t>.size, MS_REC_SITE.rawValue)
    r.time_ns = site.timeNs
    r.stack = site.stack.rawValue
    r.live_bytes = site.liveBytes
    r.live_count = site.liveCount
    r.allocations = site.allocations
    r.bytes_allocated = site.bytesAllocated
    return withUnsafeBytes(of: &r) { Array($0) }
  }

  /// Encodes a SNAPSHOT record the collector places itself (live mode).
  public static func encodeCollectorSnapshot(timeNs: UInt64, label: String) -> [UInt8] {
    let text = Array(label.utf8.prefix(Int(MS_SNAPSHOT_LABEL_MAX)))
    let size = (MemoryLayout<ms_snapshot_record_t>.size + text.count + 7) & ~7
    var r = ms_snapshot_record_t()
    r.h = committedHeader(size, MS_REC_SNAPSHOT.rawValue)
    r.time_ns = timeNs
    r.label_len = UInt32(text.count)
    r.source = MS_SNAPSHOT_COLLECTOR.rawValue
    var bytes = withUnsafeBytes(of: &r) { Array($0) } + text
    bytes += [UInt8](repeating: 0, count: size - bytes.count)
    return bytes
  }

  private static func committedHeader(_ size: Int, _ type: UInt32) -> ms_record_header_t {
    ms_record_header_t(
      size: UInt32(size), type: UInt8(type), state: UInt8(MS_STATE_COMMITTED.rawValue), aux: 0,
      magic: UInt8(MS_RECORD_MAGIC))
  }

  /// Encodes an EVENTS record around `ops` (see `EventOpEncoder`).
  public static func encodeEvents(_ ops: [UInt8]) -> [UInt8] {
    let size = MemoryLayout<ms_events_record_t>.size + ops.count
    var r = ms_events_record_t()
    r.h = committedHeader((size + 7) & ~7, MS_REC_EVENTS.rawValue)
    r.len = UInt32(ops.count)
    var bytes = withUnsafeBytes(of: &r) { Array($0) }
    bytes.reserveCapacity((size + 7) & ~7)
    bytes += ops
    bytes += repeatElement(0, count: (8 - size % 8) % 8)
    return bytes
  }

  /// Encodes an END record (written by the collector).
  public static func encodeEnd(_ end: EndInfo) -> [UInt8] {
    var r = ms_end_record_t()
    r.h = committedHeader(MemoryLayout<ms_end_record_t>.size, MS_REC_END.rawValue)
    r.time_ns = end.timeNs
    r.kind = end.kind.rawValue
    r.status = end.status
    r.backpressure_ns = end.backpressureNs
    r.backpressure_waits = end.backpressureWaits
    r.lost_bytes = end.lostBytes
    r.stack_table_full = end.stackTableFull
    return withUnsafeBytes(of: &r) { Array($0) }
  }
}
