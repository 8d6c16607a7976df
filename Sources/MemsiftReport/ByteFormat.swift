/// Human-readable numbers for reports.
public enum ByteFormat {
  /// "1.2 MiB", "512 B".
  public static func bytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(n)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    return unit == 0 ? "\(n) B" : String(format1: value) + " " + units[unit]
  }

  /// "1,234,567".
  public static func count(_ n: UInt64) -> String {
    var digits = Array(String(n))
    var i = digits.count - 3
    while i > 0 {
      digits.insert(",", at: i)
      i -= 3
    }
    return String(digits)
  }

  /// "1 allocation", "1,234 allocations".
  public static func count(_ n: UInt64, _ noun: String) -> String {
    count(n) + " " + noun + (n == 1 ? "" : "s")
  }

  /// "1.234 s" from nanoseconds.
  public static func seconds(_ ns: UInt64) -> String {
    thousandths(ns / 1_000_000) + " s"
  }

  /// "1.234" from 1234: a figure kept in thousandths of its unit.
  public static func thousandths(_ n: UInt64) -> String {
    let frac = String(n % 1000)
    return "\(n / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
  }
}

extension String {
  /// One decimal, without Foundation.
  init(format1 value: Double) {
    // Only a damaged trace's figures (a share of a total that wrapped) go
    // past what an Int holds.
    guard value.isFinite, value.magnitude < 1e17 else {
      self = value.isNaN ? "?" : (value < 0 ? "-" : "") + "huge"
      return
    }
    let tenths = Int((value * 10).rounded())
    self = "\(tenths / 10).\(tenths % 10)"
  }
}
