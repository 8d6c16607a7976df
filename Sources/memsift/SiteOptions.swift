import ArgumentParser
import MemsiftAnalysis
import MemsiftReport
import MemsiftSymbols

extension SiteGrouping: ExpressibleByArgument {}
extension SiteMetric: ExpressibleByArgument {}
extension FrameView: ExpressibleByArgument {}

/// How sites are named and grouped: the options `report`, `diff` and `growth` share.
struct SiteOptions: ParsableArguments {
  @Option(
    name: .customLong("group-by"),
    help: "Group sites by stack, function, line, file or module (Python code: by its innermost Python frame).")
  var groupBy: SiteGrouping = .stack

  @Option(
    help: """
      Stacks of Python programs: merged (Python frames in place of the interpreter's evaluation loop), \
      python (Python frames under the native frame that allocated) or native.
      """)
  var frames: FrameView = .merged

  @Option(name: .customLong("debug-dir"), help: "Also look for separate debug files here (repeatable).")
  var debugDirectories: [String] = []

  @Flag(name: .customLong("no-demangle"), help: "Keep mangled C++/Swift names.")
  var noDemangle = false

  @Flag(name: .customLong("keep-allocator-frames"), help: "Show malloc, operator new and similar wrapper frames.")
  var keepAllocatorFrames = false

  /// A symbolizer that searches the --debug-dir directories, then `$MEMSIFT_DEBUG_PATH`.
  func symbolizer() -> Symbolizer {
    makeSymbolizer(debugDirectories: debugDirectories, demangle: !noDemangle)
  }

  func builder(_ analysis: TraceAnalysis, symbolizer: Symbolizer) -> SiteReportBuilder {
    SiteReportBuilder(
      analysis: analysis, symbolizer: symbolizer, grouping: groupBy, keepAllocatorFrames: keepAllocatorFrames,
      view: frames)
  }
}
