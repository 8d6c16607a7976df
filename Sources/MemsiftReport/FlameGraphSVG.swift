/// A static flame graph as one SVG file (root at the bottom, callees above,
/// children in name order as flamegraph.pl draws them); every frame has a
/// tooltip with its figure and share.
public enum FlameGraphSVG {
  static let width = 1200.0
  static let rowHeight = 16.0
  static let top = 40.0

  public static func render(_ tree: FlameTree, metric: FlameMetric, title: String) -> String {
    let index = FlameMetric.allCases.firstIndex(of: metric)!
    let total = tree.nodes[0].values[index]
    var rects: [String] = []
    var depth = 0
    func draw(_ node: Int, x: Double, level: Int) {
      let n = tree.nodes[node]
      let value = n.values[index]
      let w = total == 0 ? 0 : Double(value) / Double(total) * width
      guard w >= 0.1 else { return }
      depth = max(depth, level)
      rects.append(frame(n, value: value, total: total, metric: metric, x: x, level: level, w: w))
      var at = x
      for child in n.children.sorted(by: { tree.nodes[$0].name < tree.nodes[$1].name }) {
        draw(child, x: at, level: level + 1)
        at += total == 0 ? 0 : Double(tree.nodes[child].values[index]) / Double(total) * width
      }
    }
    draw(0, x: 0, level: 0)
    let height = top + Double(depth + 1) * rowHeight + 10
    // Rows were laid out top-down; flip them so the root sits at the bottom.
    let body = rects.joined(separator: "\n")
    return """
      <?xml version="1.0" encoding="UTF-8"?>
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
      viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Verdana, sans-serif" font-size="12">
      <rect width="100%" height="100%" fill="#fdfdf6"/>
      <text x="\(width / 2)" y="24" text-anchor="middle" font-size="16">\(HTMLText.escape(title))</text>
      <g transform="translate(0,\(height - 10)) scale(1,-1)">
      \(body)
      </g>
      </svg>

      """
  }

  private static func frame(
    _ n: FlameTree.Node, value: UInt64, total: UInt64, metric: FlameMetric, x: Double, level: Int, w: Double
  ) -> String {
    let y = Double(level) * rowHeight
    let share = total == 0 ? 0 : Double(value) * 100 / Double(total)
    let figure = metric.isBytes ? "\(ByteFormat.bytes(value)) (\(value) B)" : ByteFormat.count(value) + " allocations"
    let tip = "\(n.name)\n\(figure), \(String(format1: share))%" + (n.detail.isEmpty ? "" : "\n" + n.detail)
    let chars = Int((w - 6) / 7)
    let label = chars < 3 ? "" : (n.name.count <= chars ? n.name : String(n.name.prefix(chars - 2)) + "..")
    // The text is flipped back upright inside the flipped group.
    return """
      <g><title>\(HTMLText.escape(tip))</title><rect x="\(fmt(x))" y="\(fmt(y))" width="\(fmt(w))" \
      height="\(fmt(rowHeight - 1))" fill="\(color(n.name))" rx="2"/>\
      \(label.isEmpty ? "" : "<text x=\"\(fmt(x + 3))\" y=\"\(fmt(-y - 4))\" transform=\"scale(1,-1)\">\(HTMLText.escape(label))</text>")</g>
      """
  }

  /// A warm colour from the name, stable across runs, as flamegraph.pl's "hot" palette.
  static func color(_ name: String) -> String {
    var h: UInt32 = 2_166_136_261
    for b in name.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
    let r = 205 + Int(h % 50), g = 80 + Int((h >> 8) % 130), b = 40 + Int((h >> 16) % 40)
    return "rgb(\(r),\(g),\(b))"
  }

  static func fmt(_ v: Double) -> String { String(Double(Int(v * 100)) / 100) }
}
