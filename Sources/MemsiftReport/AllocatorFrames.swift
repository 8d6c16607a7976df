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
    // libiberty (GCC, binutils), GLib, SQLite: the wrappers every caller goes through.
    "xmalloc", "xcalloc", "xrealloc", "xstrdup", "xmemdup", "g_malloc", "g_malloc0", "g_realloc", "g_try_malloc",
    "g_malloc_n", "g_malloc0_n", "g_realloc_n", "g_strdup", "g_slice_alloc", "g_slice_alloc0", "sqlite3Malloc",
    "sqlite3MallocZero", "sqlite3Realloc", "sqlite3DbMallocRaw", "sqlite3DbMallocRawNN", "sqlite3DbMallocZero",
    "sqlite3DbRealloc", "sqlite3_malloc", "sqlite3_malloc64", "sqlite3_realloc", "sqlite3_realloc64",
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
