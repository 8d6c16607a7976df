import MemsiftSymbols

/// Which frames a stack shows when the program ran Python code.
public enum FrameView: String, CaseIterable, Sendable {
  /// Native frames, with each evaluation-loop frame replaced by the Python
  /// frames it was running: reads from the Python line down to the allocator.
  case merged
  /// Python frames only, under the native frame that allocated.
  case python
  /// Native frames only, as unwound.
  case native

  /// Names of the interpreter's evaluation loop (and its compiler-split
  /// `.cold` part): each native call of it ran one run of Python frames.
  static func isEvaluationLoop(_ frame: SymbolizedFrame) -> Bool {
    frame.function?.hasPrefix("_PyEval_EvalFrameDefault") ?? false
  }

  /// The stack in this view. `native` is innermost first with allocator
  /// frames already removed; `runs` are the Python runs, innermost first.
  func frames(native: [SymbolizedFrame], runs: [[SymbolizedFrame]]) -> [SymbolizedFrame] {
    if runs.isEmpty || self == .native { return native }
    if self == .python { return Array(native.prefix(1)) + runs.joined() }
    var merged: [SymbolizedFrame] = []
    var next = 0
    for frame in native {
      if Self.isEvaluationLoop(frame) && next < runs.count {
        merged += runs[next]
        next += 1
      } else {
        merged.append(frame)
      }
    }
    // Runs with no evaluation frame left to take them (the native stack was
    // cut at its depth limit) go below the last one, in order.
    for run in runs[next...] { merged += run }
    return merged
  }
}
