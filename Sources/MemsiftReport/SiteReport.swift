import MemsiftAnalysis
import MemsiftFormat
import MemsiftSymbols

/// How sites are grouped in a report.
public enum SiteGrouping: String, CaseIterable, Sendable {
  case stack, function, line, file, module
}

/// The figure sites are ranked by.
public enum SiteMetric: String, CaseIterable, Sendable {
  case peak, leaked, allocated, allocations, temporary

  func value(_ s: SiteStats) -> UInt64 {
    switch self {
    case .peak: return s.peakBytes
    case .leaked: return s.leakedBytes
    case .allocated: return s.bytesAllocated
    case .allocations: return s.allocations
    case .temporary: return s.temporaryAllocations
    }
  }
}

/// One row of a report: a site (or a group of sites) with its figures and frames.
public struct SiteRow: Sendable {
  public var stats: SiteStats
  /// Innermost first; for grouped views, the frames of the group's largest stack.
  public var frames: [SymbolizedFrame]
}

/// Turns a trace's per-stack figures into ranked, symbolized rows.
///
/// For `--group-by stack`, only the rows that are shown are symbolized;
/// other groupings need every stack's innermost frames.
public struct SiteReportBuilder {
  public let analysis: TraceAnalysis
  public let symbolizer: Symbolizer
  public let grouping: SiteGrouping
  public let keepAllocatorFrames: Bool
  public let view: FrameView
  private let python: PythonFrames

  public init(
    analysis: TraceAnalysis, symbolizer: Symbolizer, grouping: SiteGrouping, keepAllocatorFrames: Bool,
    view: FrameView = .merged
  ) {
    self.analysis = analysis
    self.symbolizer = symbolizer
    self.grouping = grouping
    self.keepAllocatorFrames = keepAllocatorFrames
    self.view = view
    python = PythonFrames(codes: analysis.codes)
  }

  /// The frames of a stack in this builder's view, native ones symbolized
  /// against the modules loaded when it was captured.
  public func frames(of stack: StackID) -> [SymbolizedFrame] {
    let addresses = analysis.stacks[stack] ?? []
    let all = addresses.flatMap { address -> [SymbolizedFrame] in
      guard let module = analysis.module(containing: address, inStack: stack) else { return [Symbolizer.unknown(address)] }
      return symbolizer.symbolize(address, in: ModuleImage(module.module))
    }
    let native = keepAllocatorFrames ? all : AllocatorFrames.trimmed(all)
    return view.frames(native: native, runs: python.runs(analysis.pythonStacks[stack] ?? []))
  }

  /// What a row shows for `stack`: all its frames with `--group-by stack`,
  /// else the one frame that names its group. The innermost Python frame
  /// names Python code whatever the native frames are, so those stacks need
  /// no native symbolization to be grouped.
  public func siteFrames(of stack: StackID) -> [SymbolizedFrame] {
    guard grouping != .stack else { return frames(of: stack) }
    if grouping != .module, view != .native,
      let innermost = analysis.pythonStacks[stack]?.first(where: { !$0.isIncomplete })
    {
      return [python.frame(innermost)]
    }
    return grouped(frames(of: stack))
  }

  /// Rows ranked by `metric` (largest first), `top` of them (nil: all).
  public func rows(by metric: SiteMetric, top: Int?) -> [SiteRow] {
    let sites = analysis.sites.filter { $0.value.allocations > 0 }
    if grouping == .stack {
      var ranked = sites.sorted { (metric.value($0.value), $1.key.rawValue) > (metric.value($1.value), $0.key.rawValue) }
      if let top { ranked = Array(ranked.prefix(top)) }
      return ranked.map { SiteRow(stats: $0.value, frames: frames(of: $0.key)) }
    }
    var groups: [String: (stats: SiteStats, frames: [SymbolizedFrame], weight: UInt64)] = [:]
    for (stack, stats) in sites {
      let frames = siteFrames(of: stack)
      let key = groupKey(frames.first)
      let weight = metric.value(stats)
      var g = groups[key] ?? (SiteStats(), frames, weight)
      g.stats += stats
      if weight > g.weight { (g.frames, g.weight) = (frames, weight) }
      groups[key] = g
    }
    var ranked = groups.sorted { (metric.value($0.value.stats), $1.key) > (metric.value($1.value.stats), $0.key) }
    if let top { ranked = Array(ranked.prefix(top)) }
    return ranked.map { SiteRow(stats: $0.value.stats, frames: $0.value.frames) }
  }

  /// The identity of a site that survives ASLR and rebuilds: for `stack`,
  /// every frame's function, file, line and module name (module+offset when
  /// unnamed); for the other groupings, the innermost frame's key.
  public func matchKey(_ frames: [SymbolizedFrame]) -> String {
    guard grouping == .stack else { return groupKey(namingFrame(frames)) }
    return frames.map { f in
      guard let function = f.function else { return f.moduleOffsetName }
      return "\(function)|\(f.file ?? "")|\(f.line ?? 0)|\(f.moduleName)"
    }.joined(separator: "\n")
  }

  private func groupKey(_ frame: SymbolizedFrame?) -> String {
    guard let f = frame else { return "?" }
    let where_ = f.function ?? "\(f.module)+0x\(String(f.offset, radix: 16))"
    switch grouping {
    case .stack, .function: return where_
    case .line: return f.file.map { "\($0):\(f.line ?? 0)" } ?? where_
    case .file: return f.file ?? f.module
    case .module: return f.module
    }
  }

  /// The frame a group is named by: the innermost Python frame when there
  /// is one (the line of Python code that allocated, as tracemalloc names
  /// it), else the innermost frame. Modules are always native.
  private func namingFrame(_ frames: [SymbolizedFrame]) -> SymbolizedFrame? {
    guard grouping != .module else { return frames.first }
    return frames.first { $0.kind == .python } ?? frames.first
  }

  /// A group shows the frame that names it.
  private func grouped(_ frames: [SymbolizedFrame]) -> [SymbolizedFrame] {
    namingFrame(frames).map { [$0] } ?? []
  }
}
