import Foundation
import MemsiftSymbols
import Testing

// MARK: - Agreement with CPython's own co_lines()

/// The interpreters the fixture runs under: the known ones, then any
/// `python3.1[1-9]` on PATH, deduplicated by the real path of the interpreter
/// that actually runs (pyenv shims are scripts, and may not run at all).
func lineTableInterpreters() -> [(path: String, real: String)] {
  let known = [
    "/usr/bin/python3.11",
    "/root/.pyenv/versions/3.11.7/bin/python3.11",
    "/root/.pyenv/versions/3.12.1/bin/python3.12",
    "/root/.pyenv/versions/3.13.0/bin/python3.13",
  ]
  let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
  let onPath = path.split(separator: ":").flatMap { dir in (11...19).map { "\(dir)/python3.\($0)" } }
  var seen: Set<String> = []
  var found: [(path: String, real: String)] = []
  for candidate in known + onPath {
    guard FileManager.default.isExecutableFile(atPath: candidate) else {
      if known.contains(candidate) { print("skipped: \(candidate) not installed") }
      continue
    }
    let probe = run(candidate, ["-c", "import os, sys; print(os.path.realpath(sys.executable))"])
    guard probe.status == 0 else {
      print("skipped: \(candidate) does not run")
      continue
    }
    let real = probe.output.trimmingCharacters(in: .whitespacesAndNewlines)
    if seen.insert(real).inserted { found.append((candidate, real)) }
  }
  return found
}

func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
  let process = Process()
  let pipe = Pipe()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  process.standardOutput = pipe
  process.standardError = pipe
  guard (try? process.run()) != nil else { return (-1, "") }
  let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  process.waitUntilExit()
  return (process.terminationStatus, output)
}

/// What Fixtures/linetables.py writes.
struct LineTableFixture: Decodable {
  struct Code: Decodable {
    let file: String
    let qualname: String
    let firstlineno: Int
    let linetable: String
    let codebytes: Int
    let lines: [[Int?]]
  }
  let version: String
  let forms: [String: Int]
  let codes: [Code]
}

func bytes(hex: String) -> [UInt8] {
  let digits = Array(hex.utf8)
  return stride(from: 0, to: digits.count - 1, by: 2).map {
    UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16)!
  }
}

/// co_lines() with adjacent same-line triples merged (3.11 does not merge,
/// 3.12+ does), to compare with `PythonLineTable.ranges`.
func merged(_ lines: [[Int?]]) -> [Triple] {
  var out: [Triple] = []
  for t in lines {
    let triple = Triple(start: t[0]!, end: t[1]!, line: t[2])
    if let last = out.last, last.line == triple.line, last.end == triple.start {
      out[out.count - 1] = Triple(start: last.start, end: triple.end, line: last.line)
    } else {
      out.append(triple)
    }
  }
  return out
}

struct Triple: Equatable, CustomStringConvertible {
  let start: Int
  let end: Int
  let line: Int?
  var description: String { "(\(start), \(end), \(line.map(String.init) ?? "None"))" }
}

