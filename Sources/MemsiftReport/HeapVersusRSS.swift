/// RSS beside the live heap, and the gap between them named for what it is.
public enum HeapVersusRSS {
  /// "61.0 MiB (58.0 MiB beyond the heap: allocator caches, fragmentation, other mappings)": what the
  /// heap tracker does not explain.
  public static func describe(heap: UInt64, rss: UInt64) -> String {
    guard rss > heap else { return "\(ByteFormat.bytes(rss)) (the heap accounts for all of it)" }
    return "\(ByteFormat.bytes(rss)) (\(ByteFormat.bytes(rss - heap)) beyond the heap: allocator caches, "
      + "fragmentation, other mappings)"
  }
}
