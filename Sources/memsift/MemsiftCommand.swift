import ArgumentParser

#if canImport(Glibc)
  import Glibc
#endif

@main
struct MemsiftCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "memsift",
    abstract: "Trace the heap of any Linux process, and find what holds memory.",
    subcommands: [
      Run.self, Report.self, Diff.self, Growth.self, Snapshot.self, Snapshots.self, Flamegraph.self, Export.self,
    ]
  )
}

/// Prints one line on stderr, prefixed with the tool's name.
func printError(_ message: String) {
  var line = "memsift: \(message)\n"
  line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}
