import CLibdw
import MemsiftFormat

#if canImport(Glibc)
  import Glibc
#endif

/// One frame of a symbolized stack. A return address inside inlined code
/// expands into several frames: the inlined ones first (`inlined` true),
/// then the function they were inlined into.
public struct SymbolizedFrame: Sendable, Equatable, Hashable {
  /// A machine-code frame, or a frame of the Python interpreter's own stack.
  public enum Kind: String, Sendable, Hashable {
    case native, python
  }

  /// Demangled unless the symbolizer was asked to keep raw names; nil when unknown.
  public var function: String?
  public var file: String?
  public var line: Int?
  /// The module's path as the trace recorded it.
  public var module: String
  /// The return address (as recorded).
  public var address: UInt64
  /// The address relative to the module's load bias.
  public var offset: UInt64
  public var inlined: Bool
  public var kind: Kind

  public init(
    function: String?, file: String?, line: Int?, module: String, address: UInt64, offset: UInt64, inlined: Bool,
    kind: Kind = .native
  ) {
    self.kind = kind
    self.function = function
    self.file = file
    self.line = line
    self.module = module
    self.address = address
    self.offset = offset
    self.inlined = inlined
  }
}

/// A module as one process had it loaded.
public struct ModuleImage: Hashable, Sendable {
  public var path: String
  public var base: UInt64
  public var buildID: [UInt8]
  public var segments: [Segment]

  public init(path: String, base: UInt64, buildID: [UInt8], segments: [Segment]) {
    self.path = path
    self.base = base
    self.buildID = buildID
    self.segments = segments
  }

  public init(_ module: Module) {
    self.init(path: module.path, base: module.base, buildID: module.buildID, segments: module.segments)
  }

  /// Whether the module's mapped segments cover `address`.
  public func covers(_ address: UInt64) -> Bool {
    segments.contains { address >= base &+ $0.vaddr && address < base &+ $0.vaddr &+ $0.memsz }
  }

  public static func == (a: ModuleImage, b: ModuleImage) -> Bool { a.path == b.path && a.base == b.base }
  public func hash(into h: inout Hasher) {
    h.combine(path)
    h.combine(base)
  }
}

/// Symbolizes return addresses with elfutils libdwfl: function, file:line
/// of the call (the address minus one), inlined frames, separate debug
/// files (build-id under the debug directories, .gnu_debuglink, debuginfod
/// when DEBUGINFOD_URLS is set). Each distinct address is symbolized once.
public final class Symbolizer {
  public let demangles: Bool
  /// libdwfl keeps a `char **` to the search path: it must stay put.
  private let debugPath: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
  private let callbacks: UnsafeMutablePointer<Dwfl_Callbacks>
  private var images: [ModuleImage: ImageSymbolizer?] = [:]
  private var cache: [CacheKey: [SymbolizedFrame]] = [:]
  /// Modules that could not be used (missing, or not the file the trace
  /// saw), one line each, then one line naming the modules without debug info.
  public var warnings: [String] {
    let bare = withoutDebugInfo.sorted()
    guard !bare.isEmpty else { return unusable }
    return unusable + [
      "no debug info for \(bare.joined(separator: ", ")): frames there have no file:line "
        + "(install their debug files, or pass --debug-dir)"
    ]
  }
  private var unusable: [String] = []
  private var withoutDebugInfo: Set<String> = []

  private struct CacheKey: Hashable {
    var image: ModuleImage
    var address: UInt64
  }

  /// - Parameters:
  ///   - debugDirectories: extra roots searched for separate debug files
  ///     (each may hold a `.build-id/` tree), after `/usr/lib/debug`.
  ///   - demangle: false keeps raw (mangled) names.
  public init(debugDirectories: [String] = [], demangle: Bool = true) {
    demangles = demangle
    // "+": also look next to the module; ".debug": its .debug subdirectory.
    let path = (["+", ".debug", "/usr/lib/debug"] + debugDirectories).joined(separator: ":")
    debugPath = .allocate(capacity: 1)
    debugPath.initialize(to: strdup(path))
    callbacks = .allocate(capacity: 1)
    callbacks.initialize(to: Dwfl_Callbacks())
    callbacks.pointee.find_elf = dwfl_build_id_find_elf
    callbacks.pointee.find_debuginfo = dwfl_standard_find_debuginfo
    callbacks.pointee.section_address = dwfl_offline_section_address
    callbacks.pointee.debuginfo_path = debugPath
  }

  deinit {
    images.values.forEach { $0?.close() }
    callbacks.deallocate()
    free(debugPath.pointee)
    debugPath.deallocate()
  }

