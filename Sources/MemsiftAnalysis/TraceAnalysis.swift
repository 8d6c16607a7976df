import MemsiftFormat

/// Everything the per-site reports need from one trace, read in one pass:
/// the summary, every site's figures, the stacks' frames and the module
/// timeline to resolve those frames against.
public struct TraceAnalysis: Sendable {
  /// The same summary `TraceSummary.read` gives.
  public var summary: TraceSummary
  /// Every site that allocated, by stack (sums equal `summary.totals`).
  public var sites: [StackID: SiteStats]
  /// Return addresses of every stack the trace wrote, innermost first.
  public var stacks: [StackID: [UInt64]]
  /// The Python frames of the stacks that have them, innermost first.
  public var pythonStacks: [StackID: [PythonFrameRef]]
  /// The Python code objects those frames name, by id.
  public var codes: [UInt32: PythonCode]
  /// The record index (see `TracedModule.loadRecord`) of each stack's STACK
  /// record: the modules loaded at that point are the ones its frames lie in.
  public var stackRecords: [StackID: Int]
  /// Every module load the trace recorded, in record order, with its unload.
  public var modules: [TracedModule] { didSet { spans = Self.spans(of: modules) } }
  /// Each module's mapped address ranges, flat, for lookups that do not copy modules.
  private var spans: [(module: Int, lo: UInt64, hi: UInt64)] = []

  /// What every site held at each of `points` (read in the same pass).
  public var captures: [PointCapture] = []
  /// The live heap over time (the peak included), and the RSS samples.
  public var heapTimeline = HeapTimeline()
  public var rssTimeline = HeapTimeline()

  /// - Parameters:
  ///   - points: moments at which to capture what every site holds.
  ///   - progress: called with (bytes read, file size) as reading goes.
  /// - Throws: `TraceError`, or `TracePointError` for a point the trace does not have.
  public static func read(
    path: String, points: [TracePoint] = [], progress: ((UInt64, UInt64) -> Void)? = nil
  ) throws -> TraceAnalysis {
    var scan = TraceScan(keepFrames: true)
    scan.progress = progress
    scan.wanted = points
    let summary = try scan.run(path: path)
    var analysis = TraceAnalysis(
      summary: summary, sites: scan.replay.sites, stacks: scan.frames, pythonStacks: scan.pythonFrames,
      codes: scan.codes, stackRecords: scan.stackRecords, modules: scan.modules, captures: try scan.captures(for: points, summary: summary))
    analysis.heapTimeline = scan.heapTimeline
    analysis.rssTimeline = scan.rssTimeline
    return analysis
  }

  public init(
    summary: TraceSummary, sites: [StackID: SiteStats], stacks: [StackID: [UInt64]],
    pythonStacks: [StackID: [PythonFrameRef]] = [:], codes: [UInt32: PythonCode] = [:], stackRecords: [StackID: Int],
    modules: [TracedModule], captures: [PointCapture] = []
  ) {
    self.summary = summary
    self.sites = sites
    self.stacks = stacks
    self.pythonStacks = pythonStacks
    self.codes = codes
    self.stackRecords = stackRecords
    self.modules = modules
    self.captures = captures
    spans = Self.spans(of: modules)
  }

  private static func spans(of modules: [TracedModule]) -> [(module: Int, lo: UInt64, hi: UInt64)] {
    modules.indices.flatMap { i in
      modules[i].module.segments.map { (i, modules[i].base &+ $0.vaddr, modules[i].base &+ $0.vaddr &+ $0.memsz) }
    }
  }

  /// The modules loaded at record `index` (loaded before it, not unloaded before it).
  public func modulesLoaded(atRecord index: Int) -> [TracedModule] {
    modules.filter { $0.isLoaded(atRecord: index) }
  }

  /// The module `address` lies in, among those loaded at record `index`.
  /// When none is (a stack written after its module's unload was recorded,
  /// say), the nearest load before `index` whose segments hold the address,
  /// else the first one after it.
  public func module(containing address: UInt64, atRecord index: Int) -> TracedModule? {
    var before: Int?
    var after: Int?
    for span in spans.reversed() where address >= span.lo && address < span.hi {
      let m = span.module
      if modules[m].isLoaded(atRecord: index) { return modules[m] }
      if modules[m].loadRecord < index {
        if before == nil { before = m }
      } else {
        after = m
      }
    }
    return (before ?? after).map { modules[$0] }
  }

  /// The module a frame of `stack` lies in, as loaded when the stack was
  /// recorded (at the end of the trace for a stack with no STACK record).
  public func module(containing address: UInt64, inStack stack: StackID) -> TracedModule? {
    module(containing: address, atRecord: stackRecords[stack] ?? Int.max)
  }
}

/// A module load and, if the trace saw it, its unload.
public struct TracedModule: Sendable, Equatable {
  /// The MODULE_LOAD record: time, base, segments, build-id, path.
  public var module: Module
  /// Index of the MODULE_LOAD record among all the trace's records (0: the
  /// first record after the file header), the same count as `stackRecords`.
  public var loadRecord: Int
  /// Index of the MODULE_UNLOAD record that ended this load, if any.
  public var unloadRecord: Int?
  public var unloadTimeNs: UInt64?

