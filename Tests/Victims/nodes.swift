// Swift class instances allocated in a known function and kept in a global
// array to the end (a leak: globals are never destroyed). Built with
// `swiftc -g -Onone`; the report must name makeNodes demangled.
//
// usage: nodes N     makes N Node instances

final class Node {
  var value: Int
  init(_ value: Int) { self.value = value }
}

var kept: [Node] = []

@inline(never)
func makeNodes(_ n: Int) {
  kept.reserveCapacity(n)
  for i in 0..<n {
    kept.append(Node(i))  // @site:makeNodes.Node
  }
}

makeNodes(Int(CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "10") ?? 10)
