import CMemsiftFormat

/// The fixed header at the start of every trace file.
///
/// The corresponding C type is `ms_file_header_t` in `cshim/include/memsift/trace_format.h`.
public struct TraceHeader: Sendable, Equatable {
  public var version: UInt32
  public var headerSize: UInt32
  public var flags: UInt32
  public var writer: UInt32
  public var pid: Int32
  public var ppid: Int32
  public var startWallNs: UInt64
  public var startMonoNs: UInt64
  public var pageSize: UInt32

  /// Whether the records after the header form one zstd stream.
  public var isCompressed: Bool { flags & MS_FILE_ZSTD != 0 }

  public static let size = MemoryLayout<ms_file_header_t>.size

  public init(
    flags: UInt32, writer: UInt32, pid: Int32, ppid: Int32, startWallNs: UInt64,
    startMonoNs: UInt64, pageSize: UInt32
  ) {
    self.version = UInt32(MEMSIFT_FORMAT_VERSION)
    self.headerSize = UInt32(Self.size)
    self.flags = flags
    self.writer = writer
    self.pid = pid
    self.ppid = ppid
    self.startWallNs = startWallNs
    self.startMonoNs = startMonoNs
    self.pageSize = pageSize
  }

  /// Decodes and validates a header.
  /// - Throws: `TraceError` when the bytes are not a memsift trace this reader understands.
  public init(bytes: UnsafeRawBufferPointer) throws {
    if bytes.count >= 8 && bytes.loadUnaligned(as: UInt64.self) != MEMSIFT_TRACE_MAGIC {
      throw TraceError.notATrace("not a memsift trace (bad magic)")
    }
    guard bytes.count >= Self.size else { throw TraceError.notATrace("file is shorter than a trace header") }
    let raw = bytes.loadUnaligned(as: ms_file_header_t.self)
    guard raw.version >= 1, raw.version <= UInt32(MEMSIFT_FORMAT_VERSION) else {
      throw TraceError.unsupportedVersion(raw.version)
    }
    guard raw.header_size >= UInt32(Self.size), raw.header_size <= 1 << 20 else {
      throw TraceError.notATrace("implausible header size \(raw.header_size)")
    }
    version = raw.version
    headerSize = raw.header_size
    flags = raw.flags
    writer = raw.writer
    pid = raw.pid
    ppid = raw.ppid
    startWallNs = raw.start_wall_ns
    startMonoNs = raw.start_mono_ns
    pageSize = raw.page_size
  }

  /// The header as it is written to disk.
  public var bytes: [UInt8] {
    var raw = ms_file_header_t()
    raw.magic = MEMSIFT_TRACE_MAGIC
    raw.version = version
    raw.header_size = UInt32(Self.size)
    raw.flags = flags
    raw.writer = writer
    raw.pid = pid
    raw.ppid = ppid
    raw.start_wall_ns = startWallNs
    raw.start_mono_ns = startMonoNs
    raw.page_size = pageSize
    return withUnsafeBytes(of: &raw) { Array($0) }
  }
}

/// Why a trace could not be read.
public enum TraceError: Error, CustomStringConvertible, Equatable {
  case cannotOpen(String, String)
  case notATrace(String)
  case unsupportedVersion(UInt32)
  case io(String)

  public var description: String {
    switch self {
    case .cannotOpen(let path, let reason): return "cannot open \(path): \(reason)"
    case .notATrace(let why): return why
    case .unsupportedVersion(let v):
      return "trace format version \(v) is newer than this memsift reads (\(MEMSIFT_FORMAT_VERSION)); upgrade memsift"
    case .io(let why): return why
    }
  }
}