@Test func theDecoderAgreesWithCoLinesOnEveryInterpreterPresent() throws {
  let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/linetables.py").path
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("memsift-linetable-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: dir) }
  let interpreters = lineTableInterpreters()
  try #require(!interpreters.isEmpty, "no Python 3.11+ interpreter found")
  for (index, interpreter) in interpreters.enumerated() {
    let out = dir.appendingPathComponent("\(index).json")
    let result = run(interpreter.path, [script, out.path])
    try #require(result.status == 0, "\(interpreter.path): \(result.output)")
    let fixture = try JSONDecoder().decode(LineTableFixture.self, from: Data(contentsOf: out))
    // The fixture must exercise every entry form, or agreement proves less.
    for form in ["short", "one-line", "no-column", "long", "none"] {
      #expect(fixture.forms[form, default: 0] > 0, "\(interpreter.path): no \(form) entries in the fixture")
    }
    var offsets = 0
    var triples = 0
    var mismatches: [String] = []
    for code in fixture.codes {
      let table = PythonLineTable(firstLine: code.firstlineno, table: bytes(hex: code.linetable))
      let name = "\(code.file):\(code.qualname)"
      for t in code.lines {
        triples += 1
        for offset in stride(from: t[0]!, to: t[1]!, by: 2) {
          offsets += 1
          let line = table.line(atByteOffset: offset)
          if line != t[2] { mismatches.append("\(name) @\(offset): \(line as Any) != \(t[2] as Any)") }
        }
      }
      let ranges = table.ranges.map { Triple(start: $0.start, end: $0.end, line: $0.line) }
      if ranges != merged(code.lines) { mismatches.append("\(name): ranges \(ranges) != co_lines \(code.lines)") }
      let end = code.lines.last?[1] ?? 0
      if table.line(atByteOffset: -2) != nil || table.line(atByteOffset: end) != nil {
        mismatches.append("\(name): a line outside the table")
      }
    }
    let forms = ["short", "one-line", "no-column", "long", "none"].map { "\($0) \(fixture.forms[$0, default: 0])" }
    print(
      "python \(fixture.version) (\(interpreter.real)): \(fixture.codes.count) code objects, \(offsets) offsets,"
        + " \(triples) co_lines() triples; entries: \(forms.joined(separator: ", ")); \(mismatches.count) mismatches"
    )
    #expect(mismatches.isEmpty, "\(interpreter.path): \(mismatches.count) mismatches, first: \(mismatches.prefix(5))")
  }
}

// MARK: - Hand-made tables

/// An entry's first byte: bit 7, the form in bits 3–6, length − 1 in bits 0–2.
func head(_ form: Int, units: Int) -> UInt8 { UInt8(0x80 | form << 3 | (units - 1)) }

func varint(_ value: Int) -> [UInt8] {
  var v = value
  var out: [UInt8] = []
  while v >= 64 {
    out.append(UInt8(0x40 | v & 63))
    v >>= 6
  }
  return out + [UInt8(v)]
}

func signedVarint(_ value: Int) -> [UInt8] { value < 0 ? varint(-value << 1 | 1) : varint(value << 1) }

func triples(_ table: PythonLineTable) -> [Triple] {
  table.ranges.map { Triple(start: $0.start, end: $0.end, line: $0.line) }
}

@Test func everyEntryFormMovesTheLineAsDocumented() {
  let table = PythonLineTable(
    firstLine: 10,
    table: [head(3, units: 1), 0x12]  // short: same line
      + [head(11, units: 2), 4, 9]  // one-line: +1
      + [head(13, units: 3)] + signedVarint(5)  // no columns: +5
      + [head(14, units: 1)] + signedVarint(-2) + varint(0) + varint(1) + varint(5)  // long: -2
      + [head(15, units: 2)]  // no location: line kept
      + [head(0, units: 1), 0]  // short: the kept line again
      + [head(10, units: 1), 1, 2] + [head(12, units: 8), 1, 2]  // one-line: +0, +2
  )
  #expect(
    triples(table) == [
      Triple(start: 0, end: 2, line: 10), Triple(start: 2, end: 6, line: 11), Triple(start: 6, end: 12, line: 16),
      Triple(start: 12, end: 14, line: 14), Triple(start: 14, end: 18, line: nil), Triple(start: 18, end: 22, line: 14),
      Triple(start: 22, end: 38, line: 16),
    ])
  #expect(table.line(atByteOffset: 0) == 10)
  #expect(table.line(atByteOffset: 4) == 11)
  #expect(table.line(atByteOffset: 3) == 11)  // odd: the code unit it falls in
  #expect(table.line(atByteOffset: 10) == 16)
  #expect(table.line(atByteOffset: 12) == 14)
  #expect(table.line(atByteOffset: 16) == nil)
  #expect(table.line(atByteOffset: 20) == 14)
  #expect(table.line(atByteOffset: 36) == 16)
  #expect(table.line(atByteOffset: 38) == nil)
  #expect(table.line(atByteOffset: -2) == nil)
}

@Test func negativeDeltasAndMultiByteVarints() {
  // 31 and 32 straddle the one-byte limit (62 < 64 <= 64); 150003 and
  // -166836 take 4 bytes; Int32.min takes 6 (33 bits once signed).
  #expect(signedVarint(31).count == 1 && signedVarint(32).count == 2 && signedVarint(-150_003).count == 4)
  let deltas = [31, 32, -63, 150_003, -166_836, 1 << 20, -(1 << 31)]
  var bytes: [UInt8] = []
  for delta in deltas { bytes += [head(13, units: 1)] + signedVarint(delta) }
  // The long form reads its delta the same way; the column varints can be long too.
  bytes += [head(14, units: 1)] + signedVarint(-1000) + varint(70) + varint(300) + varint(1 << 30)
  let table = PythonLineTable(firstLine: 1, table: bytes)
  var line = 1
  for (i, delta) in (deltas + [-1000]).enumerated() {
    line += delta
    #expect(table.line(atByteOffset: 2 * i) == line, "entry \(i)")
  }
  #expect(table.ranges.count == deltas.count + 1)
}

