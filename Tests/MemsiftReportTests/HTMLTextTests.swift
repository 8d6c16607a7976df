import Testing

@testable import MemsiftReport

/// What a frame's name can hold must not break out of the page: names are
/// program-controlled (a Python function, a C++ template argument).
@Suite struct HTMLTextTests {
  @Test func textAndAttributesAreEscaped() {
    #expect(HTMLText.escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;")
  }

  @Test func jsonStringsCannotCloseTheScriptElement() {
    #expect(HTMLText.json("</script><!--") == "\"\\u003c/script>\\u003c!--\"")
    #expect(HTMLText.json("a\"b\\c\nd\u{1}") == "\"a\\\"b\\\\c\\nd\\u0001\"")
    #expect(HTMLText.json("\u{2028}") == "\"\\u2028\"")
  }

  @Test func millisecondsKeepMicroseconds() {
    #expect(HTMLReport.ms(1_234_567_890) == "1234.567")
    #expect(HTMLReport.ms(5_000) == "0.005")
  }
}
