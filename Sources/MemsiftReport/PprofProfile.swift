import MemsiftAnalysis
import MemsiftFormat
import MemsiftSymbols

/// A trace as pprof's `profile.proto` (github.com/google/pprof, proto/profile.proto),
/// the heap profile `go tool pprof` reads: per stack alloc_objects/count,
/// alloc_space/bytes, inuse_objects/count, inuse_space/bytes. In use means
/// leaked (live at the end), or live at a chosen point.
public enum PprofProfile {
  // Field numbers of profile.proto.
  enum Profile { static let sampleType = 1, sample = 2, mapping = 3, location = 4, function = 5, stringTable = 6,
    timeNanos = 9, durationNanos = 10, periodType = 11, period = 12, comment = 13, defaultSampleType = 14 }
  enum ValueType { static let type = 1, unit = 2 }
  enum Sample { static let locationID = 1, value = 2 }
  enum Mapping { static let id = 1, memoryStart = 2, memoryLimit = 3, fileOffset = 4, filename = 5, buildID = 6,
    hasFunctions = 7, hasFilenames = 8, hasLineNumbers = 9, hasInlineFrames = 10 }
  enum Location { static let id = 1, mappingID = 2, address = 3, line = 4 }
  enum Line { static let functionID = 1, line = 2 }
  enum Function { static let id = 1, name = 2, systemName = 3, filename = 4 }

  /// The sample types, in the order of each sample's values.
  public static let sampleTypes = [
    ("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"), ("inuse_space", "bytes"),
  ]

