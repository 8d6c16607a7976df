#if canImport(Glibc)
  import Glibc
#endif

/// Finds `libmemsift.so` without configuration.
///
/// In order: `--shim PATH`, `$MEMSIFT_SHIM`, next to the `memsift`
/// executable, then `../lib/memsift/` relative to it.
public enum ShimLocator {
  public static let libraryName = "libmemsift.so"

  /// Returns the absolute path of the shim.
  /// - Throws: `CollectorError.setup` listing every path tried.
  public static func locate(explicit: String?, environment: [String: String]) throws -> String {
    if let path = explicit ?? environment["MEMSIFT_SHIM"].flatMap({ $0.isEmpty ? nil : $0 }) {
      let source = explicit != nil ? "--shim" : "MEMSIFT_SHIM"
      guard isReadableFile(path) else { throw CollectorError.setup("\(source) \(path): no such readable file") }
      return absolute(path)
    }
    var tried: [String] = []
    if let exeDir = executableDirectory() {
      for candidate in [exeDir + "/" + libraryName, exeDir + "/../lib/memsift/" + libraryName] {
        tried.append(candidate)
        if isReadableFile(candidate) { return absolute(candidate) }
      }
    }
    throw CollectorError.setup(
      "cannot find \(libraryName); tried \(tried.joined(separator: ", ")) "
        + "(run tools/setup.sh, or pass --shim PATH / set MEMSIFT_SHIM)")
  }

  static func executableDirectory() -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return path.lastIndex(of: "/").map { String(path[..<$0]) }
  }

  static func isReadableFile(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, R_OK) == 0
  }

  static func absolute(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
  }
}
