import MemsiftFormat

/// Names Python frames from a trace's CODE records: the code object's
/// qualified name, its file, and the line of the executing instruction,
/// computed from the code object's line table (decoded once per code object).
public final class PythonFrames {
  private let codes: [UInt32: PythonCode]
  private var tables: [UInt32: PythonLineTable] = [:]

  public init(codes: [UInt32: PythonCode]) { self.codes = codes }

  /// The frame for `ref`. `address` is the code id and `offset` the
  /// instruction's byte offset, so two frames are equal only when both are.
  public func frame(_ ref: PythonFrameRef) -> SymbolizedFrame {
    let byteOffset = Int(ref.instruction) * 2
    guard let code = codes[ref.code] else {
      return SymbolizedFrame(
        function: nil, file: nil, line: nil, module: "python", address: UInt64(ref.code),
        offset: UInt64(max(0, byteOffset)), inlined: false, kind: .python)
    }
    return SymbolizedFrame(
      function: code.name, file: code.file, line: line(of: code, byteOffset: byteOffset), module: code.file,
      address: UInt64(ref.code), offset: UInt64(max(0, byteOffset)), inlined: false, kind: .python)
  }

  /// A frame that has not started (instruction -1) is on its `def` line,
  /// as CPython reports it.
  private func line(of code: PythonCode, byteOffset: Int) -> Int? {
    guard byteOffset >= 0 else { return Int(code.firstLine) }
    if let table = tables[code.id] { return table.line(atByteOffset: byteOffset) }
    let table = PythonLineTable(firstLine: Int(code.firstLine), table: code.lineTable)
    tables[code.id] = table
    return table.line(atByteOffset: byteOffset)
  }

  /// `refs` (innermost first) cut into the runs that each native call of the
  /// evaluation loop executed: a run ends at its entry frame. Incomplete
  /// frames are left out; a run of only those stays, empty, in its place.
  public func runs(_ refs: [PythonFrameRef]) -> [[SymbolizedFrame]] {
    var runs: [[SymbolizedFrame]] = []
    var run: [SymbolizedFrame] = []
    for ref in refs {
      if !ref.isIncomplete { run.append(frame(ref)) }
      if ref.isEntry {
        runs.append(run)
        run = []
      }
    }
    if !run.isEmpty { runs.append(run) }
    return runs
  }
}
