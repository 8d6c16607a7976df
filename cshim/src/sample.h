/*
 * The hooks' fast paths of sampling (sample.c): an unsampled allocation
 * costs a countdown, the free of an unsampled block one byte read, and
 * neither enters the shim any further.
 */
#ifndef MEMSIFT_SAMPLE_H
#define MEMSIFT_SAMPLE_H

#include "internal.h"
#include "guard.h"

/* Per 4 KiB page (modulo 1 GiB), how many sampled blocks live there; NULL
 * until sampling is set up (and when it is off). */
extern uint8_t *g_sample_filter;
#define MS_FILTER_LOG2 18u

extern MS_TLS int64_t t_sample_countdown;
extern MS_TLS uint32_t t_sample_skipped;

/* Unsampled allocations between two calls of the slow path, which also
 * runs the periodic work (RSS, flushing) sampled allocations would run. */
#define MS_SAMPLE_TICK 256u

static inline uint8_t *ms_sample_filter_of(uint64_t p) {
    return &g_sample_filter[(p >> 12) & (((uint64_t)1 << MS_FILTER_LOG2) - 1)];
}

/* Counts `size` down; 1 when the allocation is neither sampled nor due
 * for the periodic work: nothing more to do. */
static inline int ms_sample_skip(uint64_t size) {
    t_sample_countdown -= (int64_t)(size < ((uint64_t)1 << 62) ? size : ((uint64_t)1 << 62));
    return MS_LIKELY(t_sample_countdown > 0) && MS_LIKELY(++t_sample_skipped % MS_SAMPLE_TICK != 0);
}

/* 0 when no sampled block can be at `p` (the block's free is not recorded). */
static inline int ms_sample_maybe(const void *p) {
    return ms_load_relaxed(ms_sample_filter_of((uint64_t)(uintptr_t)p)) != 0;
}

#endif
