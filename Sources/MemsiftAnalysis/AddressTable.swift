/// The live set's map from block address to block: open addressing with
/// linear probing and backward-shift deletion, keyed by a cheap
/// multiplicative hash. The replay does one lookup per event, and the
/// standard Dictionary's seeded SipHash cost more than the rest of the
/// replay together.
public struct AddressTable<Value> {
  @usableFromInline var keys: [UInt64]  // 0: empty (no block lives at address 0)
  @usableFromInline var values: [Value?]
  @usableFromInline var mask: Int
  @usableFromInline var shift: UInt64
  @usableFromInline var storedCount = 0
  public var count: Int { storedCount }

  @inlinable
  public init() {
    keys = [UInt64](repeating: 0, count: 1024)
    values = [Value?](repeating: nil, count: 1024)
    mask = 1023
    shift = 64 - 10
  }

  @inlinable @inline(__always)
  func home(_ key: UInt64) -> Int {
    // Addresses are 16-byte aligned: drop those bits, then Fibonacci hashing.
    Int(truncatingIfNeeded: ((key >> 4) &* 0x9E37_79B9_7F4A_7C15) >> shift)
  }

  @inlinable
  public subscript(key: UInt64) -> Value? {
    get {
      var i = home(key)
      while keys[i] != 0 {
        if keys[i] == key { return values[i] }
        i = (i + 1) & mask
      }
      return nil
    }
    set {
      if let newValue { updateValue(newValue, forKey: key) } else { removeValue(forKey: key) }
    }
  }

  /// Stores `value`; returns the value that was there.
  @discardableResult
  @inlinable
  public mutating func updateValue(_ value: Value, forKey key: UInt64) -> Value? {
    precondition(key != 0, "address 0 is never a live block")
    if (storedCount + 1) * 2 > keys.count { grow() }
    var i = home(key)
    while keys[i] != 0 {
      if keys[i] == key {
        let old = values[i]
        values[i] = value
        return old
      }
      i = (i + 1) & mask
    }
    keys[i] = key
    values[i] = value
    storedCount += 1
    return nil
  }

  /// Removes and returns the value at `key`.
  @discardableResult
  @inlinable
  public mutating func removeValue(forKey key: UInt64) -> Value? {
    var i = home(key)
    while keys[i] != key {
      if keys[i] == 0 { return nil }
      i = (i + 1) & mask
    }
    let old = values[i]
    // Backward-shift: pull later entries of the probe run into the hole.
    var hole = i
    var j = (i + 1) & mask
    while keys[j] != 0 {
      let h = home(keys[j])
      // Move j into the hole unless its home lies cyclically in (hole, j].
      let between = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j)
      if !between {
        keys[hole] = keys[j]
        values[hole] = values[j]
        hole = j
      }
      j = (j + 1) & mask
    }
    keys[hole] = 0
    values[hole] = nil
    storedCount -= 1
    return old
  }

  @usableFromInline
  mutating func grow() {
    let oldKeys = keys
    let oldValues = values
    let capacity = keys.count * 2
    keys = [UInt64](repeating: 0, count: capacity)
    values = [Value?](repeating: nil, count: capacity)
    mask = capacity - 1
    shift -= 1
    storedCount = 0
    for i in oldKeys.indices where oldKeys[i] != 0 { updateValue(oldValues[i]!, forKey: oldKeys[i]) }
  }
}
