/// The protobuf wire format, as much of it as `profile.proto` needs:
/// varints (wire type 0) and length-delimited fields (wire type 2: strings,
/// nested messages, packed repeated varints). Fields are written in the
/// order they are added; zero scalars are left out, as proto3 does.
public struct ProtoWriter {
  public private(set) var bytes: [UInt8] = []

  public init() {}

  /// A base-128 varint, low group first, high bit set on all but the last byte.
  mutating func varint(_ value: UInt64) {
    var v = value
    while v >= 0x80 {
      bytes.append(UInt8(v & 0x7f) | 0x80)
      v >>= 7
    }
    bytes.append(UInt8(v))
  }

  private mutating func key(_ field: Int, wireType: UInt64) {
    varint(UInt64(field) << 3 | wireType)
  }

  /// A uint64 field (int64 values are passed as their two's complement bit pattern).
  public mutating func uint64(_ field: Int, _ value: UInt64) {
    guard value != 0 else { return }
    key(field, wireType: 0)
    varint(value)
  }

  public mutating func int64(_ field: Int, _ value: Int64) {
    uint64(field, UInt64(bitPattern: value))
  }

  public mutating func bool(_ field: Int, _ value: Bool) {
    uint64(field, value ? 1 : 0)
  }

  /// A length-delimited field holding `payload`; written even when empty
  /// (an empty string in a repeated field, such as string_table[0], counts).
  public mutating func bytes(_ field: Int, _ payload: [UInt8]) {
    key(field, wireType: 2)
    varint(UInt64(payload.count))
    bytes.append(contentsOf: payload)
  }

  public mutating func string(_ field: Int, _ value: String) {
    bytes(field, Array(value.utf8))
  }

  /// A nested message, built by `build` in a writer of its own.
  public mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
    var inner = ProtoWriter()
    build(&inner)
    bytes(field, inner.bytes)
  }

  /// A packed repeated varint field (proto3's default for repeated scalars).
  public mutating func packed(_ field: Int, _ values: [UInt64]) {
    guard !values.isEmpty else { return }
    var inner = ProtoWriter()
    for v in values { inner.varint(v) }
    bytes(field, inner.bytes)
  }
}
