import CMemsiftFormat

/// How a traced process (or one image of it, across exec) ended.
///
/// The corresponding C enum is `ms_exit_kind`.
public enum ExitKind: UInt32, Sendable, Codable {
  case unknown = 0
  case returnFromMain = 1
  case exit = 2
  case underscoreExit = 3
  case abort = 4
  case signal = 5
  case exec = 6
  case destructor = 7
  case status = 8

  /// A short stable name, used in JSON.
  public var name: String {
    switch self {
    case .unknown: return "unknown"
    case .returnFromMain: return "return"
    case .exit: return "exit"
    case .underscoreExit: return "_exit"
    case .abort: return "abort"
    case .signal: return "signal"
    case .exec: return "exec"
    case .destructor: return "destructor"
    case .status: return "exited"
    }
  }

  /// A phrase for people: "exited with status 3", "killed by signal 9 (SIGKILL)".
  public func describe(status: Int32) -> String {
    switch self {
    case .unknown: return "ended without saying how (the trace may be incomplete)"
    case .returnFromMain: return "main returned \(status)"
    case .exit: return "exit(\(status))"
    case .underscoreExit: return "_exit(\(status))"
    case .abort: return "abort()"
    case .signal: return "killed by signal \(status)\(signalName(status).map { " (\($0))" } ?? "")"
    case .exec: return "replaced by exec"
    case .destructor: return "exited (status not seen)"
    case .status: return "exited with status \(status)"
    }
  }
}

private func signalName(_ n: Int32) -> String? {
  let names: [Int32: String] = [
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
    8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
    14: "SIGALRM", 15: "SIGTERM",
  ]
  return names[n]
}
