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
  /// Every labelled moment, in trace order.
  public var snapshots: [SnapshotPoint] = []
  /// RSS beside the heap: the last samples before the peak and before the end.
  public var rssAtPeakBytes: UInt64? = nil
  public var rssAtEndBytes: UInt64? = nil
  /// Mean bytes between samples when the trace is a sample (0: every event).
  /// Byte figures are then unbiased estimates, counts are of the sampled
  /// allocations.
  public var sampleRate: UInt64 = 0
  public var warnings: [String]

  /// Time since the process started. Event times come from a coarse clock
  /// that may lag the precise start time by up to a tick, hence the clamp.
  public func elapsed(at timeNs: UInt64) -> UInt64 {
    timeNs > header.startMonoNs ? timeNs - header.startMonoNs : 0
  }

  /// Reads the whole trace once (the same pass as `TraceAnalysis.read`,
  /// without keeping the stacks' frames).
  /// - Throws: `TraceError` when the file cannot be opened or is not a trace.
  public static func read(path: String) throws -> TraceSummary {
    var scan = TraceScan(keepFrames: false)
    return try scan.run(path: path)
  }
}

/// A module the trace saw loaded, and whether it saw it unloaded.
public struct LoadedModule: Sendable, Equatable {
  public var path: String
  public var base: UInt64
  public var buildID: [UInt8]
  public var unloaded: Bool

  /// The build-id as lowercase hex, as `file` and debuginfod print it.
  public var buildIDHex: String { Self.hex(buildID) }

  /// A build-id as lowercase hex.
  public static func hex(_ buildID: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return String(buildID.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
  }
}

/// A labelled moment of a trace and the heap at it.
public struct SnapshotPoint: Sendable, Equatable {
  public var label: String
  public var timeNs: UInt64
  /// Bytes requested and not yet freed by every event before the label.
  public var liveBytes: UInt64
  public var liveAllocations: UInt64
  /// The last RSS sample before the label, if any.
  public var rssBytes: UInt64?
  /// Who placed it: the program, `memsift snapshot` from outside, or the
  /// collector (live mode).
  public var source: SnapshotSource
  /// Placed by anyone but the program.
  public var external: Bool { source != .program }
  /// Its position among the trace's records.
  public var recordIndex: Int
}