  public init(module: Module, loadRecord: Int, unloadRecord: Int? = nil, unloadTimeNs: UInt64? = nil) {
    self.module = module
    self.loadRecord = loadRecord
    self.unloadRecord = unloadRecord
    self.unloadTimeNs = unloadTimeNs
  }

  public var path: String { module.path }
  public var base: UInt64 { module.base }
  public var isUnloaded: Bool { unloadRecord != nil }

  /// Whether the module was loaded at record `index`.
  public func isLoaded(atRecord index: Int) -> Bool {
    loadRecord < index && (unloadRecord.map { index < $0 } ?? true)
  }

  /// Whether `address` lies in one of the module's PT_LOAD segments.
  public func contains(_ address: UInt64) -> Bool {
    module.segments.contains { s in
      let start = module.base &+ s.vaddr
      return address >= start && address - start < s.memsz
    }
  }
}

/// The one pass over a trace that `TraceSummary` and `TraceAnalysis` share.
struct TraceScan {
  /// Whether to keep the frames of every stack (the summary only counts them).
  let keepFrames: Bool
  var replay = HeapReplay()
  var frames: [StackID: [UInt64]] = [:]
  var pythonFrames: [StackID: [PythonFrameRef]] = [:]
  var codes: [UInt32: PythonCode] = [:]
  var stackRecords: [StackID: Int] = [:]
  var modules: [TracedModule] = []

  var progress: ((UInt64, UInt64) -> Void)?
  /// Points to capture while reading, and what was captured.
  var wanted: [TracePoint] = []
  var captured: [TracePoint: PointCapture] = [:]
  var heapTimeline = HeapTimeline()
  var rssTimeline = HeapTimeline()

  init(keepFrames: Bool) { self.keepFrames = keepFrames }

  private func seconds(_ ns: UInt64) -> String {
    let ms = ns / 1_000_000
    let frac = String(ms % 1000)
    return "\(ms / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac) s"
  }

  /// The captures of `points`, in order.
  /// - Throws: `TracePointError` naming a label the trace lacks or a time past its end.
  func captures(for points: [TracePoint], summary: TraceSummary) throws -> [PointCapture] {
    try points.map { point in
      if let c = captured[point] { return c }
      switch point {
      case .label(let l):
        let labels = summary.snapshots.map(\.label)
        throw TracePointError(
          message: "\(summary.path) has no label \"\(l)\""
            + (labels.isEmpty ? " (it has no labels)" : " (labels: \(labels.joined(separator: ", ")))"))
      case .seconds(let s):
        throw TracePointError(
          message: "\(summary.path) lasts \(seconds(summary.durationNs)): @\(s)s is past its end")
      default:
        throw TracePointError(message: "\(summary.path): no \(point)")
      }
    }
  }

