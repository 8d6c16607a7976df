/*
 * The interposed allocation functions.
 *
 * Each one returns exactly what the real function returns and leaves errno
 * as the real function left it (contract 1). Ordering (contract 3):
 *   - an allocation is recorded after the real call returns the address;
 *   - a free is recorded before the real free, so the address cannot be
 *     handed out again (and recorded) ahead of its free;
 *   - realloc takes its place in the order before the real call (the old
 *     block's release) and again after it (the new block's birth).
 * Calls made while the thread is already inside the shim (guard set) go
 * straight to the real function, untraced.
 */
#include "hooks.h"

#include <errno.h>
#include <string.h>

/* Entry to every hook: the real function is known, or we are inside dlsym. */
#define MS_ENSURE_REAL(arena_call) \
    do {                           \
        if (MS_UNLIKELY(!g_real_ready) && !ms_resolve()) return arena_call; \
    } while (0)

MEMSIFT_EXPORT void *malloc(size_t size) {
    MS_ENSURE_REAL(ms_arena_alloc(size, 16));
    void *p = g_real.malloc(size);
    /* A CPython is waiting for a malloc made with the GIL held to hook
     * its allocators (pymem.c): one load until then, and after. */
    if (MS_UNLIKELY(g_pymem_pending)) ms_pymem_install();
    ms_after_alloc(MS_FN_MALLOC, p, size);
    return p;
}

MEMSIFT_EXPORT void *calloc(size_t n, size_t size) {
    /* The arena is static, hence already zero. */
    size_t total;
    MS_ENSURE_REAL(__builtin_mul_overflow(n, size, &total) ? NULL : ms_arena_alloc(total, 16));
    void *p = g_real.calloc(n, size);
    ms_after_alloc(MS_FN_CALLOC, p, (uint64_t)n * size);
    return p;
}

MEMSIFT_EXPORT void free(void *p) {
    if (MS_UNLIKELY(ms_arena_owns(p))) return; /* bootstrap block: never reclaimed */
    MS_ENSURE_REAL((void)0);
    /* Sampling: the free of a block that cannot be sampled goes straight
     * through (unless Python's code objects are being watched). */
    if (p && g_sample_filter && !ms_sample_maybe(p) && !g_python_active) {
        g_real.free(p);
        return;
    }
    if (p && ms_should_trace()) {
        int saved = errno;
        t_in_shim = 1;
        ms_record_free(p);
        if (MS_UNLIKELY(g_python_active)) ms_python_freed(p);
        t_in_shim = 0;
        errno = saved;
    }
    g_real.free(p);
}

/* A bootstrap block being resized: move it to the real heap. */
static void *ms_realloc_from_arena(void *p, size_t size) {
    void *q = malloc(size);
    if (q) {
        size_t old = ms_arena_size(p);
        memcpy(q, p, old < size ? old : size);
    }
    return q;
}

/* The guard covers the two records, not the real call: a signal handler
 * that frees or allocates while the real realloc runs is traced like any
 * other code (no ring slot is held across the call). */
static void *ms_traced_realloc(uint8_t fn, void *p, size_t size, void *(*call)(void *, size_t, size_t),
                               size_t a, size_t b) {
    if (!ms_should_trace()) return call(p, a, b);
    int saved = errno;
    t_in_shim = 1;
    ms_record_realloc_begin(fn, p, size);
    t_in_shim = 0;
    errno = saved;
    void *q = call(p, a, b);
    saved = errno;
    t_in_shim = 1;
    ms_record_realloc_done(p, q);
    t_in_shim = 0;
    errno = saved;
    return q;
}

static void *ms_call_realloc(void *p, size_t size, size_t unused) {
    (void)unused;
    return g_real.realloc(p, size);
}

MEMSIFT_EXPORT void *realloc(void *p, size_t size) {
    if (MS_UNLIKELY(ms_arena_owns(p))) return ms_realloc_from_arena(p, size);
    MS_ENSURE_REAL(p ? NULL : ms_arena_alloc(size, 16));
    return ms_traced_realloc(MS_FN_REALLOC, p, size, ms_call_realloc, size, 0);
}

MEMSIFT_EXPORT void *reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) total = 0;
    if (MS_UNLIKELY(ms_arena_owns(p))) {
        if (n && size && !total) {
            errno = ENOMEM;
            return NULL;
        }
        return ms_realloc_from_arena(p, total);
    }
    MS_ENSURE_REAL(NULL);
    /* An overflowing request fails before touching p: nothing to record. */
    if (n && size && !total) return g_real.reallocarray(p, n, size);
    /* glibc's reallocarray is the overflow check plus a call to realloc
     * through the interposable symbol, which would land in our hook and be
     * recorded twice: do the realloc ourselves. */
    return ms_traced_realloc(MS_FN_REALLOCARRAY, p, total, ms_call_realloc, total, 0);
}

MEMSIFT_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
    if (MS_UNLIKELY(!g_real_ready) && !ms_resolve()) {
        void *p = ms_arena_alloc(size, alignment);
        if (!p) return ENOMEM;
        *out = p;
        return 0;
    }
    int rc = g_real.posix_memalign(out, alignment, size);
    if (rc == 0) ms_after_alloc(MS_FN_POSIX_MEMALIGN, *out, size);
    return rc;
}

MEMSIFT_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
    MS_ENSURE_REAL(ms_arena_alloc(size, alignment));
    void *p = g_real.aligned_alloc(alignment, size);
    ms_after_alloc(MS_FN_ALIGNED_ALLOC, p, size);
    return p;
}

MEMSIFT_EXPORT void *memalign(size_t alignment, size_t size) {
    MS_ENSURE_REAL(ms_arena_alloc(size, alignment));
    void *p = g_real.memalign(alignment, size);
    ms_after_alloc(MS_FN_MEMALIGN, p, size);
    return p;
}

MEMSIFT_EXPORT void *valloc(size_t size) {
    MS_ENSURE_REAL(ms_arena_alloc(size, 4096));
    void *p = g_real.valloc(size);
    ms_after_alloc(MS_FN_VALLOC, p, size);
    return p;
}

MEMSIFT_EXPORT void *pvalloc(size_t size) {
    MS_ENSURE_REAL(ms_arena_alloc(size, 4096));
    void *p = g_real.pvalloc(size);
    ms_after_alloc(MS_FN_PVALLOC, p, size);
    return p;
}

MEMSIFT_EXPORT size_t malloc_usable_size(void *p) {
    if (MS_UNLIKELY(ms_arena_owns(p))) return ms_arena_size(p);
    MS_ENSURE_REAL(0);
    return g_real.malloc_usable_size(p);
}
