import CMemsiftSys

#if canImport(Glibc)
  import Glibc
#endif

/// Starts the target with the shim preloaded.
public struct Launcher {
  public var command: [String]
  public var shimPath: String
  public var runDirectory: String
  public var depth: Int?
  public var environment: [String: String]

  public init(command: [String], shimPath: String, runDirectory: String, depth: Int?, environment: [String: String]) {
    self.command = command
    self.shimPath = shimPath
    self.runDirectory = runDirectory
    self.depth = depth
    self.environment = environment
  }

  /// The target's environment: the shim prepended to LD_PRELOAD, the run
  /// directory, and PYTHONMALLOC=malloc unless the user chose otherwise, so
  /// that CPython's small-object allocator does not hide objects. It is a
  /// fallback (MEMSIFT_PYTHONMALLOC=fallback says so): a CPython whose
  /// allocators the shim hooks (3.11-3.13, unless MEMSIFT_PYTHON_ALLOCATORS=0)
  /// has it removed by the shim before it starts, and keeps pymalloc.
  public func targetEnvironment() -> [String: String] {
    var env = environment
    let existing = env["LD_PRELOAD"].flatMap { $0.isEmpty ? nil : $0 }
    env["LD_PRELOAD"] = existing.map { shimPath + " " + $0 } ?? shimPath
    env["MEMSIFT_RUN_DIR"] = runDirectory
    // If we die, the shims stop tracing instead of waiting for us forever.
    env["MEMSIFT_COLLECTOR_PID"] = String(getpid())
    env["MEMSIFT_OUTPUT"] = nil
    if let depth { env["MEMSIFT_DEPTH"] = String(depth) }
    if env["PYTHONMALLOC"] == nil {
      env["PYTHONMALLOC"] = "malloc"
      env["MEMSIFT_PYTHONMALLOC"] = "fallback"
    }
    return env
  }

  /// Resolves the command like execvp would and rejects what the shim cannot trace.
  /// - Throws: `CollectorError.launch` with the exit code a shell would use.
  public func resolveExecutable() throws -> String {
    let name = command[0]
    var path: String?
    if name.contains("/") {
      path = name
    } else {
      for dir in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(
        separator: ":", omittingEmptySubsequences: false)
      {
        let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + name
        var st = stat()
        if stat(candidate, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(candidate, X_OK) == 0 {
          path = candidate
          break
        }
      }
    }
    guard let path, access(path, F_OK) == 0 else {
      throw CollectorError.launch("command not found: \(name)", exitCode: 127)
    }
    guard access(path, X_OK) == 0 else {
      throw CollectorError.launch("\(path): permission denied", exitCode: 126)
    }
    if let reason = SecureExecution.reason(path: path) {
      throw CollectorError.launch(
        "\(path) is \(reason): the loader ignores LD_PRELOAD for it, so memsift cannot trace it", exitCode: 1)
    }
    if case .staticExecutable = ElfKind.of(path: path) {
      throw CollectorError.launch(
        "\(path) is statically linked: LD_PRELOAD cannot trace it (it has no dynamic loader)", exitCode: 1)
    }
    return path
  }

  /// Spawns the target. Signals the collector ignores are reset to default in it.
  /// - Throws: `CollectorError.launch` when the program cannot be started.
  public func spawn() throws -> pid_t {
    let path = try resolveExecutable()
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for sig in [SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, sig) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var mask = sigset_t()
    sigemptyset(&mask)
    posix_spawnattr_setsigmask(&attributes, &mask)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

    let argv = command.map { strdup($0) } + [nil]
    let envp = targetEnvironment().map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      argv.forEach { free($0) }
      envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, nil, &attributes, argv, envp)
    guard rc == 0 else {
      throw CollectorError.launch("cannot run \(path): \(String(cString: strerror(rc)))", exitCode: rc == ENOENT ? 127 : 126)
    }
    return pid
  }
}

/// What an executable file is, as far as preloading goes.
enum ElfKind {
  case dynamicExecutable
  case staticExecutable
  case notELF

  /// Reads the ELF header and program headers: an ELF file without
  /// PT_INTERP is started by the kernel directly, and LD_PRELOAD never runs.
  static func of(path: String) -> ElfKind {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return .notELF }
    defer { close(fd) }
    var ident = [UInt8](repeating: 0, count: 64)
    guard pread(fd, &ident, 64, 0) == 64, ident[0] == 0x7f, ident[1] == 0x45, ident[2] == 0x4c, ident[3] == 0x46,
      ident[4] == 2  // ELFCLASS64
    else { return .notELF }
    let phoff = ident.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) }
    let phentsize = Int(ident.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 54, as: UInt16.self) })
    let phnum = Int(ident.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 56, as: UInt16.self) })
    guard phentsize >= 4, phnum > 0, phnum < 4096 else { return .notELF }
    var table = [UInt8](repeating: 0, count: phentsize * phnum)
    guard pread(fd, &table, table.count, off_t(phoff)) == table.count else { return .notELF }
    let ptInterp: UInt32 = 3
    for i in 0..<phnum where table.withUnsafeBytes({ $0.loadUnaligned(fromByteOffset: i * phentsize, as: UInt32.self) }) == ptInterp {
      return .dynamicExecutable
    }
    return .staticExecutable
  }
}

/// Programs the loader starts in secure-execution mode (AT_SECURE), where it
/// ignores LD_PRELOAD: those that gain privileges when run, by a setuid or
/// setgid bit that changes our identity, or by file capabilities.
enum SecureExecution {
  /// Why `path` would run in secure-execution mode, or nil.
  static func reason(path: String) -> String? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    // A set-ID bit that leaves the effective ID as it is (root running a
    // setuid-root program) does not make the execution secure.
    if st.st_mode & S_ISUID != 0 && st.st_uid != geteuid() { return "setuid (owner uid \(st.st_uid))" }
    if st.st_mode & S_ISGID != 0 && st.st_gid != getegid() { return "setgid (group gid \(st.st_gid))" }
    // Root already holds every capability: file capabilities add none.
    if geteuid() != 0 && CMemsiftSys_hasFileCapabilities(path) != 0 { return "given file capabilities (setcap)" }
    return nil
  }
}
