#if canImport(Glibc)
  import Glibc
#endif

/// The private per-user runtime directory, and one run's directory in it,
/// where the shims of a run publish their rings.
///
/// `$XDG_RUNTIME_DIR/memsift` when that is set, else `/dev/shm/memsift-UID`
/// (rings are shared memory: on a disk-backed /tmp the kernel would write
/// them back to disk), else `/tmp/memsift-UID`. It must be a real directory
/// owned by us with mode 0700, or we refuse it.
public final class RunDirectory {
  public let path: String

  /// Creates a fresh run directory.
  /// - Throws: `CollectorError.setup` when the user directory is unsafe or cannot be made.
  public init(environment: [String: String]) throws {
    let base = try Self.userDirectory(environment: environment)
    Self.removeAbandoned(in: base)
    // The collector's PID in the name tells a later run whether it is abandoned.
    var template = Array((base + "/run-\(getpid())-XXXXXX").utf8CString)
    guard mkdtemp(&template) != nil else {
      throw CollectorError.setup("cannot create a run directory in \(base): \(String(cString: strerror(errno)))")
    }
    path = String(cString: template)
  }

  /// The per-user directory, created with mode 0700 and checked.
  public static func userDirectory(environment: [String: String]) throws -> String {
    let uid = getuid()
    let base: String
    if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty, isOwnedPrivateDirectory(runtime, uid: uid) {
      base = runtime + "/memsift"
    } else if isDirectory("/dev/shm") && access("/dev/shm", W_OK | X_OK) == 0 {
      base = "/dev/shm/memsift-\(uid)"
    } else {
      base = "/tmp/memsift-\(uid)"
    }
    if mkdir(base, 0o700) != 0 && errno != EEXIST {
      throw CollectorError.setup("cannot create \(base): \(String(cString: strerror(errno)))")
    }
    var st = stat()
    if lstat(base, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
      throw CollectorError.setup("\(base) is a symbolic link; refusing to keep rings there")
    }
    guard isOwnedPrivateDirectory(base, uid: uid) else {
      throw CollectorError.setup("\(base) is not a directory of ours with mode 0700; refusing to use it")
    }
    return base
  }

  static func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
  }

  static func isOwnedPrivateDirectory(_ path: String, uid: uid_t) -> Bool {
    var st = stat()
    guard lstat(path, &st) == 0 else { return false }
    return (st.st_mode & S_IFMT) == S_IFDIR && st.st_uid == uid && (st.st_mode & 0o077) == 0
  }

  /// Removes the run directories of collectors that died without cleaning
  /// up (SIGKILL): their rings are shared memory that nobody else frees.
  static func removeAbandoned(in base: String) {
    for name in entries(of: base) where name.hasPrefix("run-") {
      let parts = name.split(separator: "-")
      guard parts.count == 3, let pid = pid_t(parts[1]) else { continue }
      if kill(pid, 0) != 0 && errno == ESRCH { removeTree(base + "/" + name) }
    }
  }

  public static func entries(of path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafePointer(to: entry.pointee.d_name) {
        $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names
  }

  /// Removes a run directory and the files in it (there are no subdirectories).
  static func removeTree(_ path: String) {
    for name in entries(of: path) { unlink(path + "/" + name) }
    rmdir(path)
  }

  /// Names of the published rings in the directory.
  func ringFiles() -> [String] {
    Self.entries(of: path).filter { $0.hasSuffix(".ring") }.map { path + "/" + $0 }
  }

  /// Removes the directory and anything a dead shim left behind in it.
  public func remove() {
    Self.removeTree(path)
  }
}
