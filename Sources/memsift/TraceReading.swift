import ArgumentParser
import MemsiftAnalysis
import MemsiftFormat
import MemsiftReport

/// Reads a trace for a subcommand: a progress bar on a terminal, and a
/// trace that cannot be read (or lacks a point) is one line on stderr and
/// a failing exit.
func readAnalysis(_ path: String, points: [TracePoint] = []) throws -> TraceAnalysis {
  let bar = ProgressBar(label: "reading \(path)")
  defer { bar?.finish() }
  do {
    return try TraceAnalysis.read(path: path, points: points, progress: bar.map { b in { b.update($0, of: $1) } })
  } catch let error as TracePointError {
    bar?.finish()  // before the message, on the line the bar took
    printError(error.message)
    throw ExitCode.failure
  } catch {
    bar?.finish()
    printError("\(path): \(error)")
    throw ExitCode.failure
  }
}

/// The flame tree of every site, with a progress bar while the stacks are
/// symbolized (a Python program has tens of thousands of them).
func flameTree(_ builder: SiteReportBuilder) -> FlameTree {
  let bar = ProgressBar(label: "symbolizing", minimum: 5000)
  defer { bar?.finish() }
  return FlameTree.sites(builder) { bar?.update($0, of: $1) }
}
