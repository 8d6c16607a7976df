import CLibdw

#if canImport(Glibc)
  import Glibc
#endif

/// Readable names for mangled symbols: C++ and legacy Rust through the C++
/// ABI's `__cxa_demangle` (Rust's `::h<16 hex>` hash dropped), Swift through
/// the Swift runtime's demangler. Rust v0 (`_R`) names stay raw: no
/// demangling library for them is packaged here.
public enum Demangler {
  public static func demangle(_ name: String) -> String {
    if name.hasPrefix("_Z") {
      var status: Int32 = 0
      guard let out = __cxa_demangle(name, nil, nil, &status), status == 0 else { return name }
      defer { free(out) }
      return withoutRustHash(String(cString: out))
    }
    if name.hasPrefix("$s") || name.hasPrefix("_$s") || name.hasPrefix("$S") || name.hasPrefix("_T0") {
      let utf8 = Array(name.utf8)
      guard let out = swift_demangle(name, utf8.count, nil, nil, 0) else { return name }
      defer { free(out) }
      return String(cString: out)
    }
    return name
  }

  /// "core::fmt::write::h0123456789abcdef" -> "core::fmt::write".
  static func withoutRustHash(_ name: String) -> String {
    let chars = Array(name)
    guard chars.count > 19 else { return name }
    let hash = chars[(chars.count - 16)...]
    guard String(chars[(chars.count - 19)..<(chars.count - 16)]) == "::h", hash.allSatisfy(\.isHexDigit) else {
      return name
    }
    return String(chars[..<(chars.count - 19)])
  }
}
