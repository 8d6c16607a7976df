import CZlib

/// gzip through zlib's deflate (RFC 1952 wrapper), as pprof expects its files.
public enum Gzip {
  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  public static func compress(_ input: [UInt8], level: Int32 = 6) throws -> [UInt8] {
    var stream = z_stream()
    // windowBits 15 + 16: the largest window, with a gzip header and trailer instead of zlib's.
    var status = deflateInit2_(
      &stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
    guard status == Z_OK else { throw Failure(description: "zlib: deflateInit2 failed (\(status))") }
    defer { deflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 32)
    var source = input
    status = source.withUnsafeMutableBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        stream.next_in = src.baseAddress
        stream.avail_in = uInt(src.count)
        stream.next_out = dst.baseAddress
        stream.avail_out = uInt(dst.count)
        return deflate(&stream, Z_FINISH)
      }
    }
    guard status == Z_STREAM_END else { throw Failure(description: "zlib: deflate failed (\(status))") }
    return Array(output.prefix(Int(stream.total_out)))
  }
}
