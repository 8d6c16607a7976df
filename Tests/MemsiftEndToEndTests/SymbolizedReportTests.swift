import Foundation
import Testing

/// `memsift report` by allocation site: frames symbolized from DWARF
/// (function, file:line of the call, inlined frames, module), C++ and Swift
/// names demangled, dlclosed plugins, separate debug files, a module changed
/// since the trace, and the grouped views. The victims mark the lines the
/// tests look for with `@site:NAME` comments (`sites.c`, `cache.cpp`,
/// `inlined.c`, `plugin_*.c`, `nodes.swift`).
@Suite struct SymbolizedReportTests {
  // MARK: - C: function, file, line

  @Test func topLeakSiteNamesTheLeakingFunctionFileAndLineAndItsCallerWithTheCallLine() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.sites, "20"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let (report, _) = try siteReport(run.first, ["--sort", "leaked"], in: dir)
    let sites = try #require(report.sites)
    // Three stacks: leak_blocks, leaf via keep_from_a, leaf via churn_from_b;
    // without --top, JSON lists them all, by leaked bytes.
    #expect(sites.map(\.leakedBytes) == [20 * 48, 3 * 100, 0], "\(sites)")
    let top = try #require(sites.first)
    #expect(top.leakedBytes == 960)
    #expect(top.leakedAllocations == 20)
    #expect(top.allocations == 20)
    #expect(top.bytesAllocated == 960)
    #expect(top.temporaryAllocations == 0)
    try #require(top.frames.count >= 2, "\(top)")
    let malloc = top.frames[0]
    #expect(malloc.function == "leak_blocks", "\(top)")
    #expect(malloc.file?.hasSuffix("/sites.c") == true, "\(top)")
    #expect(malloc.line == (try sourceLine("@site:leak_blocks.malloc", in: "sites.c")), "\(top)")
    #expect(malloc.module == v.sites)
    #expect(!malloc.inlined)
    let caller = top.frames[1]
    #expect(caller.function == "main", "\(top)")
    #expect(caller.file?.hasSuffix("/sites.c") == true, "\(top)")
    #expect(caller.line == (try sourceLine("@site:main.leak_blocks", in: "sites.c")), "\(top)")
    #expect(caller.module == v.sites)
    // The second site: leaf, called from keep_from_a.
    let second = sites[1]
    #expect(second.frames.prefix(2).map(\.function) == ["leaf", "keep_from_a"], "\(second)")
    #expect(second.frames.first?.line == (try sourceLine("@site:leaf.malloc", in: "sites.c")))
    #expect(second.frames.dropFirst().first?.line == (try sourceLine("@site:keep_from_a.leaf", in: "sites.c")))
  }

  @Test func textLeakSectionShowsFunctionFileLineModuleAndGoesToTheOutputFile() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.sites, "20"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let output = dir.file("report.txt")
    let result = try runCommand(
      E2E.memsift, ["report", "--sort", "leaked", "--top", "1", "-o", output, run.first], in: dir)
    #expect(result.exitedWith == 0, "\(result)")
    #expect(result.stdout.isEmpty, "the report goes to -o, not stdout: \(result.stdout)")
    let text = try String(contentsOfFile: output, encoding: .utf8)
    let source = E2E.victimSources + "/sites.c"
    let mallocLine = try sourceLine("@site:leak_blocks.malloc", in: "sites.c")
    let callLine = try sourceLine("@site:main.leak_blocks", in: "sites.c")
    #expect(text.contains("LEAKS 1.2 KiB: sites by bytes never freed"), "\(text)")
    #expect(text.contains("  1. 960 B (76.2%) leaked in 20 allocations\n"), "\(text)")
    #expect(text.contains("       leak_blocks — \(source):\(mallocLine) — sites\n"), "\(text)")
    #expect(text.contains("       main — \(source):\(callLine) — sites\n"), "\(text)")
    // --top 1 and --sort leaked: one site of one section.
    #expect(!text.contains("keep_from_a"), "\(text)")
    #expect(!text.contains("PEAK"), "\(text)")
  }

  // MARK: - C++

  static let cacheInsert =
    "Cache::insert(std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > const&)"
  static let cacheInsertMangled = "_ZN5Cache6insertERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"

  /// The site of `cache.cpp`'s 9 entries of 72 bytes (the only one leaking
  /// 648 bytes; libstdc++'s emergency pool leaks one large block).
  private func cacheSite(_ options: [String], in dir: TestDirectory) throws -> Report.Site {
    let v = try E2E.victims()
    let run = try traced([v.cache, "9"], in: dir, name: "cache")
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let (report, _) = try siteReport(run.first, ["--sort", "leaked"] + options, in: dir)
    let sites = try #require(report.sites)
    return try #require(sites.first { $0.leakedBytes == 9 * 72 }, "\(sites)")
  }

  @Test func cppMethodIsNamedDemangledWithItsLineAfterTheAllocatorFramesAreSkipped() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let site = try cacheSite([], in: dir)
    #expect(site.allocations == 9)
    #expect(site.leakedAllocations == 9)
    try #require(site.frames.count >= 2, "\(site)")
    #expect(site.frames[0].function == Self.cacheInsert, "\(site)")
    #expect(site.frames[0].function?.hasPrefix("Cache::insert(") == true, "\(site)")
    #expect(site.frames[0].file?.hasSuffix("/cache.cpp") == true, "\(site)")
    #expect(site.frames[0].line == (try sourceLine("@site:Cache::insert.new", in: "cache.cpp")), "\(site)")
    #expect(site.frames[0].module == v.cache)
    #expect(site.frames[1].function == "main", "\(site)")
    #expect(site.frames[1].line == (try sourceLine("@site:main.insert", in: "cache.cpp")), "\(site)")
    #expect(!site.frames.contains { $0.function?.hasPrefix("operator new") == true }, "\(site)")
  }

  /// With raw names the allocator frames are still skipped: the first frame
  /// is the mangled method, not `_Znwm` (operator new).
  @Test func noDemangleKeepsTheMangledCppNameOfTheFirstNonAllocatorFrame() throws {
    let dir = try TestDirectory()
    let site = try cacheSite(["--no-demangle"], in: dir)
    #expect(site.frames.contains { $0.function == Self.cacheInsertMangled }, "\(site)")
    #expect(site.frames.first?.function?.hasPrefix("_ZN5Cache6insert") == true, "\(site)")
    #expect(site.frames.first?.function == Self.cacheInsertMangled, "\(site)")
    #expect(!site.frames.contains { $0.function == Self.cacheInsert }, "nothing demangled: \(site)")
  }

  @Test func keepAllocatorFramesShowsOperatorNewBeforeTheMethod() throws {
    let dir = try TestDirectory()
    let site = try cacheSite(["--keep-allocator-frames"], in: dir)
    try #require(site.frames.count >= 2, "\(site)")
    #expect(site.frames[0].function == "operator new(unsigned long)", "\(site)")
    #expect(site.frames[0].module.hasSuffix("/libstdc++.so.6"), "\(site)")
    #expect(site.frames[1].function == Self.cacheInsert, "\(site)")
  }

  // MARK: - Inlined frames

  @Test func alwaysInlineFunctionIsItsOwnInlinedFrameFollowedByItsCallerWithTheCallLine() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.inlined, "6"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let (report, _) = try siteReport(run.first, ["--sort", "leaked"], in: dir)
    let site = try #require(report.sites?.first)
    #expect(site.leakedBytes == 6 * 64)
    #expect(site.allocations == 6)
    try #require(site.frames.count >= 3, "\(site)")
    let inlined = site.frames[0]
    #expect(inlined.function == "make_block", "\(site)")
    #expect(inlined.inlined, "\(site)")
    #expect(inlined.file?.hasSuffix("/inlined.c") == true, "\(site)")
    #expect(inlined.line == (try sourceLine("@site:make_block.malloc", in: "inlined.c")), "\(site)")
    let into = site.frames[1]
    #expect(into.function == "fill", "\(site)")
    #expect(!into.inlined, "\(site)")
    #expect(into.file?.hasSuffix("/inlined.c") == true, "\(site)")
    #expect(into.line == (try sourceLine("@site:fill.make_block", in: "inlined.c")), "\(site)")
    // One return address: both frames carry it.
    #expect(inlined.address == into.address)
    #expect(site.frames[2].function == "main", "\(site)")
    #expect(!site.frames[2].inlined)
  }

  // MARK: - dlopen / dlclose

  @Test func dlclosedPluginFunctionIsNamedWithThePluginAsModule() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.dlopen, v.plugin, "4"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let (report, _) = try siteReport(run.first, ["--sort", "leaked"], in: dir)
    #expect(report.loadedModules.contains { $0.path == v.plugin && $0.unloaded })
    let sites = try #require(report.sites)
    let plugin = sites.filter { $0.frames.first?.function == "plugin_work" }
    // The leaking malloc(777) and the temporary malloc(5000).
    #expect(plugin.count == 2, "\(sites)")
    let leak = try #require(plugin.first { $0.leakedBytes > 0 }, "\(sites)")
    #expect(leak.leakedBytes == 4 * 777)
    #expect(leak.leakedAllocations == 4)
    #expect(leak.frames[0].module == v.plugin)
    #expect(leak.frames[0].file?.hasSuffix("/plugin.c") == true, "\(leak)")
    #expect(leak.frames[0].line == (try sourceLine("malloc(777)", in: "plugin.c")), "\(leak)")
    #expect(leak.frames.dropFirst().first?.function == "main", "\(leak)")
    #expect(leak.frames.dropFirst().first?.module == v.dlopen, "\(leak)")
    #expect(leak.frames.dropFirst().first?.line == (try sourceLine("= work(n);", in: "dlopen.c")), "\(leak)")
    let temporary = try #require(plugin.first { $0.temporaryAllocations > 0 }, "\(sites)")
    #expect(temporary.temporaryAllocations == 1)
    #expect(temporary.bytesAllocated == 5000)
    #expect(temporary.frames[0].line == (try sourceLine("malloc(5000)", in: "plugin.c")), "\(temporary)")
  }

  /// Runs `plugins` with two plugins one after the other and checks each
  /// plugin's leak site names its own function, file, line and module.
  private func expectEachPluginNamed(
    _ plugins: [(path: String, function: String, count: UInt64, size: UInt64, source: String)],
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.plugins] + plugins.map { "\($0.path):\($0.function):\($0.count)" }, in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)", sourceLocation: sourceLocation)
    let line = try run.result.victim()
    // The point of the test: the second plugin was mapped where the first was.
    try #require(line["base1"] != 0 && line["base1"] == line["base2"], "\(line)", sourceLocation: sourceLocation)
    let (report, _) = try siteReport(run.first, ["--sort", "leaked"], in: dir)
    let sites = try #require(report.sites, sourceLocation: sourceLocation)
    let firstFrames = sites.map { "\($0.allocations) allocations at \($0.frames.first?.description ?? "-")" }
    for plugin in plugins {
      let inModule = sites.filter { $0.frames.first?.module == plugin.path }
      #expect(inModule.count == 1, "sites in \(plugin.path): \(firstFrames)", sourceLocation: sourceLocation)
      let named = sites.filter { $0.frames.first?.function == plugin.function }
      #expect(named.count == 1, "sites of \(plugin.function): \(firstFrames)", sourceLocation: sourceLocation)
      guard let site = named.first else { continue }
      #expect(site.allocations == plugin.count, "\(site)", sourceLocation: sourceLocation)
      #expect(site.leakedBytes == plugin.count * plugin.size, "\(site)", sourceLocation: sourceLocation)
      #expect(site.frames[0].module == plugin.path, "\(site)", sourceLocation: sourceLocation)
      #expect(site.frames[0].file?.hasSuffix("/" + plugin.source) == true, "\(site)", sourceLocation: sourceLocation)
      #expect(
        site.frames[0].line == (try sourceLine("@site:\(plugin.function).malloc", in: plugin.source)), "\(site)",
        sourceLocation: sourceLocation)
    }
  }

  /// plugin_beta calls malloc from another offset than plugin_alpha, so the
  /// two stacks differ even at the same address.
  @Test func twoPluginsLoadedAtTheSameAddressInTurnAreEachNamed() throws {
    let v = try E2E.victims()
    try expectEachPluginNamed([
      (v.pluginAlpha, "plugin_alpha", 4, 111, "plugin_alpha.c"),
      (v.pluginBeta, "plugin_beta", 5, 222, "plugin_beta.c"),
    ])
  }

  /// plugin_gamma is plugin_alpha's code under other names: loaded at the
  /// same address, its malloc is called from the same offset, so its stack
  /// has the very same return addresses as plugin_alpha's, captured while a
  /// different module was loaded there.
  @Test func secondPluginAtTheSameAddressWithTheSameCallOffsetsIsNamedToo() throws {
    let v = try E2E.victims()
    // The premise: both functions start at the same offset (and their code is the same).
    let dir = try TestDirectory()
    let alpha = try tool("nm", ["-D", "--defined-only", v.pluginAlpha], in: dir)
    let gamma = try tool("nm", ["-D", "--defined-only", v.pluginGamma], in: dir)
    func offset(_ listing: String, _ name: String) -> Substring? {
      listing.split(separator: "\n").first { $0.hasSuffix(" " + name) }?.split(separator: " ").first
    }
    try #require(offset(alpha, "plugin_alpha") != nil && offset(alpha, "plugin_alpha") == offset(gamma, "plugin_gamma"))
    try expectEachPluginNamed([
      (v.pluginAlpha, "plugin_alpha", 4, 111, "plugin_alpha.c"),
      (v.pluginGamma, "plugin_gamma", 5, 333, "plugin_gamma.c"),
    ])
  }

  // MARK: - Separate debug files, changed and missing modules

  @Test func strippedBinaryIsFullySymbolizedFromDebugFileFoundByBuildIDInDebugDir() throws {
    let dir = try TestDirectory()
    let binary = dir.file("stripped")
    try cc(["-o", binary, E2E.victimSources + "/sites.c"], in: dir)
    let buildID = try readBuildID(binary, in: dir)
    let debugRoot = dir.file("debug")
    let debugDir = debugRoot + "/.build-id/" + String(buildID.prefix(2))
    try FileManager.default.createDirectory(atPath: debugDir, withIntermediateDirectories: true)
    try tool("objcopy", ["--only-keep-debug", binary, debugDir + "/" + buildID.dropFirst(2) + ".debug"], in: dir)
    try tool("strip", ["--strip-debug", binary], in: dir)
    let sections = try tool("readelf", ["-S", binary], in: dir)
    try #require(!sections.contains(".debug_info"), "still has debug info")

    let run = try traced([binary, "20"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    #expect(try run.main().loadedModules.first { $0.path == binary }?.buildID == buildID)
    let mallocLine = try sourceLine("@site:leak_blocks.malloc", in: "sites.c")
    let callLine = try sourceLine("@site:main.leak_blocks", in: "sites.c")

    // With --debug-dir, and with MEMSIFT_DEBUG_PATH: function, file and line.
    var environment = ProcessInfo.processInfo.environment
    environment["MEMSIFT_DEBUG_PATH"] = debugRoot
    for (options, env) in [(["--debug-dir", debugRoot], nil), ([], environment)] {
      let (report, result) = try siteReport(run.first, ["--sort", "leaked"] + options, in: dir, environment: env)
      let top = try #require(report.sites?.first)
      #expect(top.leakedBytes == 960)
      try #require(top.frames.count >= 2, "\(top)")
      #expect(top.frames[0].function == "leak_blocks", "\(options) \(top)")
      #expect(top.frames[0].file?.hasSuffix("/sites.c") == true, "\(options) \(top)")
      #expect(top.frames[0].line == mallocLine, "\(options) \(top)")
      #expect(top.frames[1].function == "main", "\(options) \(top)")
      #expect(top.frames[1].line == callLine, "\(options) \(top)")
      #expect(result.stderr.isEmpty, "\(result.stderr)")
    }

    // Without: the names from .symtab, no file or line, and one warning
    // naming the module without debug info.
    let (report, result) = try siteReport(run.first, ["--sort", "leaked"], in: dir)
    let top = try #require(report.sites?.first)
    #expect(top.frames.prefix(2).map(\.function) == ["leak_blocks", "main"], "\(top)")
    #expect(top.frames.filter { $0.module == binary }.allSatisfy { $0.file == nil && $0.line == nil }, "\(top)")
    let warnings = result.stderr.split(separator: "\n").filter { $0.contains("no debug info") }
    #expect(warnings.count == 1, "\(result.stderr)")
    #expect(warnings.first?.contains((binary as NSString).lastPathComponent) == true, "\(result.stderr)")
  }

  @Test func moduleRebuiltAfterTheTraceGivesUnnamedFramesAndOneBuildIDWarning() throws {
    let dir = try TestDirectory()
    let binary = dir.file("rebuilt")
    let source = E2E.victimSources + "/sites.c"
    try cc(["-o", binary, source], in: dir)
    let run = try traced([binary, "20"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    // Same path, same code, another build-id.
    try cc(["-Wl,--build-id=0x0123456789abcdef0123456789abcdef01234567", "-o", binary, source], in: dir)
    try #require(try readBuildID(binary, in: dir) == "0123456789abcdef0123456789abcdef01234567")

    let (report, result) = try siteReport(run.first, ["--sort", "leaked"], in: dir)
    #expect(result.exitedWith == 0)
    let sites = try #require(report.sites)
    #expect(sites.map(\.leakedBytes) == [960, 300, 0], "the figures do not depend on symbols")
    let ours = sites.flatMap(\.frames).filter { $0.module == binary }
    #expect(ours.count >= 3 * 3, "\(sites)")
    #expect(ours.allSatisfy { $0.function == nil && $0.file == nil && $0.line == nil && !$0.inlined }, "\(sites)")
    // Other modules are unaffected.
    #expect(sites[0].frames.contains { $0.function == "__libc_start_call_main" }, "\(sites[0])")
    let warnings = result.stderr.split(separator: "\n").filter { $0.contains("build-id") }
    #expect(warnings.count == 1, "\(result.stderr)")
    #expect(warnings.first?.contains(binary) == true, "\(result.stderr)")

    // The text report shows module+offset.
    let text = try runCommand(E2E.memsift, ["report", "--sort", "leaked", "--top", "1", run.first], in: dir)
    #expect(text.stdout.contains("       rebuilt+0x"), "\(text.stdout)")
    #expect(!text.stdout.contains("leak_blocks"), "\(text.stdout)")

    // A module whose file is gone: the same, with a warning saying so.
    try FileManager.default.removeItem(atPath: binary)
    let (gone, goneResult) = try siteReport(run.first, ["--sort", "leaked"], in: dir)
    let goneFrames = (gone.sites ?? []).flatMap(\.frames).filter { $0.module == binary }
    #expect(goneFrames.count == ours.count)
    #expect(goneFrames.allSatisfy { $0.function == nil && $0.file == nil }, "\(gone.sites ?? [])")
    let missing = goneResult.stderr.split(separator: "\n").filter { $0.contains(binary) }
    #expect(missing.count == 1, "\(goneResult.stderr)")
    #expect(missing.first?.contains("missing") == true, "\(goneResult.stderr)")
  }

  // MARK: - Grouped views

  private func expectGroupSums(
    _ trace: String, in dir: TestDirectory, sourceLocation: SourceLocation = #_sourceLocation
  ) throws -> [String: [Report.Site]] {
    var byGrouping: [String: [Report.Site]] = [:]
    var totals: Report.Totals?
    for grouping in ["stack", "function", "line", "file", "module"] {
      let (report, _) = try siteReport(trace, ["--group-by", grouping], in: dir)
      totals = report.totals
      let sites = try #require(report.sites, sourceLocation: sourceLocation)
      byGrouping[grouping] = sites
    }
    let t = try #require(totals, sourceLocation: sourceLocation)
    let expected: [UInt64] = [
      t.allocations, t.bytesAllocated, t.leakedBytes, t.leakedAllocations, t.peakBytes, t.temporaryAllocations,
    ]
    let fields: [KeyPath<Report.Site, UInt64>] = [
      \.allocations, \.bytesAllocated, \.leakedBytes, \.leakedAllocations, \.peakBytes, \.temporaryAllocations,
    ]
    for (grouping, sites) in byGrouping {
      let sums: [UInt64] = fields.map { field in sites.reduce(UInt64(0)) { $0 + $1[keyPath: field] } }
      #expect(
        sums == expected, "--group-by \(grouping): allocations, bytes, leaked, leaked count, peak, temporary",
        sourceLocation: sourceLocation)
      if grouping != "stack" {
        #expect(
          sites.allSatisfy { $0.frames.count == 1 }, "a group shows its one frame", sourceLocation: sourceLocation)
      }
    }
    return byGrouping
  }

  @Test func groupedViewsSumToTheStackViewAndTheTotals() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.sites, "20"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let t = try run.main().totals
    #expect(t.allocations == 20 + 3 + 5)
    #expect(t.peakBytes == 960 + 300 + 1000)
    let views = try expectGroupSums(run.first, in: dir)
    #expect(views["stack"]?.count == 3)
    // leaf's two stacks make one function, one line.
    let leafLine = try sourceLine("@site:leaf.malloc", in: "sites.c")
    for grouping in ["function", "line"] {
      let sites = views[grouping] ?? []
      #expect(sites.count == 2, "\(grouping): \(sites)")
      let leaf = sites.first { $0.frames.first?.function == "leaf" }
      #expect(leaf?.allocations == 8, "\(grouping): \(sites)")
      #expect(leaf?.bytesAllocated == 3 * 100 + 5 * 1000)
      #expect(leaf?.peakBytes == 300 + 1000)
      #expect(leaf?.leakedBytes == 300)
      #expect(leaf?.temporaryAllocations == 5)
      #expect(leaf?.frames.first?.line == leafLine)
    }
    #expect(views["file"]?.count == 1)
    #expect(views["file"]?.first?.frames.first?.file?.hasSuffix("/sites.c") == true)
    #expect(views["module"]?.count == 1)
    #expect(views["module"]?.first?.frames.first?.module == v.sites)
  }

  /// Many sites in several modules (libstdc++'s own, unnamed ones included).
  @Test func groupedViewsOfACppTraceSumToTheTotals() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.containers, "2", "3"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let views = try expectGroupSums(run.first, in: dir)
    #expect((views["stack"]?.count ?? 0) > (views["function"]?.count ?? 0))
    #expect((views["module"]?.count ?? 0) >= 2, "the program and libstdc++: \(views["module"] ?? [])")
  }

  // MARK: - Swift

  @Test func swiftAllocationSiteIsNamedDemangled() throws {
    let nodes = try SwiftVictim.nodes()
    let dir = try TestDirectory()
    let run = try traced([nodes, "25"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let (report, _) = try siteReport(run.first, ["--sort", "leaked"], in: dir)
    let sites = try #require(report.sites)
    let functions = sites.flatMap(\.frames).compactMap(\.function)
    #expect(!functions.contains { $0.hasPrefix("$s") || $0.hasPrefix("_$s") }, "mangled: \(functions)")
    // 25 instances of 16 bytes of header and one Int, all kept in `kept`.
    let site = try #require(
      sites.first { $0.frames.first?.function?.contains("Node.__allocating_init") == true }, "\(sites)")
    #expect(site.allocations == 25)
    #expect(site.leakedBytes == 25 * 24)
    #expect(site.frames.first?.function == "nodes.Node.__allocating_init(Swift.Int) -> nodes.Node", "\(site)")
    #expect(site.frames.dropFirst().first?.function == "nodes.makeNodes(Swift.Int) -> ()", "\(site)")
    #expect(site.frames.dropFirst().first?.module == nodes)
  }

  @Test func swiftFramesHaveFileAndLine() throws {
    let nodes = try SwiftVictim.nodes()
    let dir = try TestDirectory()
    let run = try traced([nodes, "25"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let (report, _) = try siteReport(run.first, ["--sort", "leaked"], in: dir)
    let sites = try #require(report.sites)
    let site = try #require(sites.first { $0.frames.contains { $0.function?.contains("makeNodes") == true } })
    let frame = try #require(site.frames.first { $0.function?.contains("makeNodes") == true })
    #expect(frame.file?.hasSuffix("/nodes.swift") == true, "\(site)")
    #expect(frame.line == (try sourceLine("@site:makeNodes.Node", in: "nodes.swift")), "\(site)")
  }
}

// MARK: - Helpers

/// `memsift report --format json OPTIONS TRACE`, decoded, and the command's
/// result (its stderr has the symbolizer's warnings).
func siteReport(
  _ trace: String, _ options: [String], in dir: TestDirectory, environment: [String: String]? = nil
) throws -> (Report, CommandResult) {
  let result = try runCommand(
    E2E.memsift, ["report", "--format", "json"] + options + [trace], in: dir, environment: environment)
  guard result.exitedWith == 0 else { throw E2EError.report(result.description) }
  do {
    return (try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8)), result)
  } catch {
    throw E2EError.report("\(trace): cannot decode \(error): \(result.stdout)")
  }
}

