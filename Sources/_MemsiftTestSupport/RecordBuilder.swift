import CMemsiftFormat

/// Builds trace bytes record by record, for tests: the same C structs the shim writes.
public struct RecordBuilder {
  public private(set) var bytes: [UInt8] = []

  public init() {}

  /// Appends a file header (uncompressed unless `flags` says otherwise).
  public mutating func header(pid: Int32 = 42, flags: UInt32 = 0, version: UInt32 = UInt32(MEMSIFT_FORMAT_VERSION)) {
    var h = ms_file_header_t()
    h.magic = MEMSIFT_TRACE_MAGIC
    h.version = version
    h.header_size = UInt32(MemoryLayout<ms_file_header_t>.size)
    h.flags = flags
    h.writer = MS_WRITER_SHIM
    h.pid = pid
    h.ppid = 1
    h.start_mono_ns = 1_000
    h.page_size = 4096
    append(&h)
  }

  public mutating func process(pid: Int32 = 42, executable: String = "/bin/victim", arguments: [String] = ["victim"]) {
    let exe = Array(executable.utf8)
    let argv: [UInt8] = arguments.flatMap { Array($0.utf8) + [UInt8(0)] }
    var r = ms_process_record_t()
    r.pid = pid
    r.ppid = 1
    r.start_mono_ns = 1_000
    r.page_size = 4096
    r.max_depth = 64
    r.exe_len = UInt32(exe.count)
    r.argv_len = UInt32(argv.count)
    appendRecord(&r, type: MS_REC_PROCESS.rawValue, tail: exe + argv)
  }

  public mutating func alloc(
    _ ptr: UInt64, _ size: UInt64, stack: UInt32 = 1, time: UInt64 = 2_000, function: UInt8 = 1, tid: UInt32 = 7
  ) {
    var r = ms_alloc_record_t()
    r.time_ns = time
    r.ptr = ptr
    r.size = size
    r.stack = stack
    r.tid = tid
    appendRecord(&r, type: MS_REC_ALLOC.rawValue, aux: function)
  }

  public mutating func free(_ ptr: UInt64, time: UInt64 = 3_000) {
    var r = ms_free_record_t()
    r.time_ns = time
    r.ptr = ptr
    appendRecord(&r, type: MS_REC_FREE.rawValue)
  }

  /// A realloc's two records back to back.
  public mutating func realloc(_ old: UInt64, _ new: UInt64, _ size: UInt64, stack: UInt32 = 1, time: UInt64 = 4_000) {
    reallocBegin(old, size, stack: stack, time: time)
    reallocDone(old, new, time: time)
  }

  /// The REALLOC record, before the real call.
  public mutating func reallocBegin(_ old: UInt64, _ size: UInt64, stack: UInt32 = 1, time: UInt64 = 4_000, tid: UInt32 = 7) {
    var r = ms_realloc_record_t()
    r.time_ns = time
    r.old_ptr = old
    r.size = size
    r.stack = stack
    r.tid = tid
    appendRecord(&r, type: MS_REC_REALLOC.rawValue, aux: UInt8(MS_FN_REALLOC.rawValue))
  }

  /// The REALLOC_DONE record, after the real call returned `new`.
  public mutating func reallocDone(_ old: UInt64, _ new: UInt64, time: UInt64 = 4_000, tid: UInt32 = 7) {
    var d = ms_realloc_done_record_t()
    d.time_ns = time
    d.old_ptr = old
    d.new_ptr = new
    d.tid = tid
    appendRecord(&d, type: MS_REC_REALLOC_DONE.rawValue)
  }

  /// Whole records as another writer encoded them (an EVENTS record, say).
  public mutating func raw(_ record: [UInt8]) { bytes += record }

  /// A STACK record; `python` are (code id, instruction, is entry), innermost first.
  public mutating func stack(_ id: UInt32, frames: [UInt64], python: [(UInt32, Int32, Bool)] = []) {
    var r = ms_stack_record_t()
    r.id = id
    r.depth = UInt16(frames.count)
    r.py_depth = UInt16(python.count)
    var tail: [UInt8] = frames.flatMap(Self.littleEndian)
    for (code, instr, entry) in python {
      tail += Self.littleEndian(UInt64(code | (entry ? MS_PY_FRAME_ENTRY : 0)) | UInt64(UInt32(bitPattern: instr)) << 32)
    }
    appendRecord(&r, type: MS_REC_STACK.rawValue, tail: tail)
  }

