import MemsiftSymbols
import Testing

@testable import MemsiftReport

private func native(_ name: String) -> SymbolizedFrame {
  SymbolizedFrame(function: name, file: nil, line: nil, module: "libpython", address: 0, offset: 0, inlined: false)
}

private func py(_ name: String) -> SymbolizedFrame {
  SymbolizedFrame(
    function: name, file: "app.py", line: 1, module: "app.py", address: 0, offset: 0, inlined: false, kind: .python)
}

private func names(_ frames: [SymbolizedFrame]) -> [String] { frames.map { $0.function ?? "?" } }

/// A stack of two evaluation-loop calls: the inner ran handle and parse (a
/// Python-to-Python call stays in one loop), the outer ran main and called
/// the C builtin sorted, which called back into Python.
private let stack = [
  native("bytes_repeat"), native("_PyEval_EvalFrameDefault"), native("builtin_sorted"),
  native("_PyEval_EvalFrameDefault.cold"), native("Py_RunMain"), native("main"),
]
private let runs = [[py("parse"), py("handle")], [py("main")]]

@Test func mergedPutsEachRunWhereItsEvaluationLoopWas() {
  #expect(
    names(FrameView.merged.frames(native: stack, runs: runs))
      == ["bytes_repeat", "parse", "handle", "builtin_sorted", "main", "Py_RunMain", "main"])
}

@Test func pythonShowsTheAllocatingNativeFrameThenPythonOnly() {
  #expect(names(FrameView.python.frames(native: stack, runs: runs)) == ["bytes_repeat", "parse", "handle", "main"])
}

@Test func nativeLeavesTheStackAsUnwound() {
  #expect(FrameView.native.frames(native: stack, runs: runs) == stack)
}

@Test func runsWithoutAnEvaluationFrameLeftGoBelowInOrder() {
  // The native stack was cut at its depth limit after the first loop.
  let cut = Array(stack.prefix(3))
  let more = runs + [[py("<module>")]]
  #expect(
    names(FrameView.merged.frames(native: cut, runs: more))
      == ["bytes_repeat", "parse", "handle", "builtin_sorted", "main", "<module>"])
}

@Test func anEmptyRunStillTakesItsEvaluationFrame() {
  // The inner loop ran only a frame that had not started (left out).
  #expect(
    names(FrameView.merged.frames(native: stack, runs: [[], [py("main")]]))
      == ["bytes_repeat", "builtin_sorted", "main", "Py_RunMain", "main"])
}

@Test func aStackWithoutPythonIsTheSameInEveryView() {
  for view in FrameView.allCases { #expect(view.frames(native: stack, runs: []) == stack) }
}
