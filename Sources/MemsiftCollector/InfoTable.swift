/// The collector's map from an allocation info's key (requested size,
/// stack, function) to its number: open addressing with linear probing, a
/// multiplicative hash, no deletion (infos live as long as the trace).
///
/// A program that allocates random sizes makes nearly every call a new
/// info (5 million on the random-size benchmark): the standard Dictionary's
/// seeded SipHash and resizing made the collector fall behind the target
/// there, which then waited on a full ring for 2 s of 4. One 16-byte slot
/// per key, so a lookup is one cache miss, at up to 3/4 load.
struct InfoTable {
  private struct Slot {
    /// size | function << 48 | 1 << 63; 0: empty.
    var key: UInt64 = 0
    var stack: UInt32 = 0
    var number: UInt32 = 0
  }

  private var slots = [Slot](repeating: Slot(), count: 1 << 12)
  private var shift: UInt64 = 64 - 12
  /// Keys whose size does not fit in 48 bits (no such block can exist; a
  /// damaged record might say so).
  private var huge: [HugeKey: UInt32] = [:]
  private(set) var count = 0

  private struct HugeKey: Hashable {
    var size: UInt64
    var stack: UInt32
    var function: UInt8
  }

  @inline(__always)
  private func home(_ key: UInt64, _ stack: UInt32) -> Int {
    Int(truncatingIfNeeded: ((key &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(stack) &* 0xC2B2_AE3D_27D4_EB4F)) >> shift)
  }

  /// The key's number, and whether it was new (numbers count from 0).
  mutating func intern(size: UInt64, stack: UInt32, function: UInt8) -> (number: UInt32, isNew: Bool) {
    guard size < 1 << 48 else {
      let k = HugeKey(size: size, stack: stack, function: function)
      if let n = huge[k] { return (n, false) }
      huge[k] = UInt32(count)
      count += 1
      return (UInt32(count - 1), true)
    }
    let key = size | UInt64(function) << 48 | 1 << 63
    let mask = slots.count - 1
    var i = home(key, stack)
    while slots[i].key != 0 {
      if slots[i].key == key && slots[i].stack == stack { return (slots[i].number, false) }
      i = (i + 1) & mask
    }
    let number = UInt32(count)
    slots[i] = Slot(key: key, stack: stack, number: number)
    count += 1
    if count * 4 > slots.count * 3 { grow() }
    return (number, true)
  }

  private mutating func grow() {
    let old = slots
    slots = [Slot](repeating: Slot(), count: old.count * 2)
    shift -= 1
    let mask = slots.count - 1
    for s in old where s.key != 0 {
      var i = home(s.key, s.stack)
      while slots[i].key != 0 { i = (i + 1) & mask }
      slots[i] = s
    }
  }
}