  /// A CODE record with ASCII name and file.
  public mutating func code(_ id: UInt32, name: String, file: String, firstLine: Int32, lineTable: [UInt8]) {
    var r = ms_code_record_t()
    r.id = id
    r.address = 0x7f00_1000 + UInt64(id) * 0x100
    r.first_line = firstLine
    r.name_len = UInt32(name.utf8.count)
    r.file_len = UInt32(file.utf8.count)
    r.linetable_len = UInt32(lineTable.count)
    r.name_kind = 1
    r.file_kind = 1
    appendRecord(&r, type: MS_REC_CODE.rawValue, tail: Array(name.utf8) + Array(file.utf8) + lineTable)
  }

  /// A SAMPLING record: the events that follow are a sample.
  public mutating func sampling(rate: UInt64) {
    var r = ms_sampling_record_t()
    r.rate_bytes = rate
    appendRecord(&r, type: MS_REC_SAMPLING.rawValue)
  }

  static func littleEndian(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> UInt64($0 * 8)) } }

  /// A MODULE_LOAD record; `segments` are (vaddr, memsz) pairs relative to `base`.
  public mutating func moduleLoad(
    base: UInt64, path: String, segments: [(UInt64, UInt64)] = [(0, 0x1000)], buildID: [UInt8] = [0xab, 0xcd],
    time: UInt64 = 1_500
  ) {
    var r = ms_module_record_t()
    r.time_ns = time
    r.base = base
    r.segment_count = UInt32(segments.count)
    r.build_id_len = UInt32(buildID.count)
    let pathBytes = Array(path.utf8)
    r.path_len = UInt32(pathBytes.count)
    var tail: [UInt8] = []
    for (vaddr, memsz) in segments {
      var seg = ms_segment_t()
      seg.vaddr = vaddr
      seg.memsz = memsz
      seg.flags = 5  // PF_R | PF_X
      withUnsafeBytes(of: &seg) { tail.append(contentsOf: $0) }
    }
    appendRecord(&r, type: MS_REC_MODULE_LOAD.rawValue, tail: tail + buildID + pathBytes)
  }

  public mutating func moduleUnload(base: UInt64, time: UInt64 = 5_000) {
    var r = ms_module_unload_record_t()
    r.time_ns = time
    r.base = base
    appendRecord(&r, type: MS_REC_MODULE_UNLOAD.rawValue)
  }

  public mutating func end(kind: UInt32 = MS_EXIT_RETURN.rawValue, status: Int32 = 0) {
    var r = ms_end_record_t()
    r.time_ns = 9_000
    r.kind = kind
    r.status = status
    appendRecord(&r, type: MS_REC_END.rawValue)
  }

  /// A record of a type no reader knows yet, `payload` bytes long.
  public mutating func unknown(type: UInt8, payload: Int) {
    var h = ms_record_header_t()
    appendHeaderAndTail(&h, type: UInt32(type), aux: 0, size: MemoryLayout<ms_record_header_t>.size, tail: [UInt8](repeating: 0xEE, count: payload))
  }

  private mutating func append<T>(_ value: inout T) {
    withUnsafeBytes(of: &value) { bytes.append(contentsOf: $0) }
  }

  private mutating func appendRecord<T>(_ record: inout T, type: UInt32, aux: UInt8 = 0, tail: [UInt8] = []) {
    appendHeaderAndTail(&record, type: type, aux: aux, size: MemoryLayout<T>.size, tail: tail)
  }

  private mutating func appendHeaderAndTail<T>(_ record: inout T, type: UInt32, aux: UInt8, size: Int, tail: [UInt8]) {
    let total = (size + tail.count + 7) & ~7
    withUnsafeMutableBytes(of: &record) { raw in
      var h = ms_record_header_t()
      h.size = UInt32(total)
      h.type = UInt8(type)
      h.state = UInt8(MS_STATE_COMMITTED.rawValue)
      h.aux = aux
      h.magic = UInt8(MS_RECORD_MAGIC)
      raw.storeBytes(of: h, as: ms_record_header_t.self)
    }
    withUnsafeBytes(of: &record) { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: tail)
    bytes.append(contentsOf: [UInt8](repeating: 0, count: total - size - tail.count))
  }
}
