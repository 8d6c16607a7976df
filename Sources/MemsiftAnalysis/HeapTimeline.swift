/// A series over time, kept to at most `capacity` buckets however long the
/// trace: when it fills, buckets double in width and merge pairwise. Each
/// bucket keeps the highest value seen in it, so a downsampled series still
/// shows every spike (a report draws the heap, not an average of it).
public struct HeapTimeline: Sendable, Equatable {
  /// One bucket: its start (ns since the process started) and its highest value.
  public struct Point: Sendable, Equatable {
    public var elapsedNs: UInt64
    public var bytes: UInt64
  }

  public private(set) var points: [Point] = []
  public let capacity: Int
  /// Width of a bucket; starts at 1 ms and doubles as the series fills.
  public private(set) var widthNs: UInt64 = 1_000_000

  public init(capacity: Int = 2048) { self.capacity = max(2, capacity) }

  /// Notes `bytes` at `elapsedNs` (not before the previous note).
  public mutating func note(_ elapsedNs: UInt64, _ bytes: UInt64) {
    let start = elapsedNs / widthNs * widthNs
    // A note a little behind the last (record and event clocks interleave) joins its bucket.
    if let last = points.last, start <= last.elapsedNs {
      points[points.count - 1].bytes = max(last.bytes, bytes)
      return
    }
    points.append(Point(elapsedNs: start, bytes: bytes))
    while points.count > capacity { coarsen() }
  }

  /// Raises the bucket of `elapsedNs` to `bytes`: the true peak may fall
  /// between two notes, and the series must reach it.
  public mutating func notePeak(_ elapsedNs: UInt64, _ bytes: UInt64) {
    let start = elapsedNs / widthNs * widthNs
    guard let i = points.lastIndex(where: { $0.elapsedNs <= start }) else {
      points.insert(Point(elapsedNs: start, bytes: bytes), at: 0)
      while points.count > capacity { coarsen() }
      return
    }
    if points[i].elapsedNs == start {
      points[i].bytes = max(points[i].bytes, bytes)
    } else {
      points.insert(Point(elapsedNs: start, bytes: bytes), at: i + 1)
      while points.count > capacity { coarsen() }
    }
  }

  /// Doubles the bucket width, merging the points that now share a bucket.
  private mutating func coarsen() {
    widthNs *= 2
    var merged: [Point] = []
    merged.reserveCapacity(points.count / 2 + 1)
    for p in points {
      let start = p.elapsedNs / widthNs * widthNs
      if let last = merged.last, last.elapsedNs == start {
        merged[merged.count - 1].bytes = max(last.bytes, p.bytes)
      } else {
        merged.append(Point(elapsedNs: start, bytes: p.bytes))
      }
    }
    points = merged
  }
}
