/// Brendan Gregg's collapsed-stack format, which flamegraph.pl, inferno and
/// speedscope read: one line per stack, frames outermost first joined by
/// `;`, a space, and the stack's own figure.
public enum CollapsedStacks {
  public static func text(_ tree: FlameTree, metric: FlameMetric) -> String {
    let index = FlameMetric.allCases.firstIndex(of: metric)!
    return tree.paths(metric: index)
      .map { $0.names.joined(separator: ";") + " \($0.value)\n" }
      .sorted()
      .joined()
  }
}
