import CMemsiftFormat

/// One op of an EVENTS record (version 4): the collector's compact form of
/// the heap events, which names the allocation *info* (requested size,
/// stack, function) of the block concerned instead of its address. The
/// layout and the meaning of each op are in `trace_format.h`.
public enum EventOp: Equatable, Sendable {
  /// A call allocated a block of this info (the call counts).
  case alloc(UInt32)
  /// free() released a block of this info; `temporary`: it was the last block allocated.
  case free(UInt32, temporary: Bool)
  /// The event clock moved this many ns forward.
  case time(UInt64)
  /// Defines the next info number.
  case info(size: UInt64, stack: StackID, function: UInt8)
  /// A realloc's new block (its call was counted by `.call`).
  case allocNoCall(UInt32)
  /// A realloc began: its old block is no longer live.
  case detach(UInt32)
  /// A realloc failed or never returned: its old block is live again.
  case restore(UInt32)
  /// A realloc released its detached old block.
  case release(UInt32, temporary: Bool)
  /// An address came back live without a free seen: its old block is dropped.
  case stale(UInt32)
  /// free() of an address never seen allocated.
  case freeUnmatched
  /// A realloc's old address was never seen allocated.
  case releaseUnmatched
  /// A realloc call, by `ms_alloc_function`.
  case call(UInt8)
}

/// Reads the ops of one EVENTS record, in order, from memory the caller
/// keeps alive (`withUnsafeBytes` of the record's ops).
///
/// Inlinable: the report's replay runs it tens of millions of times, and a
/// call across the module boundary per op cost more than the op.
public struct EventOpDecoder {
  @usableFromInline let bytes: UnsafeRawBufferPointer
  @usableFromInline var at: Int

  /// Reads `bytes` from byte `offset`.
  @inlinable
  public init(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0) {
    self.bytes = bytes
    at = offset
  }

  /// Where the next op starts.
  @inlinable
  public var offset: Int { at }

  /// Every op of `ops`.
  /// - Throws: `RecordError` for ops that do not decode.
  public static func decodeAll(_ ops: [UInt8]) throws -> [EventOp] {
    try ops.withUnsafeBytes { raw in
      var decoder = EventOpDecoder(raw)
      var out: [EventOp] = []
      while let op = try decoder.next() { out.append(op) }
      return out
    }
  }

  /// The next op, nil at the end.
  /// - Throws: `RecordError` for a truncated op or an unknown extended op.
  @inlinable @inline(__always)
  public mutating func next() throws -> EventOp? {
    guard at < bytes.count else { return nil }
    let v = try varint()
    let operand = v >> 2
    switch UInt32(v & 3) {
    case MS_OP_ALLOC.rawValue: return .alloc(try index(operand))
    case MS_OP_FREE.rawValue: return .free(try index(operand), temporary: false)
    case MS_OP_FREE_TEMP.rawValue: return .free(try index(operand), temporary: true)
    default: break
    }
    guard operand <= 64 else {
      throw RecordError(description: "events record has an unknown op \(operand) at byte \(at)")
    }
    switch UInt32(operand) {
    case MS_EXT_TIME.rawValue: return .time(try varint())
    case MS_EXT_INFO.rawValue:
      let size = try varint()
      let stack = try index(try varint())
      return .info(size: size, stack: StackID(stack), function: UInt8(truncatingIfNeeded: try varint()))
    case MS_EXT_ALLOC_NOCALL.rawValue: return .allocNoCall(try index(try varint()))
    case MS_EXT_DETACH.rawValue: return .detach(try index(try varint()))
    case MS_EXT_RESTORE.rawValue: return .restore(try index(try varint()))
    case MS_EXT_RELEASE.rawValue: return .release(try index(try varint()), temporary: false)
    case MS_EXT_RELEASE_TEMP.rawValue: return .release(try index(try varint()), temporary: true)
    case MS_EXT_STALE.rawValue: return .stale(try index(try varint()))
    case MS_EXT_FREE_UNMATCHED.rawValue: return .freeUnmatched
    case MS_EXT_RELEASE_UNMATCHED.rawValue: return .releaseUnmatched
    case MS_EXT_CALL.rawValue: return .call(UInt8(truncatingIfNeeded: try varint()))
    default: break
    }
    throw RecordError(description: "events record has an unknown op \(operand) at byte \(at)")
  }

  @inlinable @inline(__always)
  func index(_ v: UInt64) throws -> UInt32 {
    guard v <= UInt64(UInt32.max) else { throw RecordError(description: "events record names info \(v)") }
    return UInt32(v)
  }

  @inlinable @inline(__always)
  mutating func varint() throws -> UInt64 {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while at < bytes.count {
      let byte = bytes[at]
      at += 1
      guard shift < 64 else { break }
      value |= UInt64(byte & 0x7f) << shift
      if byte & 0x80 == 0 { return value }
      shift += 7
    }
    throw RecordError(description: "events record ends inside an op")
  }
}

/// Builds the ops of EVENTS records.
public struct EventOpEncoder {
  public private(set) var bytes: [UInt8] = []

  public init() { bytes.reserveCapacity(Self.recordBytes + 64) }

  /// Ops per record: big enough that the record header is noise, small
  /// enough that a reader holds one record at a time.
  public static let recordBytes = 1 << 16

  public var isEmpty: Bool { bytes.isEmpty }

  public mutating func append(_ op: EventOp) {
    switch op {
    case .alloc(let i): varint(UInt64(i) << 2 | UInt64(MS_OP_ALLOC.rawValue))
    case .free(let i, let temporary):
      varint(UInt64(i) << 2 | UInt64(temporary ? MS_OP_FREE_TEMP.rawValue : MS_OP_FREE.rawValue))
    case .time(let d): ext(MS_EXT_TIME, d)
    case .info(let size, let stack, let function):
      ext(MS_EXT_INFO, size)
      varint(UInt64(stack.rawValue))
      varint(UInt64(function))
    case .allocNoCall(let i): ext(MS_EXT_ALLOC_NOCALL, UInt64(i))
    case .detach(let i): ext(MS_EXT_DETACH, UInt64(i))
    case .restore(let i): ext(MS_EXT_RESTORE, UInt64(i))
    case .release(let i, let temporary): ext(temporary ? MS_EXT_RELEASE_TEMP : MS_EXT_RELEASE, UInt64(i))
    case .stale(let i): ext(MS_EXT_STALE, UInt64(i))
    case .freeUnmatched: varint(UInt64(MS_EXT_FREE_UNMATCHED.rawValue) << 2 | UInt64(MS_OP_EXT.rawValue))
    case .releaseUnmatched: varint(UInt64(MS_EXT_RELEASE_UNMATCHED.rawValue) << 2 | UInt64(MS_OP_EXT.rawValue))
    case .call(let function): ext(MS_EXT_CALL, UInt64(function))
    }
  }

  /// The EVENTS record of the ops so far; empties the encoder.
  public mutating func takeRecord() -> [UInt8] {
    let record = TraceRecord.encodeEvents(bytes)
    bytes.removeAll(keepingCapacity: true)
    return record
  }

  private mutating func ext(_ op: ms_event_ext_op, _ operand: UInt64) {
    varint(UInt64(op.rawValue) << 2 | UInt64(MS_OP_EXT.rawValue))
    varint(operand)
  }

  @inline(__always)
  private mutating func varint(_ value: UInt64) {
    var v = value
    while v >= 0x80 {
      bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
      v >>= 7
    }
    bytes.append(UInt8(v))
  }
}
