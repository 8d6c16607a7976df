import Foundation
import MemsiftSymbols
import Testing

/// Compiles `Fixtures/where.c` and runs it: it prints its load bias and two
/// return addresses whose source lines are known.
func runWhere(flags: [String]) throws -> (exe: String, bias: UInt64, plain: UInt64, inlined: UInt64) {
  let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/where.c").path
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("memsift-sym-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  let exe = dir.appendingPathComponent("where").path
  let cc = Process()
  cc.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
  cc.arguments = flags + ["-o", exe, source]
  try cc.run()
  cc.waitUntilExit()
  try #require(cc.terminationStatus == 0)
  let run = Process()
  let pipe = Pipe()
  run.executableURL = URL(fileURLWithPath: exe)
  run.standardOutput = pipe
  try run.run()
  let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  run.waitUntilExit()
  let fields = out.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt64($0, radix: 16) }
  try #require(fields.count == 3, "output: \(out)")
  return (exe, fields[0], fields[1], fields[2])
}

@Test func aReturnAddressNamesTheFunctionFileAndLineOfTheCall() throws {
  let w = try runWhere(flags: ["-O2", "-g"])
  let image = ModuleImage(path: w.exe, base: w.bias, buildID: [], segments: [])
  let frames = Symbolizer().symbolize(w.plain, in: image)
  try #require(frames.count == 1, "\(frames)")
  #expect(frames[0].function == "plain_caller")
  #expect(frames[0].file?.hasSuffix("where.c") == true)
  #expect(frames[0].line == 15)
  #expect(frames[0].inlined == false)
  #expect(frames[0].module == w.exe)
}

@Test func anInlinedCallExpandsIntoItsOwnFrameAndTheCallersLine() throws {
  let w = try runWhere(flags: ["-O2", "-g"])
  let image = ModuleImage(path: w.exe, base: w.bias, buildID: [], segments: [])
  let frames = Symbolizer().symbolize(w.inlined, in: image)
  try #require(frames.count == 2, "\(frames) \(String(w.inlined, radix: 16)) \(String(w.bias, radix: 16))")
  #expect(frames[0].function == "inlined_helper")
  #expect(frames[0].line == 11)
  #expect(frames[0].inlined)
  #expect(frames[1].function == "main")
  #expect(frames[1].line == 30)
  #expect(!frames[1].inlined)
}

@Test func aModuleThatChangedSinceTheTraceGivesModulePlusOffsetAndAWarning() throws {
  let w = try runWhere(flags: ["-O2", "-g"])
  let image = ModuleImage(path: w.exe, base: w.bias, buildID: [1, 2, 3, 4], segments: [])
  let symbolizer = Symbolizer()
  let frames = symbolizer.symbolize(w.plain, in: image)
  #expect(frames == [SymbolizedFrame(function: nil, file: nil, line: nil, module: w.exe, address: w.plain, offset: w.plain - w.bias, inlined: false)])
  #expect(symbolizer.warnings.count == 1)
  #expect(symbolizer.warnings.first?.contains("build-id differs") == true)
}

@Test func cxxAndSwiftNamesAreDemangled() {
  #expect(Demangler.demangle("_ZN5Cache6insertERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE")
    == "Cache::insert(std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > const&)")
  #expect(Demangler.demangle("$s4main5CacheC6insertyySSF") == "main.Cache.insert(Swift.String) -> ()")
  #expect(Demangler.demangle("plain_c_function") == "plain_c_function")
  // Legacy Rust: Itanium-mangled, with a hash the reader does not need.
  #expect(Demangler.demangle("_ZN4core3fmt5write17h0123456789abcdefE") == "core::fmt::write")
}

@Test func aLibraryWithoutDebugInfoIsNamedFromItsSymbolTable() throws {
  // libc here has no DWARF: libdwfl searches the debug path for it (the
  // search path must outlive the call), then falls back to the symbol table.
  // Read to the end: /proc files report size 0, so read in a loop.
  let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/maps"))
  let maps = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
  // The first mapping of libc (file offset 0) starts at its load bias.
  let line = try #require(maps.split(separator: "\n").first { $0.hasSuffix("/libc.so.6") && $0.split(separator: " ")[2] == "00000000" })
  let fields = line.split(separator: " ", omittingEmptySubsequences: true)
  let base = try #require(UInt64(fields[0].split(separator: "-")[0], radix: 16))
  let path = String(fields.last!)
  let symbol = try #require(dlsym(dlopen(nil, RTLD_NOW), "getpid"))
  let image = ModuleImage(path: path, base: base, buildID: [], segments: [])
  let symbolizer = Symbolizer(debugDirectories: ["/nonexistent/debug"])
  for _ in 0..<3 {
    let frames = symbolizer.symbolize(UInt64(UInt(bitPattern: symbol)) + 1, in: image)
    #expect(frames.first?.function?.contains("getpid") == true, "\(frames)")
  }
}