  mutating func run(path: String) throws -> TraceSummary {
    let reader = try TraceReader(path: path)
    reader.progress = progress
    var process: ProcessInfo?
    var end: EndInfo?
    var lastExit: (ExitKind, Int32)?
    var events: UInt64 = 0
    var threads = Set<UInt32>()
    var unloaded = 0, rssSamples = 0
    var peakRSS: UInt64 = 0
    var lastRSS: UInt64?
    var rssHistory: [(time: UInt64, bytes: UInt64)] = []
    var snapshots: [SnapshotPoint] = []
    var sampleRate: UInt64 = 0
    var lastTime = reader.header.startMonoNs
    var index = 0
    let start = reader.header.startMonoNs
    var pendingTimes = wanted.compactMap { p -> (TracePoint, UInt64)? in
      guard case .seconds(let s) = p else { return nil }
      // A time past the clock's range is past the end of any trace.
      let ns = s * 1e9 < 0x1p64 ? start.addingReportingOverflow(UInt64(s * 1e9)) : (partialValue: 0, overflow: true)
      return (p, ns.overflow ? .max : ns.partialValue)
    }.sorted { $0.1 < $1.1 }
    if wanted.contains(.start) { captured[.start] = PointCapture(point: .start, live: [:], elapsedNs: 0) }
    var eventClock = start
    var damagedEvents: String?
    // A time point is the state just before the first record (or op) after it.
    func reach(_ t: UInt64) {
      heapTimeline.note(t > start ? t - start : 0, replay.liveBytes)
      while let (point, threshold) = pendingTimes.first, t > threshold {
        captured[point] = PointCapture(
          point: point, live: replay.liveBySite, elapsedNs: threshold - start, rssBytes: rssHistory.last?.bytes)
        pendingTimes.removeFirst()
      }
    }
    try reader.forEachRecord { record in
      defer { index += 1 }
      if let t = record.timeNs { reach(t) }
      switch record {
      case .events(let bytes):
        do {
          var at = 0
          while let next = try replay.applyEvents(bytes, from: at, clock: &eventClock) {
            at = next
            reach(eventClock)
            lastTime = max(lastTime, eventClock)
          }
        } catch {
          if damagedEvents == nil { damagedEvents = "\(error)" }
        }
      case .alloc(let t, _, _, _, _, _), .realloc(let t, _, _, _, _, _), .free(let t, _):
        events += 1
        lastTime = max(lastTime, t)
        replay.apply(record)
      case .reallocDone(let t, _, _, _):
        lastTime = max(lastTime, t)
        replay.apply(record)
      case .site(let state):
        lastTime = max(lastTime, state.timeNs)
        replay.apply(record)
      case .process(let p): if process == nil { process = p }
      case .stack(let id, let f, let python):
        if stackRecords[id] == nil {
          stackRecords[id] = index
          if keepFrames {
            frames[id] = f
            if !python.isEmpty { pythonFrames[id] = python }
          }
        }
      case .code(let code):
        if keepFrames && codes[code.id] == nil { codes[code.id] = code }
      case .sampling(let rate):
        replay.apply(record)
        sampleRate = rate
      case .thread(_, let tid, _): threads.insert(tid)
      case .moduleLoad(let m):
        modules.append(TracedModule(module: m, loadRecord: index))
      case .moduleUnload(let t, let base):
        unloaded += 1
        if let i = modules.lastIndex(where: { $0.module.base == base && $0.unloadRecord == nil }) {
          modules[i].unloadRecord = index
          modules[i].unloadTimeNs = t
        }
      case .snapshot(let t, let label, let source):
        lastTime = max(lastTime, t)
        if wanted.contains(.label(label)) && captured[.label(label)] == nil {
          captured[.label(label)] = PointCapture(
            point: .label(label), live: replay.liveBySite, elapsedNs: t > start ? t - start : 0,
            rssBytes: rssHistory.last?.bytes)
        }
        snapshots.append(
          SnapshotPoint(
            label: label, timeNs: t, liveBytes: replay.liveBytes, liveAllocations: UInt64(replay.liveCount),
            rssBytes: lastRSS, source: source, recordIndex: index))
      case .rss(let t, let bytes):
        lastRSS = bytes
        rssHistory.append((t, bytes))
        rssTimeline.note(t > start ? t - start : 0, bytes)
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
    // RSS beside the heap: the last sample at or before the moment.
    let peakTime = replay.totals.peakTimeNs
    heapTimeline.note(lastTime - start, replay.liveBytes)
    heapTimeline.notePeak(peakTime > start ? peakTime - start : 0, replay.totals.peakBytes)
    let rssAtPeak = rssHistory.last { $0.time <= peakTime }?.bytes
    if wanted.contains(.end) {
      captured[.end] = PointCapture(
        point: .end, live: replay.liveBySite, elapsedNs: lastTime - start, rssBytes: lastRSS)
    }
    if wanted.contains(.peak) {
      captured[.peak] = PointCapture(
        point: .peak, live: replay.liveBySiteAtPeak, elapsedNs: peakTime > start ? peakTime - start : 0,
        rssBytes: rssAtPeak)
    }
    var warnings = reader.warnings
    if process == nil { warnings.append("the trace has no PROCESS record") }
    if end == nil && !reader.isTruncated && !reader.isCorrupt && lastExit?.0 != .exec {
      warnings.append("the trace has no END record: the writer did not finish it (killed, or still running)")
    }
    if let damagedEvents { warnings.append("damaged events: \(damagedEvents); the rest of that record was skipped") }
    if replay.undefinedInfos > 0 {
      warnings.append("\(replay.undefinedInfos) events name an allocation info the trace never defined; skipped")
    }
    if replay.impossibleEvents > 0 {
      warnings.append("\(replay.impossibleEvents) events are impossible (a block at address 0, a size past any address space, a free at a site holding nothing); skipped: the trace is damaged")
    }
    if let end, end.lostBytes > 0 {
      warnings.append("\(end.lostBytes) bytes of the ring were unreadable: a thread died while writing a record")
    }
    if let end, end.stackTableFull > 0 {
      warnings.append("\(end.stackTableFull) events have no stack: the shim's stack table was full")
    }
    let loaded = modules.map {
      LoadedModule(path: $0.module.path, base: $0.module.base, buildID: $0.module.buildID, unloaded: $0.isUnloaded)
    }
    return TraceSummary(
      path: path, header: reader.header, process: process, totals: replay.finalTotals,
      endKind: end?.kind ?? lastExit?.0 ?? .unknown, endStatus: end?.status ?? lastExit?.1 ?? 0,
      isComplete: end != nil, durationNs: lastTime - reader.header.startMonoNs, events: events + replay.eventCalls,
      stacks: stackRecords.count, threads: threads.count, modules: loaded.count, modulesUnloaded: unloaded,
      loadedModules: loaded,
      rssSamples: rssSamples, peakRSSBytes: peakRSS, end: end, snapshots: snapshots, rssAtPeakBytes: rssAtPeak,
      rssAtEndBytes: lastRSS, sampleRate: sampleRate, warnings: warnings)
  }
}
