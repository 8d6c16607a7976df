import MemsiftFormat

/// A trace read in the test process itself (`TraceReader`), for runs that
/// write too many traces to report each one with `memsift report`: who
/// wrote it, whether it ended, and how many allocations of each size it holds.
struct TraceScan {
  var pid: Int32 = 0
  var ppid: Int32 = 0
  /// The END record, when the trace has one.
  var end: EndInfo?
  var warnings: [String] = []
  /// Allocation calls (realloc included) by requested size.
  var allocationsBySize: [UInt64: UInt64] = [:]

  init(_ path: String) throws {
    let reader = try TraceReader(path: path)
    var infoSizes: [UInt64] = []
    var scan = self
    try reader.forEachRecord { record in
      switch record {
      case .process(let p):
        scan.pid = p.pid
        scan.ppid = p.ppid
      case .alloc(_, _, let size, _, _, _), .realloc(_, _, let size, _, _, _):
        scan.allocationsBySize[size, default: 0] += 1
      case .events(let ops):
        for op in try EventOpDecoder.decodeAll(ops) {
          switch op {
          case .info(let size, _, _): infoSizes.append(size)
          case .alloc(let i), .allocNoCall(let i):
            scan.allocationsBySize[infoSizes[Int(i)], default: 0] += 1
          default: break
          }
        }
      case .end(let info):
        scan.end = info
      default:
        break
      }
    }
    scan.warnings = reader.warnings
    self = scan
  }
}
