import CMemsiftFormat
import CZstd
import MemsiftAnalysis
import MemsiftFormat
import MemsiftReport
import MemsiftSymbols

#if canImport(Glibc)
  import Glibc
#endif

/// The fuzz target of the trace reader (tools/fuzz/README.md): one input
/// becomes one trace file, which goes through everything `memsift report`,
/// `snapshots`, `growth` and `diff` do with it, symbolization aside.
///
/// The first byte of the input says how it becomes a trace, so that
/// mutations reach the record parser and not only zstd's checks:
///
///     bits 0..1  0: a valid header, then the rest as raw records
///                1: a valid compressed header, then the rest compressed
///                   (two frames, split where byte 1 says, when bit 2 is set)
///                2: the rest is the whole file, header included
///                3: a valid compressed header, then the rest as the zstd stream
///     bit  3     the header's MS_FILE_LIVE flag (modes 0, 1 and 3)
///     bits 4..5  the frame view: merged, python, native
enum FuzzInput {
  /// The trace file an input stands for.
  static func traceBytes(_ input: UnsafeRawBufferPointer) -> [UInt8] {
    guard let mode = input.first else { return [] }
    var rest = Array(input.dropFirst())
    let live: UInt32 = mode & 8 != 0 ? MS_FILE_LIVE : 0
    switch mode & 3 {
    case 0: return header(flags: live) + rest
    case 1:
      var split = rest.count
      if mode & 4 != 0, let b = rest.first {
        rest.removeFirst()
        split = rest.count * Int(b) / 256
      }
      return header(flags: MS_FILE_ZSTD | live) + compress(rest[..<split]) + compress(rest[split...])
    case 2: return rest
    default: return header(flags: MS_FILE_ZSTD | live) + rest
    }
  }

  static func view(_ input: UnsafeRawBufferPointer) -> FrameView {
    switch ((input.first ?? 0) >> 4) & 3 {
    case 1: return .python
    case 2: return .native
    default: return .merged
    }
  }

  static func header(flags: UInt32) -> [UInt8] {
    var h = ms_file_header_t()
    h.magic = MEMSIFT_TRACE_MAGIC
    h.version = UInt32(MEMSIFT_FORMAT_VERSION)
    h.header_size = UInt32(MemoryLayout<ms_file_header_t>.size)
    h.flags = flags
    h.writer = MS_WRITER_COLLECTOR
    h.pid = 42
    h.ppid = 1
    h.start_mono_ns = 1_000_000
    h.page_size = 4096
    return withUnsafeBytes(of: &h) { Array($0) }
  }

  static func compress(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
    guard !bytes.isEmpty else { return [] }
    var out = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
    let n = bytes.withUnsafeBytes { src in
      out.withUnsafeMutableBytes { dst in ZSTD_compress(dst.baseAddress, dst.count, src.baseAddress, src.count, 1) }
    }
    precondition(ZSTD_isError(n) == 0, "zstd cannot compress \(bytes.count) bytes")
    return Array(out[..<n])
  }
}

/// Where each input is written: the reader takes a path.
private let scratchPath: String = {
  let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
  return "\(dir)/memsift-fuzz.\(getpid()).trace"
}()

/// Runs one input through the reading commands' whole path. Errors are
/// fine (that is what garbage gets); a trap, a hang or a huge allocation is
/// what the fuzzer looks for.
func fuzzOne(_ input: UnsafeRawBufferPointer) {
  let file = FuzzInput.traceBytes(input)
  let fd = open(scratchPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
  precondition(fd >= 0, "cannot write \(scratchPath)")
  let written = file.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
  close(fd)
  precondition(written == file.count, "cannot write \(scratchPath)")
  defer { unlink(scratchPath) }
  analyze(path: scratchPath, view: FuzzInput.view(input))
}

/// What `report`, `snapshots`, `growth` and `diff` do with one trace.
func analyze(path: String, view: FrameView) {
  // growth's first pass: the length of the trace and its labels.
  guard let summary = try? TraceSummary.read(path: path) else { return }
  _ = TotalsReport.text(summary)
  _ = SnapshotTable.text(summary)
  _ = try? SnapshotTable.json(summary)
  var points: [TracePoint] = [.start, .peak, .end]
  points += summary.snapshots.prefix(2).map { .label($0.label) }
  let span = Double(summary.elapsed(at: summary.totals.peakTimeNs)) / 1e9
  points += (1..<4).map { .seconds(span * Double($0) / 4) }
  let whole = Double(summary.durationNs) / 1e9
  points += (1..<4).map { .seconds(whole * Double($0) / 4) }
  guard var analysis = try? TraceAnalysis.read(path: path, points: points) else { return }
  // No real binaries: relative paths are never opened by the symbolizer.
  analysis.modules = analysis.modules.map { m in
    var m = m
    m.module.path = "fuzz" + m.module.path
    return m
  }
  let symbolizer = Symbolizer()
  for grouping in [SiteGrouping.stack, .function, .line] {
    let builder = SiteReportBuilder(
      analysis: analysis, symbolizer: symbolizer, grouping: grouping, keepAllocatorFrames: grouping == .line,
      view: view)
    var text = TotalsReport.text(analysis.summary)
    for metric in SiteMetric.allCases {
      text += SiteText.section(metric, rows: builder.rows(by: metric, top: 10), summary: analysis.summary)
    }
    _ = try? TotalsReport.json(analysis.summary, sites: builder.rows(by: .peak, top: 50))
    let captures = analysis.captures
    let rows = GrowthReport.rows(builder: builder, captures: captures, top: 10)
    _ = GrowthReport.text(path: path, captures: captures, rows: rows)
    _ = try? GrowthReport.json(path: path, captures: captures, rows: rows, warnings: [])
    if let first = captures.first, let last = captures.last {
      let old = DiffSide(builder: builder, capture: first)
      let new = DiffSide(builder: builder, capture: last)
      let diff = DiffReport.rows(old: old, new: new, top: 10)
      _ = DiffReport.text(oldPath: path, old: first, newPath: path, new: last, rows: diff)
    }
  }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}

#if MEMSIFT_FUZZ
  @_silgen_name("LLVMFuzzerRunDriver")
  func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
  ) -> CInt

  /// SwiftPM links an executable target with its own main renamed, so the
  /// fuzzer build has a main too: it hands the command line to libFuzzer.
  @main
  struct Fuzz {
    static func main() {
      var argc = CommandLine.argc
      var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
      exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzerTestOneInput(data, size) })
    }
  }
#endif
