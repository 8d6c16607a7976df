import CMemsiftFormat
import CZstd
import MemsiftFormat

#if canImport(Glibc)
  import Glibc
#endif

/// Writes one compressed trace file: the header, then the records as one
/// zstd stream that is flushed regularly, so a collector that dies leaves a
/// file readable up to its last flush.
final class TraceWriter {
  let path: String
  private let fd: Int32
  private let cctx: OpaquePointer
  private var output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
  private(set) var bytesWritten: UInt64 = 0

  /// Takes ownership of `fd` (an empty file opened for writing) and writes `header`.
  /// - Throws: `CollectorError.io` when the header cannot be written.
  init(fd: Int32, path: String, header: TraceHeader) throws {
    self.fd = fd
    self.path = path
    guard let cctx = ZSTD_createCCtx() else {
      close(fd)
      throw CollectorError.io("cannot create a zstd context")
    }
    self.cctx = cctx
    // Level 6: the EVENTS ops of a repetitive program compress a third
    // better than at 3 (CPython service: 1.09 MB against 1.51 MB), for
    // 0.1-0.2 s more of the collector's CPU on the second core.
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 6)
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
    try compress(bytes, ZSTD_e_continue)
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
