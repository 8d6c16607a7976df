/*
 * What the allocation hooks share: interpose.c's (malloc and friends) and
 * pymem.c's (CPython's own allocators). Both record a block the same way.
 */
#ifndef MEMSIFT_HOOKS_H
#define MEMSIFT_HOOKS_H

#include "internal.h"
#include "guard.h"
#include "sample.h"

#include <errno.h>

/* The sanitizer build (make test-sanitizers, MS_SANITIZER_BUILD): ASan
 * initializes from the instrumented program's preinit array, and its
 * initialization calls malloc (through dlsym) before its shadow memory is
 * mapped. So the hooks and the bootstrap (interpose.c, bootstrap.c) are not
 * ASan-instrumented there, and nothing instrumented runs from a hook
 * before our constructor has: allocations made before it go untraced in
 * that build only. */
#ifdef MS_SANITIZER_BUILD
extern int g_constructed;
#define MS_MAY_START() ms_load_acquire(&g_constructed)
#else
#define MS_MAY_START() 1
#endif

/* Whether this call is recorded: not from inside the shim; tracing starts
 * at the first call after libc is ready, and a forked child adopts its
 * trace at its first call. */
static inline int ms_should_trace(void) {
    if (t_in_shim) return 0;
    if (MS_UNLIKELY(!g_tracing) && (!MS_MAY_START() || !ms_start_lazily())) return 0;
    if (MS_UNLIKELY(!*g_trace_owner) && !ms_adopt_after_fork()) return 0;
    return 1;
}

/* Records a successful allocation; errno stays as the real call left it. */
static inline void ms_after_alloc(uint8_t fn, void *p, uint64_t size) {
    if (!p) return;
    /* Sampling: most allocations stop at the countdown. */
    if (g_sample_filter && !t_in_shim && ms_sample_skip(size)) return;
    if (!ms_should_trace()) return;
    int saved = errno;
    t_in_shim = 1;
    ms_record_alloc(fn, p, size);
    t_in_shim = 0;
    errno = saved;
}

#endif