  /// The encoded profile (not yet gzipped). `builder` should keep raw names
  /// (a symbolizer made with `demangle: false`): functions get both the
  /// demangled name and the raw (system) one. `inuse`: the point whose live
  /// blocks are in use; nil for the end (the leaks).
  public static func encode(_ builder: SiteReportBuilder, inuse capture: PointCapture?) -> [UInt8] {
    var table = Tables()
    let analysis = builder.analysis
    var out = ProtoWriter()
    for (type, unit) in sampleTypes {
      let (t, u) = (table.string(type), table.string(unit))
      out.message(Profile.sampleType) { $0.int64(ValueType.type, t); $0.int64(ValueType.unit, u) }
    }
    // pprof names a profile after its first mapping: the executable, the first module loaded.
    if let executable = analysis.modules.first { _ = table.mapping(executable) }
    for (stack, stats) in analysis.sites.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
      let live = capture.map { $0.live[stack] ?? SiteLive(bytes: 0, count: 0) }
        ?? SiteLive(bytes: stats.leakedBytes, count: stats.leakedAllocations)
      let values = [stats.allocations, stats.bytesAllocated, live.count, live.bytes]
      guard values.contains(where: { $0 > 0 }) else { continue }
      let locations = table.locations(of: builder.frames(of: stack)) { analysis.module(containing: $0, inStack: stack) }
      out.message(Profile.sample) {
        $0.packed(Sample.locationID, locations)
        $0.packed(Sample.value, values)
      }
    }
    for m in table.mappings { out.message(Profile.mapping) { m.write(&$0) } }
    for l in table.locationList { out.message(Profile.location) { l.write(&$0) } }
    for f in table.functionList { out.message(Profile.function) { f.write(&$0) } }
    // Strings used from here on must be in the table before it is written.
    let (space, bytes) = (table.string("space"), table.string("bytes"))
    let inuseSpace = table.string("inuse_space")
    let comment = table.string("memsift: in use = " + (capture.map { "live at \($0.point)" } ?? "leaked (live at the end)"))
    for s in table.strings { out.string(Profile.stringTable, s) }
    if let process = analysis.summary.process { out.int64(Profile.timeNanos, Int64(process.startWallNs)) }
    out.int64(Profile.durationNanos, Int64(analysis.summary.durationNs))
    out.message(Profile.periodType) { $0.int64(ValueType.type, space); $0.int64(ValueType.unit, bytes) }
    out.int64(Profile.period, Int64(max(analysis.summary.sampleRate, 1)))
    out.packed(Profile.comment, [UInt64(comment)])
    out.int64(Profile.defaultSampleType, inuseSpace)
    return out.bytes
  }

  struct MappingEntry {
    var id: UInt64, start: UInt64, limit: UInt64, filename: Int64, buildID: Int64
    func write(_ w: inout ProtoWriter) {
      w.uint64(Mapping.id, id)
      w.uint64(Mapping.memoryStart, start)
      w.uint64(Mapping.memoryLimit, limit)
      w.int64(Mapping.filename, filename)
      w.int64(Mapping.buildID, buildID)
      for field in [Mapping.hasFunctions, Mapping.hasFilenames, Mapping.hasLineNumbers, Mapping.hasInlineFrames] {
        w.bool(field, true)
      }
    }
  }

  struct LocationEntry {
    var id: UInt64, mapping: UInt64, address: UInt64
    /// (function id, line), innermost first: line[0] is the innermost inlined function.
    var lines: [(UInt64, Int64)]
    func write(_ w: inout ProtoWriter) {
      w.uint64(Location.id, id)
      w.uint64(Location.mappingID, mapping)
      w.uint64(Location.address, address)
      for (function, line) in lines {
        w.message(Location.line) { $0.uint64(Line.functionID, function); $0.int64(Line.line, line) }
      }
    }
  }

  struct FunctionEntry {
    var id: UInt64, name: Int64, systemName: Int64, filename: Int64
    func write(_ w: inout ProtoWriter) {
      w.uint64(Function.id, id)
      w.int64(Function.name, name)
      w.int64(Function.systemName, systemName)
      w.int64(Function.filename, filename)
    }
  }

  /// The profile's deduplicated tables; ids start at 1 (0 means none in profile.proto).
  struct Tables {
    var strings: [String] = [""]  // string_table[0] must be ""
    var stringIndex: [String: Int64] = ["": 0]
    var mappings: [MappingEntry] = []
    var mappingByLoad: [Int: UInt64] = [:]
    var locationList: [LocationEntry] = []
    var locationByKey: [String: UInt64] = [:]
    var functionList: [FunctionEntry] = []
    var functionByKey: [String: UInt64] = [:]

    mutating func string(_ s: String) -> Int64 {
      if let i = stringIndex[s] { return i }
      strings.append(s)
      stringIndex[s] = Int64(strings.count - 1)
      return Int64(strings.count - 1)
    }

    mutating func function(_ f: SymbolizedFrame) -> UInt64 {
      // A frame without a symbol is named as the flame graph names it: module+offset.
      let raw = f.function ?? FlameTree.name(of: f)
      let key = raw + "\u{0}" + (f.file ?? "")
      if let id = functionByKey[key] { return id }
      let entry = FunctionEntry(
        id: UInt64(functionList.count + 1), name: string(Demangler.demangle(raw)), systemName: string(raw),
        filename: string(f.file ?? ""))
      functionList.append(entry)
      functionByKey[key] = entry.id
      return entry.id
    }

    mutating func mapping(_ m: TracedModule) -> UInt64 {
      if let id = mappingByLoad[m.loadRecord] { return id }
      let segments = m.module.segments
      let lo = segments.map(\.vaddr).min() ?? 0
      let hi = segments.map { $0.vaddr &+ $0.memsz }.max() ?? 0
      let entry = MappingEntry(
        id: UInt64(mappings.count + 1), start: m.base &+ lo, limit: m.base &+ hi, filename: string(m.path),
        buildID: string(LoadedModule.hex(m.module.buildID)))
      mappings.append(entry)
      mappingByLoad[m.loadRecord] = entry.id
      return entry.id
    }

    /// The location ids of a stack's frames (innermost first, as a sample
    /// lists them). A native return address and the frames inlined at it
    /// are one location; each Python frame is a location without a mapping.
    mutating func locations(
      of frames: [SymbolizedFrame], module: (UInt64) -> TracedModule?
    ) -> [UInt64] {
      var ids: [UInt64] = []
      var group: [SymbolizedFrame] = []
      for frame in frames {
        group.append(frame)
        // A native group ends at the function the frames before it were inlined into.
        guard frame.kind == .python || !frame.inlined else { continue }
        ids.append(location(group, module: module))
        group = []
      }
      if !group.isEmpty { ids.append(location(group, module: module)) }
      return ids
    }

    private mutating func location(_ group: [SymbolizedFrame], module: (UInt64) -> TracedModule?) -> UInt64 {
      let first = group[0]
      let key = first.kind == .python
        ? "py\u{0}\(first.function ?? "")\u{0}\(first.file ?? "")\u{0}\(first.line ?? 0)"
        : "\(first.address)\u{0}\(first.module)"
      if let id = locationByKey[key] { return id }
      let mappingID = first.kind == .python ? 0 : module(first.address).map { mapping($0) } ?? 0
      let lines = group.map { (function($0), Int64($0.line ?? 0)) }
      let entry = LocationEntry(
        id: UInt64(locationList.count + 1), mapping: mappingID, address: first.kind == .python ? 0 : first.address,
        lines: lines)
      locationList.append(entry)
      locationByKey[key] = entry.id
      return entry.id
    }
  }
}
