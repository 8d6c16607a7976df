/*
 * Shared by the end-to-end victims: a tally of what the program itself did,
 * kept with the same definitions as `memsift report` (heaptrack's), and a
 * JSON line written with snprintf + write(2).
 *
 * Nothing here allocates: the tally is a fixed table and the output never
 * goes through stdio streams, so the victim's own bookkeeping adds no heap
 * operation to the trace.
 *
 * Definitions mirrored from the report (Sources/MemsiftAnalysis/HeapReplay.swift):
 *   - allocations: calls that returned a block (realloc included);
 *   - frees: free() of a block, plus the old block of a successful or
 *     zero-size realloc;
 *   - calls: per function, failed reallocs included, failed allocations not
 *     (the shim does not record a NULL result), free(NULL) not;
 *   - temporary: a block freed with no other allocation in between;
 *   - peak: most bytes requested and not yet freed.
 */
#ifndef MEMSIFT_VICTIM_H
#define MEMSIFT_VICTIM_H

#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* GCC 12 flags taking a block's address as an integer before realloc as a
 * use after free; the address is only compared, never dereferenced. */
#if defined(__GNUC__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

enum v_fn {
  V_MALLOC,
  V_CALLOC,
  V_REALLOC,
  V_REALLOCARRAY,
  V_POSIX_MEMALIGN,
  V_ALIGNED_ALLOC,
  V_MEMALIGN,
  V_VALLOC,
  V_PVALLOC,
  V_FREE,
  V_FN_COUNT
};

static const char *const v_fn_names[V_FN_COUNT] = {
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign",
    "aligned_alloc", "memalign", "valloc", "pvalloc", "free",
};

#define V_MAX_LIVE 4096

static struct {
  unsigned long long calls[V_FN_COUNT];
  unsigned long long allocations, frees, bytes_allocated, temporary;
  unsigned long long live_bytes, live_count, peak_bytes;
  uintptr_t last; /* the last allocation, 0 once anything was freed */
  struct { uintptr_t ptr; size_t size; } live[V_MAX_LIVE];
} v_tally;

/* A store the compiler cannot drop: without it, it may remove a malloc whose
 * block is never used, or a malloc/free pair. */
static void *volatile v_sink;

static inline void *v_keep(void *p) {
  v_sink = p;
  return p;
}

static void v_die(const char *what) {
  char line[256];
  int n = snprintf(line, sizeof line, "victim: %s\n", what);
  if (write(2, line, (size_t)n) < 0) _exit(99);
  _exit(99);
}

static void v_track_alloc(void *p, size_t size) {
  for (int i = 0; i < V_MAX_LIVE; i++) {
    if (v_tally.live[i].ptr == 0) {
      v_tally.live[i].ptr = (uintptr_t)p;
      v_tally.live[i].size = size;
      v_tally.allocations++;
      v_tally.bytes_allocated += size;
      v_tally.live_bytes += size;
      v_tally.live_count++;
      v_tally.last = (uintptr_t)p;
      if (v_tally.live_bytes > v_tally.peak_bytes) v_tally.peak_bytes = v_tally.live_bytes;
      return;
    }
  }
  v_die("tally table full");
}

static void v_track_free(uintptr_t p) {
  for (int i = 0; i < V_MAX_LIVE; i++) {
    if (v_tally.live[i].ptr == p) {
      v_tally.frees++;
      v_tally.live_bytes -= v_tally.live[i].size;
      v_tally.live_count--;
      v_tally.live[i].ptr = 0;
      if (v_tally.last == p) v_tally.temporary++;
      v_tally.last = 0;
      return;
    }
  }
  v_die("freeing a block the tally does not know");
}

/* A call of `fn` that returned `p` for `size` bytes. */
static void *v_alloc(enum v_fn fn, void *p, size_t size) {
  if (!p) v_die("allocation failed");
  v_keep(p);
  v_tally.calls[fn]++;
  v_track_alloc(p, size);
  return p;
}

static void v_free(void *p) {
  if (!p) {
    free(p); /* not recorded by the shim */
    return;
  }
  v_tally.calls[V_FREE]++;
  v_track_free((uintptr_t)p);
  free(p);
}

/* The outcome of a realloc-like call on `old` (its address, taken before
 * the call) asking for `size`. */
static inline void v_realloc_outcome(enum v_fn fn, uintptr_t old, void *q, size_t size) {
  v_tally.calls[fn]++;
  if (!q && size > 0) return; /* failed: old untouched */
  if (old) v_track_free(old);
  if (q) v_track_alloc(q, size);
}

static inline void *v_realloc(void *old, size_t size) {
  uintptr_t was = (uintptr_t)old;
  void *q = realloc(old, size);
  v_realloc_outcome(V_REALLOC, was, q, size);
  return q;
}

/* ---- the JSON line ---- */

static char v_json[8192];
static size_t v_json_len;
static int v_json_first;

static void v_json_raw(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(v_json + v_json_len, sizeof v_json - v_json_len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof v_json - v_json_len) v_die("JSON line too long");
  v_json_len += (size_t)n;
}

static void v_json_begin(void) {
  v_json_len = 0;
  v_json_first = 1;
  v_json_raw("{");
}

static void v_json_key(const char *key) {
  v_json_raw("%s\"%s\":", v_json_first ? "" : ",", key);
  v_json_first = 0;
}

static void v_json_u64(const char *key, unsigned long long v) {
  v_json_key(key);
  v_json_raw("%llu", v);
}

static inline void v_json_i64(const char *key, long long v) {
  v_json_key(key);
  v_json_raw("%lld", v);
}

static inline void v_json_str(const char *key, const char *s) {
  v_json_key(key);
  v_json_raw("\"%s\"", s);
}

/* The tally, with the report's key names. */
static void v_json_tally(void) {
  v_json_key("calls");
  v_json_raw("{");
  int first = 1;
  for (int i = 0; i < V_FN_COUNT; i++) {
    if (!v_tally.calls[i]) continue;
    v_json_raw("%s\"%s\":%llu", first ? "" : ",", v_fn_names[i], v_tally.calls[i]);
    first = 0;
  }
  v_json_raw("}");
  v_json_u64("allocations", v_tally.allocations);
  v_json_u64("frees", v_tally.frees);
  v_json_u64("bytes_allocated", v_tally.bytes_allocated);
  v_json_u64("peak_bytes", v_tally.peak_bytes);
  v_json_u64("leaked_bytes", v_tally.live_bytes);
  v_json_u64("leaked_allocations", v_tally.live_count);
  v_json_u64("temporary_allocations", v_tally.temporary);
}

static void v_json_end(void) {
  v_json_raw("}\n");
  const char *p = v_json;
  size_t n = v_json_len;
  while (n) {
    ssize_t w = write(1, p, n);
    if (w <= 0) _exit(98);
    p += w;
    n -= (size_t)w;
  }
}

static inline unsigned long v_arg(int argc, char **argv, int i, unsigned long fallback) {
  if (i >= argc) return fallback;
  char *end;
  unsigned long v = strtoul(argv[i], &end, 10);
  if (*end) v_die("bad numeric argument");
  return v;
}

#endif
