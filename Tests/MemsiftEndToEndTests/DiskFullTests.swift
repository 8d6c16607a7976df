import Foundation
import Testing

/// The trace's file system fills up: one clear line from memsift, and the
/// program runs to its end with its own output and exit status. The disk is
/// a small tmpfs mounted in a private mount namespace (`unshare -m`), so
/// nothing outlives the run.
@Suite struct DiskFullTests {
  static let canMount: Bool = {
    let p = Foundation.Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
    p.arguments = ["-m", "sh", "-c", "mount -t tmpfs -o size=64k memsift-probe /mnt"]
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
  }()

  /// Runs `command` with a 256 KiB tmpfs on `dir/disk`, filled up but for `room`.
  static func onFullDisk(_ command: [String], room: String, in dir: TestDirectory) throws -> CommandResult {
    let disk = dir.file("disk")
    try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: false)
    let script = """
      set -e
      mount -t tmpfs -o size=256k memsift-full "$1"
      head -c \(room) /dev/zero > "$1/room"
      head -c 1m /dev/zero > "$1/fill" 2>/dev/null || true
      rm "$1/room"
      shift
      exec "$@"
      """
    return try runCommand("/usr/bin/unshare", ["-m", "sh", "-c", script, "sh", disk] + command, in: dir)
  }

  /// `room`: none at all (the header cannot be written) or a few KiB (the
  /// trace fails part way through).
  @Test(.enabled(if: canMount, "needs permission to mount a tmpfs in a mount namespace"), arguments: ["0", "4k"])
  func aFullDiskUnderTheCollectorGivesOneClearMessageAndLeavesTheTargetAlone(_ room: String) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("collector" + room)
    let result = try Self.onFullDisk(
      [E2E.memsift, "run"] + E2E.shimOptions + ["-o", dir.file("disk/t.trace"), "--", v.hazards, "dlopen", "300", v.plugin],
      room: room, in: dir)
    #expect(result.exitedWith == 0, "\(result)")
    #expect(try result.victim()["cycles"] == 300)
    let lines = result.stderr.split(separator: "\n").filter { $0.contains("No space left on device") }
    #expect(lines.count == 1, "\(result.stderr)")
    #expect(lines.first?.hasPrefix("memsift: cannot write \(dir.file("disk/t.trace"))") == true, "\(result.stderr)")
  }

  @Test(.enabled(if: canMount, "needs permission to mount a tmpfs in a mount namespace"), arguments: ["0", "4k"])
  func aFullDiskUnderTheShimAloneGivesOneClearMessageAndLeavesTheTargetAlone(_ room: String) throws {
    let v = try E2E.victims()
    let dir = try TestDirectory("preload" + room)
    let result = try Self.onFullDisk(
      [
        "/usr/bin/env", "LD_PRELOAD=" + E2E.shim, "MEMSIFT_OUTPUT=" + dir.file("disk/t.trace"), v.hazards, "dlopen",
        "300", v.plugin,
      ], room: room, in: dir)
    #expect(result.exitedWith == 0, "\(result)")
    #expect(try result.victim()["cycles"] == 300)
    let lines = result.stderr.split(separator: "\n").filter { $0.contains("No space left on device") }
    #expect(lines.count == 1, "\(result.stderr)")
    #expect(lines.first?.hasPrefix("memsift: cannot write \(dir.file("disk/t.trace"))") == true, "\(result.stderr)")
  }
}
