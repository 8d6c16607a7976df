#if canImport(Glibc)
  import Glibc
#endif

/// Names and creates the trace files of a run.
///
/// Without `-o`: `memsift.PROGRAM.PID.trace` in the working directory
/// (heaptrack's habit). With `-o PATH`: PATH for the first process, and
/// `STEM.PID.EXT` for every further one. A name already taken (exec keeps the
/// PID) gets a counter: `STEM.PID.2.EXT`. Files are created with
/// O_EXCL|O_NOFOLLOW and mode 0600.
public final class TraceNaming {
  private let explicitPath: String?
  private let directory: String
  private var reservedFirst: Int32?
  /// The process whose first image gets the explicit path: the one memsift started.
  public var firstPid: Int32 = 0
  /// What the user should know about the names chosen (a planted link passed over).
  public private(set) var notices: [String] = []

  /// Prepares naming; with an explicit path, creates that file now so that
  /// an unwritable path fails before the program starts.
  /// - Throws: `CollectorError.setup` when the output cannot be created.
  public init(explicitPath: String?, directory: String) throws {
    self.explicitPath = explicitPath
    self.directory = directory
    if let path = explicitPath {
      // The user named this file: replace an old trace there, but never
      // follow a link or write through someone else's file.
      var st = stat()
      if lstat(path, &st) == 0 {
        switch st.st_mode & S_IFMT {
        case S_IFLNK:
          throw CollectorError.setup(
            "refusing to write \(path): it is a symbolic link, and memsift never writes through one")
        case S_IFREG: unlink(path)
        default: break  // O_EXCL below says what is in the way
        }
      }
      let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
      guard fd >= 0 else {
        throw CollectorError.setup("cannot create \(path): \(String(cString: strerror(errno)))")
      }
      reservedFirst = fd
    } else if access(directory, W_OK | X_OK) != 0 {
      throw CollectorError.setup(
        "cannot write traces in \(directory): \(String(cString: strerror(errno))); use -o PATH")
    }
  }

  deinit { if let fd = reservedFirst { close(fd) } }

  /// Removes the explicit file if no trace went into it (the first process
  /// was never traced). Returns its path then.
  @discardableResult
  public func discardUnusedExplicitPath() -> String? {
    guard let fd = reservedFirst, let path = explicitPath else { return nil }
    close(fd)
    reservedFirst = nil
    unlink(path)
    return path
  }

  /// Creates the trace file for a process. Returns its path and descriptor.
  func create(program: String, pid: Int32) throws -> (path: String, fd: Int32) {
    if let fd = reservedFirst, let path = explicitPath, pid == firstPid {
      reservedFirst = nil
      return (path, fd)
    }
    let (stem, ext): (String, String)
    if let path = explicitPath {
      let slash = path.lastIndex(of: "/")
      if let dot = path.lastIndex(of: "."), slash.map({ dot > $0 }) ?? true, dot != path.startIndex {
        (stem, ext) = (String(path[..<dot]) + ".\(pid)", String(path[dot...]))
      } else {
        (stem, ext) = (path + ".\(pid)", "")
      }
    } else {
      (stem, ext) = (directory + "/memsift.\(program).\(pid)", ".trace")
    }
    var skippedLink: String?
    for attempt in 1...1000 {
      let path = attempt == 1 ? stem + ext : stem + ".\(attempt)" + ext
      let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
      if fd >= 0 {
        if let link = skippedLink {
          notices.append("\(link) is a symbolic link; not writing through it: the trace is \(path)")
        }
        return (path, fd)
      }
      if errno != EEXIST { throw CollectorError.io("cannot create \(path): \(String(cString: strerror(errno)))") }
      var st = stat()
      if skippedLink == nil && lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK { skippedLink = path }
    }
    throw CollectorError.io("cannot find a free trace name for \(stem)\(ext)")
  }
}
