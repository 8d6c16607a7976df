import ArgumentParser
import Foundation
import MemsiftAnalysis
import MemsiftFormat
import MemsiftReport
import MemsiftSymbols

extension MemsiftCommand {
  struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "What grew and what shrank between two moments, of one run or of two runs.",
      discussion: """
        OLD and NEW are each TRACE (its end), TRACE@label, TRACE@12.5s (seconds since start), \
        TRACE@peak, TRACE@start or TRACE@end. Two points of one trace are read in one pass. \
        Sites are matched by their symbolized frames (function, file, line, module name), \
        never by address, so two runs or two builds compare.
        """)

    @Argument(help: "The earlier point.")
    var old: String

    @Argument(help: "The later point.")
    var new: String

    @Option(help: "Sites shown (text: 10 by default; json: \(OutputFormat.jsonSites)).")
    var top: Int?

    @Option(help: "Output format: text, json or html (a differential flame graph and the table).")
    var format: ReportFormat = .text

    @Option(name: .shortAndLong, help: "Write the diff to this file instead of stdout.")
    var output: String?

    @OptionGroup var sites: SiteOptions

    mutating func validate() throws {
      if let top, top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
      do {
        let exists = { (path: String) in FileManager.default.fileExists(atPath: path) }
        let (oldPath, oldPoint) = try TracePoint.parse(old, fileExists: exists)
        let (newPath, newPoint) = try TracePoint.parse(new, fileExists: exists)
        let symbolizer = sites.symbolizer()
        func side(_ analysis: TraceAnalysis, _ capture: PointCapture) -> DiffSide {
          DiffSide(builder: sites.builder(analysis, symbolizer: symbolizer), capture: capture)
        }
        let oldSide: DiffSide
        let newSide: DiffSide
        if oldPath == newPath {
          // One pass over the trace captures both points.
          let analysis = try TraceAnalysis.read(path: oldPath, points: [oldPoint, newPoint])
          oldSide = side(analysis, analysis.captures[0])
          newSide = side(analysis, analysis.captures[1])
        } else {
          let a = try TraceAnalysis.read(path: oldPath, points: [oldPoint])
          let b = try TraceAnalysis.read(path: newPath, points: [newPoint])
          oldSide = side(a, a.captures[0])
          newSide = side(b, b.captures[0])
        }
        // The flame graph of the HTML page draws every site that changed; its table the top ones.
        let limit = format == .html ? nil : top ?? (format == .text ? 10 : OutputFormat.jsonSites)
        let rows = DiffReport.rows(old: oldSide, new: newSide, top: limit)
        let text: String
        switch format {
        case .text:
          text = DiffReport.text(oldPath: oldPath, old: oldSide.capture, newPath: newPath, new: newSide.capture, rows: rows)
        case .json:
          text = try DiffReport.json(
            oldPath: oldPath, old: oldSide.capture, newPath: newPath, new: newSide.capture, rows: rows,
            warnings: symbolizer.warnings)
        case .html:
          text = HTMLReport.diff(
            oldPath: oldPath, old: oldSide.capture, newPath: newPath, new: newSide.capture, rows: rows, top: top ?? 20)
        }
        if format != .json { printWarnings(of: symbolizer) }
        try writeOutput(text, to: output)
      } catch let error as TracePointError {
        printError(error.message)
        throw ExitCode.failure
      } catch let error as TraceError {
        printError("\(error)")
        throw ExitCode.failure
      }
    }
  }
}