  /// The frames for a return address inside `image`, innermost first.
  public func symbolize(_ address: UInt64, in image: ModuleImage) -> [SymbolizedFrame] {
    let key = CacheKey(image: image, address: address)
    if let hit = cache[key] { return hit }
    let frames = imageSymbolizer(for: image)?.frames(at: address, demangle: demangles)
      ?? [SymbolizedFrame(function: nil, file: nil, line: nil, module: image.path, address: address,
                          offset: address &- image.base, inlined: false)]
    cache[key] = frames
    return frames
  }

  /// A frame for an address no recorded module covers.
  public static func unknown(_ address: UInt64) -> SymbolizedFrame {
    SymbolizedFrame(function: nil, file: nil, line: nil, module: "?", address: address, offset: address, inlined: false)
  }

  private func imageSymbolizer(for image: ModuleImage) -> ImageSymbolizer? {
    if let known = images[image] { return known }
    var made: ImageSymbolizer?
    if image.path.hasPrefix("/") {
      switch ImageSymbolizer.open(image, callbacks: callbacks) {
      case .success(let s):
        made = s
        if !s.hasDebugInfo { withoutDebugInfo.insert(String(image.path.split(separator: "/").last ?? "")) }
      case .failure(let reason): unusable.append("\(image.path): \(reason); its frames show module+offset")
      }
    }
    images[image] = made
    return made
  }
}

/// One module reported to its own Dwfl at the address it had.
final class ImageSymbolizer {
  private let dwfl: OpaquePointer
  private let module: OpaquePointer
  private let image: ModuleImage

  enum OpenError: Error, CustomStringConvertible {
    case message(String)
    var description: String { if case .message(let m) = self { return m } else { return "" } }
  }

  private init(dwfl: OpaquePointer, module: OpaquePointer, image: ModuleImage) {
    self.dwfl = dwfl
    self.module = module
    self.image = image
  }

  static func open(_ image: ModuleImage, callbacks: UnsafeMutablePointer<Dwfl_Callbacks>) -> Result<ImageSymbolizer, OpenError> {
    guard access(image.path, R_OK) == 0 else { return .failure(.message("the file is missing")) }
    guard let dwfl = dwfl_begin(callbacks) else { return .failure(.message("libdwfl: cannot start")) }
    dwfl_report_begin(dwfl)
    let module = dwfl_report_elf(dwfl, image.path, image.path, -1, image.base, false)
    dwfl_report_end(dwfl, nil, nil)
    guard let module else {
      dwfl_end(dwfl)
      return .failure(.message("not an ELF file libdwfl can read"))
    }
    if !image.buildID.isEmpty {
      var bits: UnsafePointer<UInt8>?
      var vaddr: GElf_Addr = 0
      let n = dwfl_module_build_id(module, &bits, &vaddr)
      let fileID = n > 0 && bits != nil ? Array(UnsafeBufferPointer(start: bits, count: Int(n))) : []
      if fileID != image.buildID {
        dwfl_end(dwfl)
        return .failure(.message("the file changed since the trace (build-id differs)"))
      }
    }
    return .success(ImageSymbolizer(dwfl: dwfl, module: module, image: image))
  }

  func close() { dwfl_end(dwfl) }

  /// Whether libdwfl found DWARF for the module (in it or in a separate file).
  private(set) lazy var hasDebugInfo: Bool = {
    var bias: Dwarf_Addr = 0
    return dwfl_module_getdwarf(module, &bias) != nil
  }()

