import Testing

/// `dlopen.c` + `plugin.c`, and `libinit.c` + `libinit_main.c`: code that
/// comes and goes, or runs before main.
@Suite struct ModuleTests {
  @Test func dlclosedPluginIsListedAsUnloaded() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.dlopen, v.plugin, "3"], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let report = try run.main()
    let plugin = report.loadedModules.filter { $0.path == v.plugin }
    #expect(plugin.count == 1, "modules: \(report.loadedModules.map(\.path))")
    #expect(plugin.first?.unloaded == true)
    // Everything the program started with is still loaded.
    #expect(report.loadedModules.filter(\.unloaded).map(\.path) == [v.plugin])
    #expect(report.loadedModules.contains { $0.path == v.dlopen && !$0.unloaded })
  }

  /// The loader allocates for dlopen, dlsym and dlclose; a run with N = 0
  /// does all of that too, so the difference is the plugin's own work.
  @Test func pluginAllocationsAreCountedExactly() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let n: UInt64 = 25
    let baseRun = try traced([v.dlopen, v.plugin, "0"], in: dir, name: "base")
    let workRun = try traced([v.dlopen, v.plugin, String(n)], in: dir, name: "work")
    #expect(baseRun.result.exitedWith == 0, "\(baseRun.result)")
    #expect(workRun.result.exitedWith == 0, "\(workRun.result)")
    let tally = try workRun.result.victim()
    #expect(tally["malloc"] == n + 1)
    #expect(tally["leaked_bytes"] == n * 777)

    let base = try baseRun.main().totals
    let work = try workRun.main().totals
    let d = TotalsDifference(work, minus: base)
    #expect(d.calls == ["malloc": Int64(n)])  // the temporary block is in both runs
    #expect(d.allocations == Int64(n))
    #expect(d.frees == 0)
    #expect(d.bytesAllocated == Int64(n * 777))
    #expect(d.leakedBytes == Int64(n * 777))
    #expect(d.leakedAllocations == Int64(n))
    #expect(work.unmatchedFrees == 0)
    #expect(work.reusedWithoutFree == 0)
  }

  /// libmsinit.so allocates 12345 bytes in its constructor, which the loader
  /// runs before the shim's; main frees that block and makes one of 678.
  @Test func allocationsInSharedLibraryConstructorsAreRecorded() throws {
    let v = try E2E.victims()
    let dir = try TestDirectory()
    let run = try traced([v.libinitMain], in: dir)
    #expect(run.result.exitedWith == 0, "\(run.result)")
    let t = try run.main().totals
    #expect(t.unmatchedFrees == 0, "the constructor's block was freed but never seen allocated")
    #expect(t.calls == ["malloc": 2, "free": 2])
    #expect(t.allocations == 2)
    #expect(t.frees == 2)
    #expect(t.bytesAllocated == 12345 + 678)
    #expect(t.peakBytes == 12345)
  }
}