@Test func adjacentEntriesWithTheSameLineMerge() {
  let table = PythonLineTable(
    firstLine: 5,
    table: [head(0, units: 8), 0, head(0, units: 8), 0, head(15, units: 1), head(15, units: 1), head(13, units: 1), 0]
  )
  #expect(
    triples(table) == [
      Triple(start: 0, end: 32, line: 5), Triple(start: 32, end: 36, line: nil), Triple(start: 36, end: 38, line: 5),
    ])
}

@Test func hostileTablesDecodeWhatIsWholeAndStop() {
  let good: [UInt8] = [head(0, units: 1), 0]
  let first = [Triple(start: 0, end: 2, line: 1)]
  let cases: [(String, [UInt8], [Triple])] = [
    ("empty", [], []),
    ("no entry start", [0x05, head(0, units: 1), 0], []),
    ("short form without its column byte", good + [head(0, units: 1)], first),
    ("one-line form with one column byte", good + [head(11, units: 1), 3], first),
    ("truncated varint", good + [head(13, units: 1), 0x41], first),
    ("long form without its end column", good + [head(14, units: 1), 2, 0, 1], first),
    ("overlong varint", good + [head(13, units: 1)] + [UInt8](repeating: 0x7f, count: 100) + [1], first),
    ("7-byte varint", good + [head(13, units: 1)] + [UInt8](repeating: 0x7f, count: 6) + [1], first),
    ("entry start inside a varint", good + [head(13, units: 1), 0x41, head(0, units: 1), 0], first),
    ("entry start as a column byte", good + [head(11, units: 1), 3, head(0, units: 1), 0], first),
  ]
  for (name, bytes, expected) in cases {
    let table = PythonLineTable(firstLine: 1, table: bytes)
    #expect(triples(table) == expected, "\(name)")
    #expect(table.line(atByteOffset: 2) == nil, "\(name)")
  }
  // Lines that overflow wrap instead of trapping.
  let huge = PythonLineTable(
    firstLine: Int.max, table: [head(12, units: 1), 0, 0, head(13, units: 1)] + signedVarint(-(1 << 31)))
  #expect(huge.ranges.count == 2)
}

/// SplitMix64: the same "random" tables on every run.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }
}

/// Ranges start at 0, are contiguous, non-empty and ordered, and
/// `line(atByteOffset:)` reads them back.
func checkConsistent(_ table: PythonLineTable) -> Bool {
  var address = 0
  for r in table.ranges {
    guard r.start == address, r.end > r.start, (r.end - r.start) % 2 == 0 else { return false }
    guard table.line(atByteOffset: r.start) == r.line, table.line(atByteOffset: r.end - 1) == r.line else {
      return false
    }
    address = r.end
  }
  return table.line(atByteOffset: address) == nil && table.line(atByteOffset: -1) == nil
}

@Test func randomBytesNeverCrashAndPrefixesDecodeToPrefixes() {
  var rng = SplitMix64(state: 0x6d65_6d73_6966_74)
  for round in 0..<5000 {
    // Half plain noise, half entry starts mixed with plausible payload bytes.
    let plausible = round % 2 == 1
    let bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ -> UInt8 in
      let b = UInt8.random(in: 0...255, using: &rng)
      return plausible && b % 3 != 0 ? b & 0x7f : b
    }
    let table = PythonLineTable(firstLine: Int.random(in: -5...100_000, using: &rng), table: bytes)
    #expect(checkConsistent(table), "\(bytes)")
  }
  // Every prefix of a real table decodes to the lines of the whole entries in it.
  var valid: [UInt8] = []
  for i in 0..<200 {
    switch i % 5 {
    case 0: valid += [head(i % 10, units: 1 + i % 8), 0x15]
    case 1: valid += [head(10 + i % 3, units: 1 + i % 8), 3, 9]
    case 2: valid += [head(13, units: 1 + i % 8)] + signedVarint((i % 2 == 0 ? 1 : -1) * i * 1000)
    case 3: valid += [head(14, units: 1 + i % 8)] + signedVarint(-i) + varint(i) + varint(200) + varint(300)
    default: valid += [head(15, units: 1 + i % 8)]
    }
  }
  let whole = PythonLineTable(firstLine: 7, table: valid)
  for length in 0...valid.count {
    let prefix = PythonLineTable(firstLine: 7, table: Array(valid[..<length]))
    #expect(checkConsistent(prefix))
    let end = prefix.ranges.last?.end ?? 0
    let agrees = stride(from: 0, to: end, by: 2).allSatisfy {
      prefix.line(atByteOffset: $0) == whole.line(atByteOffset: $0)
    }
    #expect(agrees, "prefix of \(length) bytes")
  }
}
