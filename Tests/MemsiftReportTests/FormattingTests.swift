import MemsiftReport
import Testing

@Test func commandLinesStayOnOneLineAndQuoteWhatAShellWould() {
  #expect(CommandDisplay.line(["python3", "-c", "print(1)\nprint(2)"]) == "python3 -c 'print(1)\\nprint(2)'")
  #expect(CommandDisplay.line(["sh", "-c", "echo it's"]) == "sh -c 'echo it'\\''s'")
  #expect(CommandDisplay.line(["/usr/bin/env", "A=1", "ls"]) == "/usr/bin/env A=1 ls")
  #expect(CommandDisplay.line([String(repeating: "x", count: 300)], limit: 20).count == 20)
}

@Test func bytesAndCountsReadTheWayPeopleWriteThem() {
  #expect(ByteFormat.bytes(512) == "512 B")
  #expect(ByteFormat.bytes(1536) == "1.5 KiB")
  #expect(ByteFormat.bytes(5 << 30) == "5.0 GiB")
  #expect(ByteFormat.count(1_234_567) == "1,234,567")
  #expect(ByteFormat.count(999) == "999")
  #expect(ByteFormat.seconds(1_234_000_000) == "1.234 s")
  #expect(ByteFormat.seconds(5_000_000) == "0.005 s")
}
