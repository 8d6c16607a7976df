import MemsiftAnalysis
import Testing

@Test func pointsParseFromTheirSuffixAndAnExistingPathIsAWholeTrace() throws {
  let none: (String) -> Bool = { _ in false }
  #expect(try TracePoint.parse("a.trace", fileExists: none) == ("a.trace", .end))
  #expect(try TracePoint.parse("a.trace@warm", fileExists: none) == ("a.trace", .label("warm")))
  #expect(try TracePoint.parse("a.trace@12.5s", fileExists: none) == ("a.trace", .seconds(12.5)))
  #expect(try TracePoint.parse("a.trace@peak", fileExists: none) == ("a.trace", .peak))
  #expect(try TracePoint.parse("a.trace@start", fileExists: none) == ("a.trace", .start))
  // A label named like a keyword or a time.
  #expect(try TracePoint.parse("a.trace@label:end", fileExists: none) == ("a.trace", .label("end")))
  #expect(try TracePoint.parse("a.trace@label:2s", fileExists: none) == ("a.trace", .label("2s")))
  // A file whose name has an @ in it is itself.
  #expect(try TracePoint.parse("b@c.trace", fileExists: { $0 == "b@c.trace" }) == ("b@c.trace", .end))
  #expect(throws: TracePointError.self) { try TracePoint.parse("a.trace@", fileExists: none) }
  #expect(throws: TracePointError.self) { try TracePoint.parse("a.trace@-3s", fileExists: none) }
}
