import CMemsiftFormat
import CMemsiftRing

#if canImport(Glibc)
  import Glibc
#endif

/// Writes a snapshot label into a running traced process's ring from
/// outside, as one more producer: no signal reaches the target, and the
/// label takes its place in the event order like any record.
public enum SnapshotMarker {
  /// - Throws: `CollectorError.setup` when the process does not exist, is
  ///   another user's, or is not traced by a `memsift run` of this user.
  public static func mark(pid: Int32, label: String, environment: [String: String]) throws {
    guard kill(pid, 0) == 0 || errno == EPERM else { throw CollectorError.setup("no process \(pid)") }
    // Only our own rings are ever looked at, but a ring left by a dead
    // process of ours may carry a PID now reused by someone else's: refuse
    // before touching anything.
    var st = stat()
    if getuid() != 0 && (stat("/proc/\(pid)", &st) != 0 || st.st_uid != getuid()) {
      throw CollectorError.setup(
        "process \(pid) belongs to another user; memsift snapshot marks only your own processes")
    }
    let base = try RunDirectory.userDirectory(environment: environment)
    // Every image of the PID has a ring; the newest (largest start time) is the running one.
    var newest: (path: String, start: UInt64)?
    for run in RunDirectory.entries(of: base) where run.hasPrefix("run-") {
      for name in RunDirectory.entries(of: base + "/" + run) where name.hasPrefix("\(pid)-") && name.hasSuffix(".ring") {
        let start = UInt64(name.dropFirst("\(pid)-".count).dropLast(".ring".count)) ?? 0
        if start >= newest?.start ?? 0 { newest = (base + "/" + run + "/" + name, start) }
      }
    }
    guard let ringPath = newest?.path else {
      throw CollectorError.setup(
        "process \(pid) is not traced by memsift run (no ring for it in \(base)); "
          + "processes traced with plain LD_PRELOAD can only mark themselves (memsift_snapshot)")
    }
    let fd = open(ringPath, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { throw CollectorError.setup("cannot open \(ringPath): \(String(cString: strerror(errno)))") }
    var ring = ms_ring_t()
    let rc = ms_ring_attach(&ring, fd)
    close(fd)
    guard rc == 0 else { throw CollectorError.setup("\(ringPath) is not a memsift ring") }
    defer { ms_ring_unmap(&ring) }
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
    let now = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    // The process's RSS now, so the label shows the RSS of its own moment.
    if let rss = residentBytes(of: pid) {
      let r = ms_ring_reserve(&ring, UInt32(MemoryLayout<ms_rss_record_t>.size), UInt8(MS_REC_RSS.rawValue), 0)!
      let raw = UnsafeMutableRawPointer(r)
      raw.storeBytes(of: now, toByteOffset: 8, as: UInt64.self)
      raw.storeBytes(of: rss, toByteOffset: 16, as: UInt64.self)
      ms_ring_commit(r)
    }
    let bytes = Array(label.utf8.prefix(Int(MS_SNAPSHOT_LABEL_MAX)))
    let headerSize = MemoryLayout<ms_snapshot_record_t>.size
    let size = (headerSize + bytes.count + 7) & ~7
    let record = ms_ring_reserve(&ring, UInt32(size), UInt8(MS_REC_SNAPSHOT.rawValue), 0)!
    var r = ms_snapshot_record_t()
    r.time_ns = now
    r.label_len = UInt32(bytes.count)
    r.source = MS_SNAPSHOT_EXTERNAL.rawValue
    let raw = UnsafeMutableRawPointer(record)
    // The payload after the header word, then the label and padding; the
    // header word itself is written by the commit.
    withUnsafeBytes(of: &r) { src in
      (raw + 8).copyMemory(from: src.baseAddress! + 8, byteCount: headerSize - 8)
    }
    if !bytes.isEmpty {
      bytes.withUnsafeBytes { (raw + headerSize).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }
    (raw + headerSize + bytes.count).initializeMemory(as: UInt8.self, repeating: 0, count: size - headerSize - bytes.count)
    ms_ring_commit(record)
  }

  /// Resident bytes of `pid` from /proc/PID/statm.
  static func residentBytes(of pid: Int32) -> UInt64? {
    let fd = open("/proc/\(pid)/statm", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let n = read(fd, &buffer, buffer.count)
    guard n > 0 else { return nil }
    let fields = String(decoding: buffer[0..<n], as: UTF8.self).split(separator: " ")
    guard fields.count > 1, let pages = UInt64(fields[1]) else { return nil }
    return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
  }
}
