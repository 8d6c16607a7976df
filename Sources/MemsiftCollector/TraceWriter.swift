import CMemsiftFormat
import CZstd
import MemsiftFormat

#if canImport(Glibc)
  import Glibc
#endif

/// Writes one compressed trace file: the header, then the records as zstd
/// frames that are flushed regularly, so a collector that dies leaves a
/// file readable up to its last flush.
///
/// The records start at level 6: the EVENTS ops of a repetitive program
/// compress a third better than at 3 (CPython service: 1.09 MB against
/// 1.51 MB) for little CPU. Ops that do not compress (random sizes: nearly
/// every call a new info) gain nothing from it (44.3 MB against 44.6 MB)
/// and cost the collector 2.5 times the CPU, which the target then waits
/// for on a full ring. So once `probeBytes` went in, if the output is over
/// `poorRatio` of it, the frame is ended and the rest goes into a frame at
/// level 3 (a reader decodes concatenated frames as one stream).
final class TraceWriter {
  let path: String
  private let fd: Int32
  private let cctx: OpaquePointer
  private var output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
  private(set) var bytesWritten: UInt64 = 0
  private var bytesIn: UInt64 = 0
  private let probeBytes: UInt64
  private let poorRatio: Double
  /// The level of the frame being written.
  private(set) var level: Int32 = 6
  /// Whether the first `probeBytes` were measured.
  private var probed = false

  /// Takes ownership of `fd` (an empty file opened for writing) and writes `header`.
  /// - Throws: `CollectorError.io` when the header cannot be written.
  init(fd: Int32, path: String, header: TraceHeader, probeBytes: UInt64 = 16 << 20, poorRatio: Double = 0.35) throws {
    self.fd = fd
    self.path = path
    self.probeBytes = probeBytes
    self.poorRatio = poorRatio
    guard let cctx = ZSTD_createCCtx() else {
      close(fd)
      throw CollectorError.io("cannot create a zstd context")
    }
    self.cctx = cctx
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
    var header = header
    header.flags |= MS_FILE_ZSTD
    try header.bytes.withUnsafeBytes { try writeAll($0) }
  }

  deinit {
    ZSTD_freeCCtx(cctx)
    close(fd)
  }

  /// Compresses `bytes` into the stream.
  func append(_ bytes: UnsafeRawBufferPointer) throws {
    let headerBytes = UInt64(TraceHeader.size)
    try compress(bytes, ZSTD_e_continue)
    bytesIn += UInt64(bytes.count)
    if !probed && bytesIn >= probeBytes {
      probed = true
      try compress(UnsafeRawBufferPointer(start: nil, count: 0), ZSTD_e_flush)
      if Double(bytesWritten - headerBytes) > poorRatio * Double(bytesIn) {
        try compress(UnsafeRawBufferPointer(start: nil, count: 0), ZSTD_e_end)
        ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only)
        level = 3
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
      }
    }
  }

  /// Makes everything appended so far decodable from the file.
  func flush() throws {
    try compress(UnsafeRawBufferPointer(start: nil, count: 0), ZSTD_e_flush)
  }

  /// Appends the last records and closes the zstd frame.
  func finish(with last: [UInt8]) throws {
    try last.withUnsafeBytes { try compress($0, ZSTD_e_end) }
  }

  private func compress(_ bytes: UnsafeRawBufferPointer, _ mode: ZSTD_EndDirective) throws {
    var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
    let capacity = output.count
    while true {
      var produced = 0
      let remaining = output.withUnsafeMutableBytes { out -> Int in
        var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
        let r = ZSTD_compressStream2(cctx, &outBuffer, &input, mode)
        produced = outBuffer.pos
        return r
      }
      if ZSTD_isError(remaining) != 0 {
        throw CollectorError.io("zstd: \(String(cString: ZSTD_getErrorName(remaining)))")
      }
      if produced > 0 { try output.withUnsafeBytes { try writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
      let done = mode == ZSTD_e_continue ? input.pos == input.size : remaining == 0
      if done { return }
    }
  }

  private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
    var offset = 0
    while offset < bytes.count {
      let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw CollectorError.io("cannot write \(path): \(String(cString: strerror(errno)))") }
      offset += n
      bytesWritten += UInt64(n)
    }
  }
}

/// What went wrong while collecting.
public enum CollectorError: Error, CustomStringConvertible {
  case io(String)
  case launch(String, exitCode: Int32)
  case setup(String)

  public var description: String {
    switch self {
    case .io(let s), .setup(let s): return s
    case .launch(let s, _): return s
    }
  }
}
