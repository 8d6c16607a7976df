import MemsiftReport
import MemsiftSymbols
import Testing

/// The protobuf wire encoding against the examples of the protobuf
/// documentation (encoding.md), and the flame tree's collapsed stacks.
@Suite struct ExportFormatTests {
  @Test func varintsAndFieldsAreEncodedAsTheProtobufDocumentationShows() {
    var w = ProtoWriter()
    w.uint64(1, 150)
    #expect(w.bytes == [0x08, 0x96, 0x01])
    w = ProtoWriter()
    w.string(2, "testing")
    #expect(w.bytes == [0x12, 0x07] + Array("testing".utf8))
    w = ProtoWriter()
    w.packed(4, [3, 270, 86942])
    #expect(w.bytes == [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05])
    // Negative int64: ten bytes of two's complement.
    w = ProtoWriter()
    w.int64(1, -2)
    #expect(w.bytes == [0x08, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    // Zero scalars are left out; an empty string (string_table[0]) is not.
    w = ProtoWriter()
    w.uint64(3, 0)
    w.string(6, "")
    #expect(w.bytes == [0x32, 0x00])
    w = ProtoWriter()
    w.message(11) { $0.uint64(1, 1) }
    #expect(w.bytes == [0x5A, 0x02, 0x08, 0x01])
  }

  @Test func gzipOutputHasTheGzipHeader() throws {
    let out = try Gzip.compress(Array(repeating: 7, count: 10_000))
    #expect(Array(out.prefix(3)) == [0x1f, 0x8b, 0x08])
    #expect(out.count < 200)
  }

  static func frame(_ name: String, python: Bool = false) -> SymbolizedFrame {
    SymbolizedFrame(
      function: name, file: python ? "/srv/app/service.py" : nil, line: python ? 61 : nil, module: "/bin/x",
      address: 0, offset: 0, inlined: false, kind: python ? .python : .native)
  }

  @Test func collapsedStacksListEachPathWithWhatItHoldsItself() {
    var tree = FlameTree(width: 2)
    // Innermost first, as SiteReportBuilder gives stacks.
    tree.add(frames: [Self.frame("leaf"), Self.frame("a"), Self.frame("main")], values: [300, 3])
    tree.add(frames: [Self.frame("leaf"), Self.frame("b"), Self.frame("main")], values: [5000, 5])
    tree.add(frames: [Self.frame("b"), Self.frame("main")], values: [10, 1])
    tree.add(frames: [Self.frame("remember", python: true), Self.frame("main;x")], values: [7, 0])
    #expect(tree.nodes[0].values == [5317, 9])
    #expect(
      tree.paths(metric: 0).map { "\($0.names.joined(separator: ";")) \($0.value)" }.sorted() == [
        "main:x;remember service.py:61 7", "main;a;leaf 300", "main;b 10", "main;b;leaf 5000",
      ])
    // The count figure: the Python stack holds no allocation and is left out.
    #expect(tree.paths(metric: 1).count == 3)
    // Pruned at 1%: `main:x` (7 B, no count) goes, the widths left stay exact.
    let pruned = tree.pruned(below: 0.01)
    #expect(pruned.nodes.count == tree.nodes.count - 2)
    #expect(pruned.nodes[0].values == [5317, 9])
  }

  @Test func aDiffTreeSplitsGrowthFromShrink() {
    var tree = FlameTree(width: 2)
    tree.add(frames: [Self.frame("grows"), Self.frame("main")], values: [900, 0])
    tree.add(frames: [Self.frame("shrinks"), Self.frame("main")], values: [0, 100])
    #expect(tree.nodes[0].values == [900, 100])
    #expect(tree.nodes.first { $0.name == "shrinks" }?.values == [0, 100])
  }
}
