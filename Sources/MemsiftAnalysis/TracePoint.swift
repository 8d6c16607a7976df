import MemsiftFormat

/// A moment of a trace, as `memsift diff` names it: `TRACE` (its end),
/// `TRACE@label`, `TRACE@12.5s` (seconds since start), `TRACE@peak`,
/// `TRACE@start`, `TRACE@end`; `TRACE@label:NAME` for a label named like
/// one of those.
public enum TracePoint: Hashable, Sendable, CustomStringConvertible {
  case start, end, peak
  case label(String)
  case seconds(Double)

  public var description: String {
    switch self {
    case .start: return "start"
    case .end: return "end"
    case .peak: return "peak"
    case .label(let l): return "label \(l)"
    case .seconds(let s): return "\(s) s"
    }
  }

  /// Splits `TRACE@POINT`; a path that exists as given is a whole trace (its end).
  /// - Throws: `TracePointError` for an empty or malformed point.
  public static func parse(_ spec: String, fileExists: (String) -> Bool) throws -> (path: String, point: TracePoint) {
    if fileExists(spec) { return (spec, .end) }
    guard let at = spec.lastIndex(of: "@") else { return (spec, .end) }
    let path = String(spec[..<at])
    let suffix = String(spec[spec.index(after: at)...])
    // "label:NAME" forces a label whose name reads like a keyword or a time.
    if suffix.hasPrefix("label:") { return (path, .label(String(suffix.dropFirst("label:".count)))) }
    switch suffix {
    case "": throw TracePointError(message: "\(spec): nothing after @ (a label, 12.5s, peak, start or end)")
    case "start": return (path, .start)
    case "end": return (path, .end)
    case "peak": return (path, .peak)
    default:
      if suffix.hasSuffix("s"), let seconds = Double(suffix.dropLast()) {
        guard seconds >= 0, seconds.isFinite else { throw TracePointError(message: "\(spec): a time must be ≥ 0 s") }
        return (path, .seconds(seconds))
      }
      return (path, .label(suffix))
    }
  }
}

/// Why a point could not be used.
public struct TracePointError: Error, CustomStringConvertible, Equatable {
  public var message: String
  public init(message: String) { self.message = message }
  public var description: String { message }
}

/// What every site held at one point of a trace.
public struct PointCapture: Sendable {
  public var point: TracePoint
  public var live: [StackID: SiteLive]
  /// Time since the process started, when the point has one.
  public var elapsedNs: UInt64?
  /// The last RSS sample at or before the point.
  public var rssBytes: UInt64? = nil

  public var totalBytes: UInt64 { live.values.reduce(0) { $0 &+ $1.bytes } }
  public var totalCount: UInt64 { live.values.reduce(0) { $0 &+ $1.count } }
}
