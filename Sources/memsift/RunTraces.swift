import MemsiftCollector
import MemsiftFormat

#if canImport(Glibc)
  import Glibc
#endif

/// The traces of one `memsift run`: the -o file and its siblings
/// STEM.PID[.N].EXT in the same directory.
enum RunTraces {
  /// The trace of process `pid` (its last image, when it exec'd).
  static func trace(of pid: Int32, near first: String) throws -> String {
    let slash = first.lastIndex(of: "/")
    let dir = slash.map { String(first[..<$0]) } ?? "."
    let name = slash.map { String(first[first.index(after: $0)...]) } ?? first
    let dot = name.lastIndex(of: ".")
    let stem = dot.map { String(name[..<$0]) } ?? name
    let siblings = RunDirectory.entries(of: dir).filter { $0.hasPrefix(stem + ".\(pid).") || $0 == stem + ".\(pid)" }
    let candidates = [first] + siblings.map { dir + "/" + $0 }
    let matching = candidates.compactMap { path -> (String, UInt64)? in
      guard let reader = try? TraceReader(path: path), reader.header.pid == pid else { return nil }
      return (path, reader.header.startMonoNs)
    }
    guard let last = matching.max(by: { $0.1 < $1.1 }) else {
      throw RunTracesError(message: "no trace of PID \(pid) next to \(first)")
    }
    return last.0
  }
}

struct RunTracesError: Error, CustomStringConvertible {
  var message: String
  var description: String { message }
}
