import Foundation
import MemsiftAnalysis
import MemsiftFormat
import Testing
import _MemsiftTestSupport

private func writeTrace(_ b: RecordBuilder) throws -> String {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("memsift-analysis-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  let url = dir.appendingPathComponent("t.trace")
  try Data(b.bytes).write(to: url)
  return url.path
}

/// Two plugins loaded one after the other at the same base, each with a stack
/// captured while it was loaded.
private func pluginTrace() -> RecordBuilder {
  var b = RecordBuilder()
  b.header()
  b.process()  // record 0
  b.moduleLoad(base: 0x400000, path: "/bin/victim", segments: [(0, 0x2000)], time: 1_100)  // 1
  b.moduleLoad(base: 0x7f00_0000_0000, path: "/tmp/plugin1.so", segments: [(0, 0x1000), (0x2000, 0x800)], time: 1_200)  // 2
  b.stack(1, frames: [0x7f00_0000_0100, 0x401000])  // 3
  b.alloc(0x1000, 100, stack: 1)  // 4
  b.moduleUnload(base: 0x7f00_0000_0000, time: 2_500)  // 5
  b.moduleLoad(base: 0x7f00_0000_0000, path: "/tmp/plugin2.so", segments: [(0, 0x1000)], buildID: [0x01], time: 2_600)  // 6
  b.stack(2, frames: [0x7f00_0000_0100, 0x401000])  // 7
  b.alloc(0x2000, 50, stack: 2)  // 8
  b.free(0x1000)  // 9
  b.realloc(0x2000, 0x3000, 70, stack: 3)  // 10, 11
  b.end()  // 12
  return b
}

@Test func anAnalysisKeepsStacksSitesAndTheModuleTimeline() throws {
  let path = try writeTrace(pluginTrace())
  let a = try TraceAnalysis.read(path: path)

  #expect(a.stacks == [StackID(1): [0x7f00_0000_0100, 0x401000], StackID(2): [0x7f00_0000_0100, 0x401000]])
  #expect(a.stackRecords == [StackID(1): 3, StackID(2): 7])

  #expect(a.modules.map(\.path) == ["/bin/victim", "/tmp/plugin1.so", "/tmp/plugin2.so"])
  #expect(a.modules.map(\.loadRecord) == [1, 2, 6])
  #expect(a.modules.map(\.unloadRecord) == [nil, 5, nil])
  #expect(a.modules.map(\.unloadTimeNs) == [nil, 2_500, nil])
  #expect(a.modules[1].module.timeNs == 1_200)
  #expect(a.modules[1].module.segments.map(\.memsz) == [0x1000, 0x800])
  #expect(a.modules[2].module.buildID == [0x01])

  // The same address names a different plugin depending on when the stack was captured.
  #expect(a.module(containing: 0x7f00_0000_0100, inStack: StackID(1))?.path == "/tmp/plugin1.so")
  #expect(a.module(containing: 0x7f00_0000_0100, inStack: StackID(2))?.path == "/tmp/plugin2.so")
  #expect(a.module(containing: 0x401000, inStack: StackID(2))?.path == "/bin/victim")
  // plugin1's second segment, not covered by plugin2.
  #expect(a.module(containing: 0x7f00_0000_2100, atRecord: 3)?.path == "/tmp/plugin1.so")
  #expect(a.module(containing: 0x7f00_0000_1100, atRecord: 3) == nil)
  // No module loaded at the time holds it: the nearest load before.
  #expect(a.module(containing: 0x7f00_0000_2100, atRecord: 8)?.path == "/tmp/plugin1.so")
  #expect(a.modulesLoaded(atRecord: 4).map(\.path) == ["/bin/victim", "/tmp/plugin1.so"])
  #expect(a.modulesLoaded(atRecord: 7).map(\.path) == ["/bin/victim", "/tmp/plugin2.so"])

  #expect(a.sites[StackID(1)] == SiteStats(allocations: 1, bytesAllocated: 100, peakBytes: 100))
  #expect(a.sites[StackID(2)] == SiteStats(allocations: 1, bytesAllocated: 50, peakBytes: 50))
  #expect(a.sites[StackID(3)] == SiteStats(allocations: 1, bytesAllocated: 70, leakedBytes: 70, leakedAllocations: 1))
  #expect(a.summary.totals.peakBytes == 150)
  #expect(a.summary.totals.leakedBytes == 70)
}

@Test func theSummaryOfAnAnalysisIsTraceSummarys() throws {
  let path = try writeTrace(pluginTrace())
  let a = try TraceAnalysis.read(path: path).summary
  let s = try TraceSummary.read(path: path)
  #expect(a.totals == s.totals)
  #expect(a.loadedModules == s.loadedModules)
  #expect(s.loadedModules.map(\.unloaded) == [false, true, false])
  #expect(s.stacks == 2)
  #expect(s.modules == 3)
  #expect(s.modulesUnloaded == 1)
  #expect(s.events == 4)
  #expect(s.isComplete)
  #expect(s.warnings.isEmpty)
  #expect((a.stacks, a.modules, a.modulesUnloaded, a.events, a.durationNs) == (s.stacks, s.modules, s.modulesUnloaded, s.events, s.durationNs))
}

/// A sampled allocation of s bytes stands for s / (1 - exp(-s/rate)) bytes:
/// at s = rate, s / (1 - 1/e) = 103,676 for 65,536; far above the rate,
/// about s itself; a freed one takes its estimate with it.
@Test func aSampledTraceScalesEachAllocationToItsEstimate() throws {
  var b = RecordBuilder()
  b.header()
  b.process()
  b.sampling(rate: 65_536)
  b.stack(1, frames: [0x401000])
  b.alloc(0x1000, 65_536, stack: 1)
  b.alloc(0x2000, 10_000_000, stack: 1)
  b.alloc(0x3000, 64, stack: 1)
  b.free(0x3000)
  b.end()
  let summary = try TraceSummary.read(path: try writeTrace(b))
  #expect(summary.sampleRate == 65_536)
  #expect(summary.totals.leakedBytes == 103_676 + 10_000_000)
  #expect(summary.totals.bytesAllocated == 103_676 + 10_000_000 + 65_568)
}

/// A collector-written trace (format 4): EVENTS ops, with the clock moved
/// by TIME ops, read as the same events would be read raw.
@Test func eventsOpsGiveTotalsSitesAndTimePointsInsideARecord() throws {
  var ops = EventOpEncoder()
  ops.append(.info(size: 100, stack: StackID(1), function: 1))  // info 0
  ops.append(.info(size: 40, stack: StackID(2), function: 2))  // info 1
  ops.append(.alloc(0))
  ops.append(.alloc(1))
  ops.append(.time(2_000_000_000))  // the clock reaches start + 2 s
  ops.append(.alloc(0))
  ops.append(.free(1, temporary: false))
  ops.append(.call(3))
  ops.append(.detach(0))
  ops.append(.release(0, temporary: false))
  ops.append(.allocNoCall(1))
  ops.append(.freeUnmatched)
  var b = RecordBuilder()
  b.header()
  b.process()
  b.raw(ops.takeRecord())
  b.end()
  let path = try writeTrace(b)
  let a = try TraceAnalysis.read(path: path, points: [.seconds(1), .end])
  let t = a.summary.totals
  #expect(t.allocations == 4 && t.frees == 2 && t.bytesAllocated == 280)
  #expect(t.leakedBytes == 140 && t.leakedAllocations == 2 && t.unmatchedFrees == 1)
  #expect(t.calls == ["malloc": 2, "calloc": 1, "realloc": 1, "free": 2])
  #expect(t.peakBytes == 240 && t.peakTimeNs == 1_000 + 2_000_000_000)
  #expect(a.summary.events == 6)
  #expect(a.sites[StackID(1)]?.leakedBytes == 100 && a.sites[StackID(2)]?.leakedBytes == 40)
  // @1s falls between the TIME op and the ops before it: the first two blocks.
  #expect(a.captures.first?.live == [StackID(1): SiteLive(bytes: 100, count: 1), StackID(2): SiteLive(bytes: 40, count: 1)])
  #expect(a.summary.warnings.isEmpty, "\(a.summary.warnings)")
}

@Test func damagedEventsOpsGiveAWarningNotACrash() throws {
  var ops = EventOpEncoder()
  ops.append(.alloc(7))  // never defined
  var record = ops.takeRecord()
  record[16] = 0x80  // and a varint that never ends
  var b = RecordBuilder()
  b.header()
  b.process()
  b.raw(record)
  b.end()
  let s = try TraceSummary.read(path: try writeTrace(b))
  #expect(s.warnings.contains { $0.contains("damaged events") }, "\(s.warnings)")
  var ok = EventOpEncoder()
  ok.append(.alloc(7))
  var c = RecordBuilder()
  c.header()
  c.process()
  c.raw(ok.takeRecord())
  c.end()
  let u = try TraceSummary.read(path: try writeTrace(c))
  #expect(u.warnings.contains { $0.contains("never defined") }, "\(u.warnings)")
  #expect(u.totals.allocations == 0)
}

@Test func anAllocationAtAddressZeroIsSkippedWithAWarning() throws {
  // Found by the fuzzer: the address table's precondition trapped on it.
  var b = RecordBuilder()
  b.header()
  b.process()
  b.alloc(0, 10)
  b.alloc(0x10, 20)
  b.end()
  let s = try TraceSummary.read(path: try writeTrace(b))
  #expect(s.totals.allocations == 1)
  #expect(s.totals.leakedBytes == 20)
  #expect(s.totals.calls["malloc"] == 2)
  #expect(s.warnings.contains { $0.contains("address 0") }, "\(s.warnings)")
}

@Test func aTimePointPastTheClocksRangeIsPastTheEndNotATrap() throws {
  // `memsift diff T@1e12s T` trapped converting 1e21 ns to UInt64.
  var b = RecordBuilder()
  b.header()
  b.process()
  b.alloc(0x10, 20)
  b.end()
  let path = try writeTrace(b)
  #expect(throws: TracePointError.self) { try TraceAnalysis.read(path: path, points: [.seconds(1e12)]) }
  #expect(throws: TracePointError.self) { try TraceAnalysis.read(path: path, points: [.seconds(1.8e10)]) }
  #expect(try TraceAnalysis.read(path: path, points: [.seconds(0)]).captures.count == 1)
}
