import MemsiftSymbols

/// Frames that belong to an allocator rather than to the code that asked for
/// memory: skipped when a site is named by its function, unless
/// `--keep-allocator-frames`. One place lists them all.
public enum AllocatorFrames {
  /// Exact function names (demangled).
  static let names: Set<String> = [
    "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc", "memalign",
    "valloc", "pvalloc", "operator new(unsigned long)", "operator new[](unsigned long)",
    "operator new(unsigned long, std::nothrow_t const&)", "operator new[](unsigned long, std::nothrow_t const&)",
    "operator new(unsigned long, std::align_val_t)", "operator new[](unsigned long, std::align_val_t)",
    "strdup", "strndup", "__strdup", "asprintf", "vasprintf", "__libc_malloc", "__libc_calloc", "__libc_realloc",
  ]

  /// Prefixes of wrapper families: C++ allocators, CPython's memory API,
  /// Rust's and Swift's allocation entry points.
  static let prefixes: [String] = [
    "operator new", "std::allocator", "__gnu_cxx::new_allocator", "std::__new_allocator",
    "std::allocator_traits", "_PyMem_", "PyMem_", "PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc",
    "_PyObject_Malloc", "_PyObject_Calloc", "_PyObject_Realloc", "__rust_alloc", "__rdl_alloc",
    "alloc::alloc::", "swift_slowAlloc", "swift_allocObject",
  ]

  /// Whether `frame` is an allocator's own frame. Judged on the demangled
  /// name, so `--no-demangle` (which shows `_Znwm`) skips the same frames.
  public static func contains(_ frame: SymbolizedFrame) -> Bool {
    guard let raw = frame.function else { return false }
    let f = Demangler.demangle(raw)
    return names.contains(f) || prefixes.contains { f.hasPrefix($0) }
  }

  /// The frames from the first one outside the allocator, innermost first
  /// (all of them when every frame is an allocator's).
  public static func trimmed(_ frames: [SymbolizedFrame]) -> [SymbolizedFrame] {
    guard let first = frames.firstIndex(where: { !contains($0) }) else { return frames }
    return Array(frames[first...])
  }
}
