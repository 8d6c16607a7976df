import MemsiftSymbols

extension SymbolizedFrame {
  /// The module's file name, without its directory.
  var moduleName: String { module.split(separator: "/").last.map(String.init) ?? module }

  /// "libfoo.so+0x1f3": how a frame is named when no function is known.
  var moduleOffsetName: String { "\(moduleName)+0x\(String(offset, radix: 16))" }
}
