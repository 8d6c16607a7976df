/// A CPython 3.11+ code object's location table (co_linetable), decoded.
///
/// The format (PEP 626/657, the same in 3.11, 3.12 and 3.13) is described in
/// docs/python-frames.md §1.3 and Appendix B. Each entry covers 1–8 code
/// units (2 bytes each) and starts with a byte `1 cccc lll`: bits 3–6 are the
/// form and bits 0–2 the length − 1. Forms 0–9 (short) keep the line and
/// carry 1 column byte; 10–12 (one-line) add `form − 10` and carry 2 column
/// bytes; 13 (no columns) adds a signed varint; 14 (long) adds a signed varint
/// and carries three more varints (end line, columns); 15 has no location and
/// keeps the line. Varints hold 6 bits a byte, low bits first, with 0x40 for
/// "more"; a signed varint keeps its sign in bit 0.
///
/// The table comes from another process's memory, so it is decoded once, up
/// front, with every read checked: whatever is whole is kept and decoding stops
/// at the first thing that is not.
public struct PythonLineTable: Sendable {
  /// Byte ranges from 0 upwards, contiguous and in order, with the line of
  /// each (nil: no location). Adjacent entries with the same line are merged,
  /// as 3.12+ `co_lines()` returns them; 3.11's `co_lines()` gives one range
  /// per entry, which merges to the same list.
  public let ranges: [(start: Int, end: Int, line: Int?)]

  public init(firstLine: Int, table: [UInt8]) {
    ranges = Self.decode(firstLine: firstLine, table: table)
  }

  /// The line of the instruction at byte offset `byteOffset` (2 × the
  /// code-unit index), nil when the instruction has no location or the offset
  /// is outside the table.
  public func line(atByteOffset byteOffset: Int) -> Int? {
    // The first range that ends after the offset; ranges start at 0 and are
    // contiguous, so it holds the offset unless the offset is negative.
    var low = 0
    var high = ranges.count
    while low < high {
      let mid = (low + high) / 2
      if ranges[mid].end <= byteOffset { low = mid + 1 } else { high = mid }
    }
    guard low < ranges.count, ranges[low].start <= byteOffset else { return nil }
    return ranges[low].line
  }

  private static func decode(firstLine: Int, table: [UInt8]) -> [(start: Int, end: Int, line: Int?)] {
    var out: [(start: Int, end: Int, line: Int?)] = []
    var i = 0
    var line = firstLine
    var address = 0

    // Only an entry's first byte has bit 7 set, so a payload byte with it set
    // means the table is corrupt or we lost step: stop there.
    func payload() -> UInt8? {
      guard i < table.count, table[i] & 0x80 == 0 else { return nil }
      defer { i += 1 }
      return table[i]
    }
    // CPython's values are C ints (the signed form takes 33 bits), so 6 bytes
    // (36 bits) always suffice; a longer varint is garbage, and capping it
    // keeps the shift in range.
    func varint() -> Int? {
      var value = 0
      for shift in stride(from: 0, to: 36, by: 6) {
        guard let byte = payload() else { return nil }
        value |= Int(byte & 0x3f) << shift
        if byte & 0x40 == 0 { return value }
      }
      return nil
    }
    func signedVarint() -> Int? {
      guard let v = varint() else { return nil }
      return v & 1 != 0 ? -(v >> 1) : v >> 1
    }
    func skip(_ count: Int) -> Bool {
      (0..<count).allSatisfy { _ in payload() != nil }
    }

    while i < table.count, table[i] & 0x80 != 0 {
      let head = table[i]
      i += 1
      let form = Int(head >> 3) & 15
      let delta: Int?
      switch form {
      case 15: delta = 0
      case 14: delta = signedVarint().flatMap { d in varint() != nil && varint() != nil && varint() != nil ? d : nil }
      case 13: delta = signedVarint()
      case 10...12: delta = skip(2) ? form - 10 : nil
      default: delta = skip(1) ? 0 : nil
      }
      guard let delta else { break }
      // Wrapping: hostile deltas may give a nonsense line, but never a trap.
      line &+= delta
      let end = address + 2 * (Int(head & 7) + 1)
      let entryLine = form == 15 ? nil : line
      if let last = out.last, last.line == entryLine {
        out[out.count - 1].end = end
      } else {
        out.append((address, end, entryLine))
      }
      address = end
    }
    return out
  }
}
