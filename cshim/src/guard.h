/*
 * Per-thread reentrancy guard. While set, the thread is inside the shim (or
 * in what the shim calls: libunwind, dlsym, the loader), and any allocation
 * it makes goes straight to the real function, untraced. This is what keeps
 * the shim from recursing. It also covers signal handlers that interrupt the
 * shim: their allocations are not traced, which is the price of never
 * waiting on a ring slot the interrupted code holds.
 *
 * initial-exec TLS: no allocation and no lock on first access (the shim is
 * preloaded, so static TLS space is available).
 */
#ifndef MEMSIFT_GUARD_H
#define MEMSIFT_GUARD_H

#define MS_TLS __thread __attribute__((tls_model("initial-exec")))

extern MS_TLS int t_in_shim;

static inline int ms_guard_enter(void) {
    if (t_in_shim) return 0;
    t_in_shim = 1;
    return 1;
}

static inline void ms_guard_leave(void) { t_in_shim = 0; }

#endif
