#if !MEMSIFT_FUZZ
  #if canImport(Glibc)
    import Glibc
  #endif

  /// Without libFuzzer (the normal build), `memsift-fuzz FILE|DIR...` runs
  /// each file, or each file of each directory, through the fuzz target once:
  /// the corpus pass CI makes. It fails when an input takes longer than
  /// `--timeout` seconds or the process grows past `--rss-limit-mb`; a trap
  /// fails it by itself.
  @main
  struct Replay {
    static func main() {
      var timeout = 10.0
      var rssLimitMB = 1024
      var paths: [String] = []
      var args = CommandLine.arguments.dropFirst()
      while let arg = args.popFirst() {
        switch arg {
        case "--timeout": timeout = args.popFirst().flatMap(Double.init) ?? timeout
        case "--rss-limit-mb": rssLimitMB = args.popFirst().flatMap(Int.init) ?? rssLimitMB
        default: paths.append(arg)
        }
      }
      guard !paths.isEmpty else {
        fputs("usage: memsift-fuzz [--timeout SECONDS] [--rss-limit-mb MB] FILE|DIR...\n", stderr)
        exit(2)
      }
      var count = 0
      var slowest = (seconds: 0.0, path: "")
      for file in paths.flatMap(files(in:)) {
        guard let bytes = read(file) else {
          fputs("memsift-fuzz: cannot read \(file)\n", stderr)
          exit(2)
        }
        let start = now()
        bytes.withUnsafeBytes { fuzzOne($0) }
        let seconds = now() - start
        if seconds > slowest.seconds { slowest = (seconds, file) }
        if seconds > timeout {
          fputs("memsift-fuzz: \(file) took \(seconds) s (limit \(timeout) s)\n", stderr)
          exit(1)
        }
        let rss = peakRSSMB()
        if rss > rssLimitMB {
          fputs("memsift-fuzz: after \(file) the peak RSS is \(rss) MB (limit \(rssLimitMB) MB)\n", stderr)
          exit(1)
        }
        count += 1
      }
      let ms = Int(slowest.seconds * 1000)
      print("memsift-fuzz: \(count) inputs, slowest \(ms) ms (\(slowest.path)), peak RSS \(peakRSSMB()) MB")
    }

    static func files(in path: String) -> [String] {
      guard let dir = opendir(path) else { return [path] }
      defer { closedir(dir) }
      var out: [String] = []
      while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name.hasPrefix(".") { continue }
        out.append("\(path)/\(name)")
      }
      return out.sorted()
    }

    static func read(_ path: String) -> [UInt8]? {
      let fd = open(path, O_RDONLY | O_CLOEXEC)
      guard fd >= 0 else { return nil }
      defer { close(fd) }
      var out: [UInt8] = []
      var buffer = [UInt8](repeating: 0, count: 1 << 16)
      while true {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 { return nil }
        if n == 0 { return out }
        out += buffer[..<n]
      }
    }

    static func now() -> Double {
      var ts = timespec()
      clock_gettime(CLOCK_MONOTONIC, &ts)
      return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func peakRSSMB() -> Int {
      var usage = rusage()
      getrusage(RUSAGE_SELF.rawValue, &usage)
      return usage.ru_maxrss / 1024
    }
  }
#endif
