import MemsiftAnalysis
import MemsiftFormat
import MemsiftSymbols

/// The figures a flame graph can be drawn by, in the order a `FlameTree`
/// keeps them in each node's `values`.
public enum FlameMetric: String, CaseIterable, Sendable {
  case peak, leaked, allocated, allocations

  public var siteMetric: SiteMetric {
    switch self {
    case .peak: return .peak
    case .leaked: return .leaked
    case .allocated: return .allocated
    case .allocations: return .allocations
    }
  }

  /// Whether the figure is bytes (else a count).
  public var isBytes: Bool { self != .allocations }
}

/// Stacks merged into a tree, outermost frame at the root: what flame
/// graphs, the HTML report and the collapsed-stack export draw or list.
/// Each node holds several figures at once (one per metric, or growth and
/// shrink for a diff), so one tree serves every view.
public struct FlameTree: Sendable {
  public struct Node: Sendable {
    /// The frame's name as shown: the function, `?` plus module+offset when
    /// unknown; a Python frame carries its file:line, the unit of Python code.
    public var name: String
    /// file:line and module, for a tooltip.
    public var detail: String
    public var values: [UInt64]
    public var children: [Int] = []
    /// Child index by name, while building.
    var childByName: [String: Int] = [:]
  }

  /// nodes[0] is the root, named "all".
  public private(set) var nodes: [Node]
  /// How many figures each node holds.
  public let width: Int

  public init(width: Int) {
    self.width = width
    nodes = [Node(name: "all", detail: "", values: Array(repeating: 0, count: width))]
  }

  /// Adds a stack (innermost first, as `SiteReportBuilder.frames(of:)` gives it) with its figures.
  public mutating func add(frames: [SymbolizedFrame], values: [UInt64]) {
    precondition(values.count == width)
    var at = 0
    add(values, to: 0)
    for frame in frames.reversed() {
      let name = Self.name(of: frame)
      if let child = nodes[at].childByName[name] {
        at = child
      } else {
        nodes.append(Node(name: name, detail: Self.detail(of: frame), values: Array(repeating: 0, count: width)))
        let child = nodes.count - 1
        nodes[at].children.append(child)
        nodes[at].childByName[name] = child
        at = child
      }
      add(values, to: at)
    }
  }

  private mutating func add(_ values: [UInt64], to node: Int) {
    for i in 0..<width { nodes[node].values[i] += values[i] }
  }

  /// A frame's name in a flame graph and in collapsed stacks (which reserve `;`).
  public static func name(of f: SymbolizedFrame) -> String {
    var name = f.function ?? f.moduleOffsetName
    if f.function != nil, f.kind == .python, let file = f.file {
      let base = file.split(separator: "/").last.map(String.init) ?? file
      name += " \(base):\(f.line ?? 0)"
    }
    return name.replacingOccurrences(of: ";", with: ":")
  }

  static func detail(of f: SymbolizedFrame) -> String {
    let at = f.file.map { "\($0):\(f.line ?? 0)" } ?? "0x\(String(f.offset, radix: 16))"
    return "\(at) — \(f.module)" + (f.inlined ? " (inlined)" : "")
  }

  /// The tree of one trace's sites, with one figure per `FlameMetric` (in its order).
  /// `progress`: called with (stacks done, stacks in all) as they are symbolized.
  public static func sites(_ builder: SiteReportBuilder, progress: ((UInt64, UInt64) -> Void)? = nil) -> FlameTree {
    var tree = FlameTree(width: FlameMetric.allCases.count)
    let sites = builder.analysis.sites.filter { $0.value.allocations > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
    for (done, (stack, stats)) in sites.enumerated() {
      tree.add(frames: builder.frames(of: stack), values: FlameMetric.allCases.map { $0.siteMetric.value(stats) })
      progress?(UInt64(done + 1), UInt64(sites.count))
    }
    return tree
  }

  /// The tree of a diff: figure 0 is the bytes sites grew by, figure 1 the bytes they shrank by.
  public static func diff(_ rows: [DiffRow]) -> FlameTree {
    var tree = FlameTree(width: 2)
    for row in rows {
      let d = row.bytesDiff
      tree.add(frames: row.frames, values: [d > 0 ? UInt64(d) : 0, d < 0 ? UInt64(-d) : 0])
    }
    return tree
  }

  /// The tree without the nodes whose every figure is below `fraction` of
  /// the root's: what they hold stays in their parent's total, so widths
  /// stay exact while a trace of a hundred thousand stacks draws quickly.
  public func pruned(below fraction: Double) -> FlameTree {
    let limits = nodes[0].values.map { UInt64(Double($0) * fraction) }
    var out = FlameTree(width: width)
    out.nodes[0].values = nodes[0].values
    func copy(_ from: Int, to: Int) {
      for child in nodes[from].children {
        let node = nodes[child]
        guard zip(node.values, limits).contains(where: { $0 > 0 && $0 >= $1 }) else { continue }
        out.nodes.append(Node(name: node.name, detail: node.detail, values: node.values))
        let index = out.nodes.count - 1
        out.nodes[to].children.append(index)
        copy(child, to: index)
      }
    }
    copy(0, to: 0)
    return out
  }

  /// Every path from the root with what its last node holds itself (its
  /// figure `metric` minus its children's), outermost name first: the lines
  /// of a collapsed-stack file. Paths holding nothing themselves are left out.
  public func paths(metric: Int) -> [(names: [String], value: UInt64)] {
    var out: [(names: [String], value: UInt64)] = []
    var path: [String] = []
    func walk(_ i: Int) {
      let node = nodes[i]
      let inChildren = node.children.reduce(0) { $0 + nodes[$1].values[metric] }
      if i != 0 { path.append(node.name) }
      if node.values[metric] > inChildren && i != 0 { out.append((path, node.values[metric] - inChildren)) }
      for child in node.children where nodes[child].values[metric] > 0 { walk(child) }
      if i != 0 { path.removeLast() }
    }
    walk(0)
    return out
  }
}