/// The number of the one line of `Tests/Victims/FILE` that contains `marker`.
func sourceLine(_ marker: String, in file: String) throws -> Int {
  let text = try String(contentsOfFile: E2E.victimSources + "/" + file, encoding: .utf8)
  let lines = text.components(separatedBy: "\n")
  let hits = lines.indices.filter { lines[$0].contains(marker) }
  guard hits.count == 1 else { throw E2EError.report("\(file): \(hits.count) lines contain \(marker)") }
  return hits[0] + 1
}

/// Runs a tool from PATH; its stdout, or an error with everything it said.
@discardableResult
func tool(_ name: String, _ arguments: [String], in dir: TestDirectory) throws -> String {
  let result = try runCommand("/usr/bin/env", [name] + arguments, in: dir)
  guard result.exitedWith == 0 else { throw E2EError.compile(result.description) }
  return result.stdout
}

/// `cc` with the victims' flags.
func cc(_ arguments: [String], in dir: TestDirectory) throws {
  try tool("cc", Victims.flags + arguments, in: dir)
}

/// The GNU build-id of an ELF file, in hex, from `readelf -n`.
func readBuildID(_ path: String, in dir: TestDirectory) throws -> String {
  let notes = try tool("readelf", ["-n", path], in: dir)
  guard let line = notes.split(separator: "\n").first(where: { $0.contains("Build ID:") }),
    let id = line.split(separator: " ").last
  else { throw E2EError.report("no build-id in \(path): \(notes)") }
  return String(id)
}

/// `nodes.swift`, built once per test process with `swiftc -g -Onone`.
enum SwiftVictim {
  private static let built: Result<String, Error> = Result {
    let dir = try E2E.victims().directory
    let output = dir + "/nodes"
    let result = try runCommand(
      "/usr/bin/env", ["swiftc", "-g", "-Onone", "-o", output, E2E.victimSources + "/nodes.swift"],
      in: try TestDirectory("swiftc"))
    guard result.exitedWith == 0 else { throw E2EError.compile(result.description) }
    return output
  }

  static func nodes() throws -> String { try built.get() }
}
