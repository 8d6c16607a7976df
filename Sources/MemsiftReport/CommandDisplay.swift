/// A recorded command line as one readable line: arguments with spaces or
/// quotes are single-quoted, control characters escaped, long lines cut.
public enum CommandDisplay {
  public static func line(_ arguments: [String], limit: Int = 200) -> String {
    var text = arguments.map(quote).joined(separator: " ")
    if text.count > limit { text = String(text.prefix(limit - 3)) + "..." }
    return text
  }

  static func quote(_ argument: String) -> String {
    let escaped = argument.unicodeScalars.map { c -> String in
      switch c {
      case "\n": return "\\n"
      case "\t": return "\\t"
      case "'": return "'\\''"
      default: return c.value < 0x20 ? "\\x" + String(c.value, radix: 16) : String(c)
      }
    }.joined()
    let plain = !argument.isEmpty && argument.unicodeScalars.allSatisfy {
      $0.properties.isAlphabetic || "0123456789-_./=:,+@%".unicodeScalars.contains($0)
    }
    return plain ? escaped : "'" + escaped + "'"
  }
}