  func frames(at address: UInt64, demangle: Bool) -> [SymbolizedFrame] {
    // A return address: the call is the instruction before it.
    let pc = address &- 1
    func frame(_ function: String?, _ file: String?, _ line: Int?, inlined: Bool) -> SymbolizedFrame {
      SymbolizedFrame(
        function: function.map { demangle ? Demangler.demangle($0) : $0 }, file: file, line: line,
        module: image.path, address: address, offset: address &- image.base, inlined: inlined)
    }
    var symbolName: String?
    var offset: GElf_Off = 0
    var sym = GElf_Sym()
    if let name = dwfl_module_addrinfo(module, pc, &offset, &sym, nil, nil, nil) {
      symbolName = String(cString: name)
    }
    var file: String?
    var line: Int?
    var bias: Dwarf_Addr = 0
    // The compile unit holding pc. libdw 0.188 finds it through
    // .debug_aranges only; swiftc and clang do not emit that section, so
    // fall back to asking each unit whether it covers pc.
    guard let cu = dwfl_module_addrdie(module, pc, &bias) ?? compileUnit(containing: pc, bias: &bias) else {
      return [frame(symbolName, file, line, inlined: false)]
    }
    if let source = dwarf_getsrc_die(cu, pc &- bias) {
      var lineNumber: Int32 = 0
      if let f = dwarf_linesrc(source, nil, nil), dwarf_lineno(source, &lineNumber) == 0 {
        file = String(cString: f)
        line = Int(lineNumber)
      }
    }
    // The chain of scopes at pc, innermost first: inlined subroutines, then
    // the subprogram they were inlined into.
    var scopes: UnsafeMutablePointer<Dwarf_Die>?
    let count = dwarf_getscopes(cu, pc &- bias, &scopes)
    defer { free(scopes) }
    guard count > 0, let scopes else { return [frame(symbolName, file, line, inlined: false)] }
    // dwarf_getscopes continues an inlined subroutine into its abstract
    // definition; the physically enclosing scopes (the caller it was
    // inlined into) come from dwarf_getscopes_die on the innermost function.
    guard
      var innermost = (0..<Int(count)).lazy.map({ scopes[$0] }).first(where: {
        var die = $0
        let tag = dwarf_tag(&die)
        return tag == Int32(DW_TAG_inlined_subroutine) || tag == Int32(DW_TAG_subprogram)
      })
    else { return [frame(symbolName, file, line, inlined: false)] }
    var nested: UnsafeMutablePointer<Dwarf_Die>?
    let nestedCount = dwarf_getscopes_die(&innermost, &nested)
    defer { free(nested) }
    guard nestedCount > 0, let nested else { return [frame(symbolName, file, line, inlined: false)] }
    var chain: [UnsafeMutablePointer<Dwarf_Die>] = []
    for i in 0..<Int(nestedCount) {
      let tag = dwarf_tag(nested + i)
      if tag == Int32(DW_TAG_inlined_subroutine) { chain.append(nested + i) }
      if tag == Int32(DW_TAG_subprogram) {
        chain.append(nested + i)
        break
      }
    }
    guard !chain.isEmpty else { return [frame(symbolName, file, line, inlined: false)] }
    var frames: [SymbolizedFrame] = []
    var location = (file, line)
    for (k, die) in chain.enumerated() {
      let isInlined = dwarf_tag(die) == Int32(DW_TAG_inlined_subroutine)
      let outermost = k == chain.count - 1
      let name = Self.name(of: die) ?? (outermost ? symbolName : nil)
      frames.append(frame(name, location.0, location.1, inlined: isInlined))
      if isInlined { location = Self.callSite(of: die, cu: cu) }
    }
    return frames
  }

  /// Walks the module's compile units for the one whose ranges hold `pc`.
  private func compileUnit(containing pc: UInt64, bias: inout Dwarf_Addr) -> UnsafeMutablePointer<Dwarf_Die>? {
    var cu: UnsafeMutablePointer<Dwarf_Die>? = nil
    while let next = dwfl_module_nextcu(module, cu, &bias) {
      if dwarf_haspc(next, pc &- bias) == 1 { return next }
      cu = next
    }
    return nil
  }

  /// The linkage (mangled) name when there is one, else the plain name.
  private static func name(of die: UnsafeMutablePointer<Dwarf_Die>) -> String? {
    var attr = Dwarf_Attribute()
    for code in [UInt32(DW_AT_linkage_name), UInt32(DW_AT_MIPS_linkage_name)] {
      if dwarf_attr_integrate(die, code, &attr) != nil, let s = dwarf_formstring(&attr) { return String(cString: s) }
    }
    return dwarf_diename(die).map { String(cString: $0) }
  }

  /// Where an inlined subroutine was called from: DW_AT_call_file/line.
  private static func callSite(of die: UnsafeMutablePointer<Dwarf_Die>, cu: UnsafeMutablePointer<Dwarf_Die>) -> (String?, Int?) {
    var attr = Dwarf_Attribute()
    var value: Dwarf_Word = 0
    var line: Int?
    if dwarf_attr(die, UInt32(DW_AT_call_line), &attr) != nil, dwarf_formudata(&attr, &value) == 0 { line = Int(value) }
    var file: String?
    if dwarf_attr(die, UInt32(DW_AT_call_file), &attr) != nil, dwarf_formudata(&attr, &value) == 0 {
      var files: OpaquePointer?
      var nfiles: Int = 0
      if dwarf_getsrcfiles(cu, &files, &nfiles) == 0, let files, Int(value) < nfiles,
        let f = dwarf_filesrc(files, Int(value), nil, nil)
      {
        file = String(cString: f)
      }
    }
    return (file, line)
  }
}
