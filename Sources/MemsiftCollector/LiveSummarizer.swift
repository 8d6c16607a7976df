import CMemsiftFormat
import MemsiftAnalysis
import MemsiftFormat

/// Live mode (`memsift run --live`): instead of writing every event, the
/// collector replays them into a live set and per-site counters and writes,
/// at each snapshot, the state of the sites that changed since the last one
/// (SITE records), then the snapshot label. The trace grows with sites ×
/// snapshots, not with events; `report`, `diff`, `snapshots` and `growth`
/// read it as any trace (their figures are exact at the snapshots, and the
/// peak is the highest snapshot).
///
/// Snapshots: every `interval`, at each label the program or `memsift
/// snapshot` places (before it, so the label names the state), when the
/// heap passes its last written peak by `peakStep` (at most once per
/// `peakThrottle`), and at the end.
public struct LivePolicy: Sendable {
  public var intervalNs: UInt64
  public var peakStep = 1.10
  public var peakThrottleNs: UInt64 = 1_000_000_000

  public init(intervalNs: UInt64) { self.intervalNs = intervalNs }
}

final class LiveSummarizer {
  private let policy: LivePolicy
  private var replay = HeapReplay(tracksChanges: true)
  private var lastSnapshotNs: UInt64
  private var lastPeakNs: UInt64 = 0
  private var writtenPeak: UInt64 = 0
  private var snapshots = 0
  private let startNs: UInt64

  init(policy: LivePolicy, startNs: UInt64) {
    self.policy = policy
    self.startNs = startNs
    lastSnapshotNs = startNs
  }

  /// Takes whole records from the ring: events go into the replay, a label
  /// is preceded by the sites' state, everything else goes to `write` as is.
  func consume(_ records: UnsafeRawBufferPointer, write: (UnsafeRawBufferPointer) throws -> Void) throws {
    var at = 0
    var passStart = 0
    func pass(upTo end: Int) throws {
      if end > passStart { try write(UnsafeRawBufferPointer(rebasing: records[passStart..<end])) }
    }
    while at + 8 <= records.count {
      let size = Int(records.loadUnaligned(fromByteOffset: at, as: UInt32.self))
      guard size >= 8, at + size <= records.count else { break }
      let type = UInt32(records[at + 4])
      let record = UnsafeRawBufferPointer(rebasing: records[at..<at + size])
      switch type {
      case MS_REC_ALLOC.rawValue, MS_REC_FREE.rawValue, MS_REC_REALLOC.rawValue, MS_REC_REALLOC_DONE.rawValue,
        MS_REC_SAMPLING.rawValue:
        try pass(upTo: at)
        if let event = try? TraceRecord.decode(record) {
          replay.apply(event)
          if let t = event.timeNs { try maybeSnapshotAtPeak(t, write: write) }
        }
        if type == MS_REC_SAMPLING.rawValue { try write(record) }
        passStart = at + size
      case MS_REC_SNAPSHOT.rawValue:
        try pass(upTo: at)
        let time = records.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self)
        try writeSites(at: time, write: write)
        passStart = at
      default:
        break
      }
      at += size
    }
    try pass(upTo: at)
  }

  /// The periodic snapshot, when due.
  func tick(now: UInt64, write: (UnsafeRawBufferPointer) throws -> Void) throws {
    guard now >= lastSnapshotNs + policy.intervalNs else { return }
    try snapshot(at: now, label: "every \(Self.seconds(policy.intervalNs)) #\(snapshots + 1)", write: write)
  }

  /// "60s", "0.2s": the interval as people wrote it.
  static func seconds(_ ns: UInt64) -> String {
    ns % 1_000_000_000 == 0 ? "\(ns / 1_000_000_000)s" : "\(Double(ns) / 1e9)s"
  }

  /// The last state, before END.
  func finish(at now: UInt64, write: (UnsafeRawBufferPointer) throws -> Void) throws {
    replay.finishInFlight()
    try writeSites(at: now, write: write)
  }

  private func maybeSnapshotAtPeak(_ time: UInt64, write: (UnsafeRawBufferPointer) throws -> Void) throws {
    let live = replay.liveBytes
    guard Double(live) > Double(writtenPeak) * policy.peakStep, time >= lastPeakNs + policy.peakThrottleNs else {
      return
    }
    lastPeakNs = time
    try snapshot(at: time, label: "peak #\(snapshots + 1)", write: write)
  }

  private func snapshot(at time: UInt64, label: String, write: (UnsafeRawBufferPointer) throws -> Void) throws {
    try writeSites(at: time, write: write)
    try TraceRecord.encodeCollectorSnapshot(timeNs: time, label: label).withUnsafeBytes { try write($0) }
  }

  private func writeSites(at time: UInt64, write: (UnsafeRawBufferPointer) throws -> Void) throws {
    for site in replay.takeChangedSites(at: time) {
      try TraceRecord.encodeSite(site).withUnsafeBytes { try write($0) }
    }
    writtenPeak = max(writtenPeak, replay.liveBytes)
    lastSnapshotNs = time
    snapshots += 1
  }
}
