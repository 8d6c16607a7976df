import Foundation
import MemsiftAnalysis
import MemsiftFormat
import MemsiftSymbols

/// Renders a trace's totals as text for people or JSON for scripts.
public enum TotalsReport {
  /// The text report.
  public static func text(_ s: TraceSummary) -> String {
    let t = s.totals
    var lines: [String] = []
    lines.append("trace        \(s.path)")
    if let p = s.process {
      lines.append("process      \(p.pid) (parent \(p.ppid)): \(CommandDisplay.line(p.arguments))")
    }
    lines.append(
      "ended        \(s.endKind.describe(status: s.endStatus)) after \(ByteFormat.seconds(s.durationNs))"
        + (s.isComplete ? "" : " (trace not finished)"))
    lines.append("")
    if s.sampleRate > 0 {
      lines.append(
        "sampled      one allocation per \(ByteFormat.bytes(s.sampleRate)) on average: bytes are estimates, "
          + "counts are of the sampled allocations")
    }
    lines.append("allocations            \(ByteFormat.count(t.allocations))")
    lines.append("frees                  \(ByteFormat.count(t.frees))")
    lines.append("temporary allocations  \(ByteFormat.count(t.temporaryAllocations))")
    lines.append("bytes allocated        \(ByteFormat.count(t.bytesAllocated)) (\(ByteFormat.bytes(t.bytesAllocated)))")
    lines.append(
      "peak heap              \(ByteFormat.count(t.peakBytes)) (\(ByteFormat.bytes(t.peakBytes))) at "
        + ByteFormat.seconds(s.elapsed(at: t.peakTimeNs)))
    lines.append(
      "leaked                 \(ByteFormat.count(t.leakedBytes)) (\(ByteFormat.bytes(t.leakedBytes))) in "
        + "\(ByteFormat.count(t.leakedAllocations)) allocations")
    if s.peakRSSBytes > 0 {
      lines.append("peak RSS               \(ByteFormat.bytes(s.peakRSSBytes)) (\(s.rssSamples) samples)")
    }
    if let rss = s.rssAtPeakBytes {
      lines.append("RSS at the peak        " + HeapVersusRSS.describe(heap: t.peakBytes, rss: rss))
    }
    if let rss = s.rssAtEndBytes {
      lines.append("RSS at the end         " + HeapVersusRSS.describe(heap: t.leakedBytes, rss: rss))
    }
    let calls = t.calls.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) \(ByteFormat.count($0.value))" }
    lines.append("calls                  \(calls.joined(separator: ", "))")
    lines.append("stacks \(s.stacks), threads \(s.threads), modules \(s.modules) (\(s.modulesUnloaded) unloaded)")
    if let end = s.end, end.backpressureWaits > 0 {
      lines.append(
        "the ring was full \(ByteFormat.count(end.backpressureWaits)) times; threads waited "
          + ByteFormat.seconds(end.backpressureNs))
    }
    for w in s.warnings { lines.append("warning: \(w)") }
    return lines.joined(separator: "\n") + "\n"
  }

  /// The JSON report, schema `memsift.report/1` (README), with `sites` when given.
  /// `symbolWarnings`: what the symbolizer could not resolve, added to `warnings`.
  public static func json(_ s: TraceSummary, sites: [SiteRow]? = nil, symbolWarnings: [String] = []) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    var document = Document(s)
    document.sites = sites?.map(Document.Site.init)
    document.warnings += symbolWarnings
    let data = try encoder.encode(document)
    return String(decoding: data, as: UTF8.self) + "\n"
  }

  struct Document: Encodable {
    struct Process: Encodable {
      var pid: Int32
      var ppid: Int32
      var executable: String
      var command: [String]
      var exit: Ended
      var start_wall_ns: UInt64
      var max_depth: UInt32
    }
    struct Ended: Encodable {
      var how: String
      var status: Int32
      var description: String
    }
    struct RSS: Encodable {
      var samples: Int
      var peak_bytes: UInt64
    }
    struct Module: Encodable {
      var path: String
      var base: UInt64
      var build_id: String
      var unloaded: Bool
    }
    /// The replay's totals plus the trace's duration, in one object.
    struct Totals: Encodable {
      var heap: HeapTotals
      var duration_ns: UInt64
      enum Key: String, CodingKey { case duration_ns }
      func encode(to encoder: Encoder) throws {
        try heap.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(duration_ns, forKey: .duration_ns)
      }
    }
    struct Backpressure: Encodable {
      var waits: UInt64
      var ns: UInt64
    }
    var schema = "memsift.report/1"
    var trace: String
    var process: Process?
    var complete: Bool
    var events: UInt64
    var totals: Totals
    var stacks: Int
    var threads: Int
    var modules: Int
    var modules_unloaded: Int
    var loaded_modules: [Module]
    var rss: RSS
    var backpressure: Backpressure
    /// Mean bytes between samples; absent when every event was recorded.
    var sample_rate_bytes: UInt64?
    var warnings: [String]
    var sites: [Site]?

    struct Frame: Encodable {
      var function: String?
      var file: String?
      var line: Int?
      var module: String
      var address: UInt64
      var inlined: Bool
      /// "python" or "native"
      var kind: String

      init(_ f: SymbolizedFrame) {
        (function, file, line, module, address, inlined) = (f.function, f.file, f.line, f.module, f.address, f.inlined)
        kind = f.kind.rawValue
      }
    }
    struct Site: Encodable {
      var allocations, bytes_allocated, peak_bytes, leaked_bytes, leaked_allocations, temporary_allocations: UInt64
      var frames: [Frame]
      init(_ row: SiteRow) {
        let st = row.stats
        (allocations, bytes_allocated, peak_bytes) = (st.allocations, st.bytesAllocated, st.peakBytes)
        (leaked_bytes, leaked_allocations, temporary_allocations) =
          (st.leakedBytes, st.leakedAllocations, st.temporaryAllocations)
        frames = row.frames.map(Frame.init)
      }
    }

    init(_ s: TraceSummary) {
      trace = s.path
      let ended = Ended(how: s.endKind.name, status: s.endStatus, description: s.endKind.describe(status: s.endStatus))
      process = s.process.map {
        Process(
          pid: $0.pid, ppid: $0.ppid, executable: $0.executable, command: $0.arguments, exit: ended,
          start_wall_ns: $0.startWallNs, max_depth: $0.maxDepth)
      }
      complete = s.isComplete
      events = s.events
      totals = Totals(heap: s.totals, duration_ns: s.durationNs)
      stacks = s.stacks
      threads = s.threads
      modules = s.modules
      modules_unloaded = s.modulesUnloaded
      loaded_modules = s.loadedModules.map {
        Module(path: $0.path, base: $0.base, build_id: $0.buildIDHex, unloaded: $0.unloaded)
      }
      rss = RSS(samples: s.rssSamples, peak_bytes: s.peakRSSBytes)
      backpressure = Backpressure(waits: s.end?.backpressureWaits ?? 0, ns: s.end?.backpressureNs ?? 0)
      sample_rate_bytes = s.sampleRate > 0 ? s.sampleRate : nil
      warnings = s.warnings
    }
  }
}
