import MemsiftFormat

/// Everything `memsift report` says about one trace before per-site views.
public struct TraceSummary: Sendable {
  public var path: String
  public var header: TraceHeader
  public var process: ProcessInfo?
  public var totals: HeapTotals
  /// How the process ended, from the END record, else the last EXIT record.
  public var endKind: ExitKind
  public var endStatus: Int32
  /// Whether the writer finished the trace with an END record.
  public var isComplete: Bool
  public var durationNs: UInt64
  public var events: UInt64
  public var stacks: Int
  public var threads: Int
  public var modules: Int
  public var modulesUnloaded: Int
  /// Every module load the trace recorded, in order.
  public var loadedModules: [LoadedModule]
  public var rssSamples: Int
  public var peakRSSBytes: UInt64
  public var end: EndInfo?
  public var warnings: [String]

  /// Time since the process started. Event times come from a coarse clock
  /// that may lag the precise start time by up to a tick, hence the clamp.
  public func elapsed(at timeNs: UInt64) -> UInt64 {
    timeNs > header.startMonoNs ? timeNs - header.startMonoNs : 0
  }

  /// Reads the whole trace once.
  /// - Throws: `TraceError` when the file cannot be opened or is not a trace.
  public static func read(path: String) throws -> TraceSummary {
    let reader = try TraceReader(path: path)
    var replay = HeapReplay()
    var process: ProcessInfo?
    var end: EndInfo?
    var lastExit: (ExitKind, Int32)?
    var events: UInt64 = 0
    var stacks = Set<StackID>()
    var threads = Set<UInt32>()
    var loaded: [LoadedModule] = []
    var unloaded = 0, rssSamples = 0
    var peakRSS: UInt64 = 0
    var lastTime = reader.header.startMonoNs
    try reader.forEachRecord { record in
      switch record {
      case .alloc(let t, _, _, _, _, _), .realloc(let t, _, _, _, _, _), .free(let t, _):
        events += 1
        lastTime = max(lastTime, t)
        replay.apply(record)
      case .reallocDone(let t, _, _, _):
        lastTime = max(lastTime, t)
        replay.apply(record)
      case .process(let p): if process == nil { process = p }
      case .stack(let id, _): stacks.insert(id)
      case .thread(_, let tid, _): threads.insert(tid)
      case .moduleLoad(let m):
        loaded.append(LoadedModule(path: m.path, base: m.base, buildID: m.buildID, unloaded: false))
      case .moduleUnload(_, let base):
        unloaded += 1
        if let i = loaded.lastIndex(where: { $0.base == base && !$0.unloaded }) { loaded[i].unloaded = true }
      case .rss(let t, let bytes):
        rssSamples += 1
        peakRSS = max(peakRSS, bytes)
        lastTime = max(lastTime, t)
      case .exit(let t, let kind, let status):
        lastExit = (kind, status)
        lastTime = max(lastTime, t)
      case .end(let info):
        end = info
        lastTime = max(lastTime, info.timeNs)
      case .unknown: break
      }
    }
    replay.finishInFlight()
    var warnings = reader.warnings
    if process == nil { warnings.append("the trace has no PROCESS record") }
    if end == nil && !reader.isTruncated && !reader.isCorrupt && lastExit?.0 != .exec {
      warnings.append("the trace has no END record: the writer did not finish it (killed, or still running)")
    }
    if let end, end.lostBytes > 0 {
      warnings.append("\(end.lostBytes) bytes of the ring were unreadable: a thread died while writing a record")
    }
    if let end, end.stackTableFull > 0 {
      warnings.append("\(end.stackTableFull) events have no stack: the shim's stack table was full")
    }
    return TraceSummary(
      path: path, header: reader.header, process: process, totals: replay.finalTotals,
      endKind: end?.kind ?? lastExit?.0 ?? .unknown, endStatus: end?.status ?? lastExit?.1 ?? 0,
      isComplete: end != nil, durationNs: lastTime - reader.header.startMonoNs, events: events,
      stacks: stacks.count, threads: threads.count, modules: loaded.count, modulesUnloaded: unloaded,
      loadedModules: loaded,
      rssSamples: rssSamples, peakRSSBytes: peakRSS, end: end, warnings: warnings)
  }
}

/// A module the trace saw loaded, and whether it saw it unloaded.
public struct LoadedModule: Sendable, Equatable {
  public var path: String
  public var base: UInt64
  public var buildID: [UInt8]
  public var unloaded: Bool

  /// The build-id as lowercase hex, as `file` and debuginfod print it.
  public var buildIDHex: String {
    let digits = Array("0123456789abcdef")
    return String(buildID.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
  }
}
