import CZstd
import CMemsiftFormat

#if canImport(Glibc)
  import Glibc
#endif

/// Reads a trace file in one streaming pass, raw or zstd-compressed.
///
/// A truncated or damaged file is read up to its last whole record; what was
/// wrong goes into `warnings`, never a crash.
public final class TraceReader {
  public let path: String
  public let header: TraceHeader
  /// Problems met while reading, one sentence each.
  public private(set) var warnings: [String] = []
  /// Whether the file ended inside a record (or inside compressed data).
  public private(set) var isTruncated = false
  /// Whether reading stopped at damaged data before the end of the file.
  public private(set) var isCorrupt = false

  /// Called after each chunk with (bytes read, file size): for progress bars.
  public var progress: ((UInt64, UInt64) -> Void)?

  private let fd: Int32
  private static let chunkSize = 1 << 20

  /// Opens `path` and validates its header.
  /// - Throws: `TraceError` when the file cannot be opened or is not a trace.
  public init(path: String) throws {
    self.path = path
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw TraceError.cannotOpen(path, String(cString: strerror(errno))) }
    self.fd = fd
    var headerBytes = [UInt8](repeating: 0, count: TraceHeader.size)
    let got = headerBytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    do {
      guard got >= 0 else { throw TraceError.io("cannot read \(path): \(String(cString: strerror(errno)))") }
      header = try headerBytes.withUnsafeBytes {
        try TraceHeader(bytes: UnsafeRawBufferPointer(rebasing: $0[0..<got]))
      }
    } catch {
      close(fd)
      throw error
    }
  }

  deinit { close(fd) }

  /// Calls `body` with every whole record, in file order.
  /// - Throws: what `body` throws, or `TraceError.io` when the file cannot be read.
  public func forEachRecord(_ body: (TraceRecord) throws -> Void) throws {
    var parser = RecordParser()
    var offset = off_t(header.headerSize)
    var input = [UInt8](repeating: 0, count: Self.chunkSize)
    var decompressor = header.isCompressed ? ZstdDecompressor() : nil
    var streamComplete = true
    var st = stat()
    let fileSize = fstat(fd, &st) == 0 ? UInt64(st.st_size) : 0
    while true {
      let n = input.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
      if n < 0 {
        if errno == EINTR { continue }
        throw TraceError.io("cannot read \(path): \(String(cString: strerror(errno)))")
      }
      if n == 0 { break }
      offset += off_t(n)
      progress?(UInt64(offset), fileSize)
      let chunk = input.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[0..<n]) }
      var stop = false
      if var z = decompressor {
        let result = try z.decompress(chunk) { out in
          stop = try !parser.feed(out, body)
        }
        decompressor = z
        switch result {
        case .ok(let complete): streamComplete = complete
        case .failed(let reason):
          warn(corrupt: "compressed data is damaged (\(reason)); read up to the last whole record before it")
          return
        }
      } else {
        stop = try !parser.feed(chunk, body)
      }
      if stop { break }
    }
    if let problem = parser.problem {
      warn(corrupt: problem)
    } else if parser.pendingBytes > 0 || !streamComplete {
      isTruncated = true
      warnings.append("trace ends in the middle of a record (truncated); read up to the last whole record")
    }
  }

  private func warn(corrupt message: String) {
    isCorrupt = true
    warnings.append(message)
  }
}

/// Splits a byte stream into records, carrying partial records across chunks.
struct RecordParser {
  private var carry: [UInt8] = []
  private(set) var problem: String?
  private var consumed: UInt64 = 0

  var pendingBytes: Int { carry.count }

  /// Feeds bytes; returns false once damaged data was met (nothing more is read).
  mutating func feed(_ bytes: UnsafeRawBufferPointer, _ body: (TraceRecord) throws -> Void) throws -> Bool {
    if problem != nil { return false }
    if carry.isEmpty {
      let used = try parse(bytes, body)
      if problem != nil { return false }
      carry.append(contentsOf: bytes[used...])
      return true
    }
    carry.append(contentsOf: bytes)
    let buffer = carry
    let used = try buffer.withUnsafeBytes { try parse($0, body) }
    carry.removeFirst(used)
    return problem == nil
  }

  private mutating func parse(_ bytes: UnsafeRawBufferPointer, _ body: (TraceRecord) throws -> Void) throws -> Int {
    var at = 0
    while let size = TraceRecord.headerSize(UnsafeRawBufferPointer(rebasing: bytes[at...])) {
      guard size >= 8, size % 8 == 0 else {
        problem = "damaged record at byte \(consumed + UInt64(at)) of the record stream (size \(size)); read up to there"
        return at
      }
      // A damaged size would otherwise have the rest of the stream (GBs,
      // decompressed) carried in memory as one record.
      guard size <= TraceRecord.maxSize else {
        problem = "damaged record at byte \(consumed + UInt64(at)) of the record stream (size \(size), "
          + "more than any writer writes); read up to there"
        return at
      }
      guard at + Int(size) <= bytes.count else { break }
      let record: TraceRecord
      do {
        record = try TraceRecord.decode(UnsafeRawBufferPointer(rebasing: bytes[at..<at + Int(size)]))
      } catch let error as RecordError {
        problem = "damaged record at byte \(consumed + UInt64(at)) of the record stream: \(error.description); read up to there"
        return at
      }
      try body(record)
      at += Int(size)
    }
    consumed += UInt64(at)
    return at
  }
}

/// Streaming zstd decompression of the record stream.
struct ZstdDecompressor {
  enum Result {
    /// `complete`: the stream ended at a frame boundary.
    case ok(complete: Bool)
    case failed(String)
  }

  private final class Context {
    let dctx = ZSTD_createDCtx()
    deinit { ZSTD_freeDCtx(dctx) }
  }
  private let context = Context()
  private var output = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())

  mutating func decompress(_ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws -> Void) rethrows
    -> Result
  {
    var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
    var hint = 0
    let capacity = output.count
    while true {
      var produced = 0
      let ret = output.withUnsafeMutableBytes { out -> Int in
        var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
        let r = ZSTD_decompressStream(context.dctx, &outBuffer, &inBuffer)
        produced = outBuffer.pos
        return r
      }
      if ZSTD_isError(ret) != 0 { return .failed(String(cString: ZSTD_getErrorName(ret))) }
      hint = ret
      if produced > 0 { try output.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
      if inBuffer.pos == inBuffer.size && produced < capacity { break }
    }
    return .ok(complete: hint == 0)
  }
}
