/*
 * alloc_common.h: what the C workloads alloc_heavy.c (single-threaded) and
 * alloc_threads.c (8 threads) share beyond bench_common.h:
 *
 *   - the size draw: log-distributed 16 B .. 64 KiB, or the same draw rounded
 *     to a power of two (the "pow2" size mode);
 *   - the call-depth machinery: an allocation is made at a depth of 5..30
 *     frames, through four distinct non-inlined functions (walk_a..walk_d)
 *     that recurse into one another along one of 16 fixed 64-bit "paths".
 */
#ifndef MEMSIFT_BENCH_ALLOC_COMMON_H
#define MEMSIFT_BENCH_ALLOC_COMMON_H

#include "bench_common.h"

#define MIN_DEPTH 5u
#define MAX_DEPTH 30u
#define PATHS 16u

/* ---- sizes ---- */

/* 16 B .. 64 KiB, log-distributed: octave 2^4 .. 2^15, then uniform inside. */
static inline size_t random_size(rng_t *r) {
    uint32_t octave = 4 + rng_below(r, 12);
    size_t lo = (size_t)1 << octave;
    return lo + rng_below(r, (uint32_t)lo + (octave == 15 ? 1u : 0u)); /* 16 .. 65536 */
}

/* The draw above; in pow2 mode rounded to the nearest power of two, 16 .. 65536
 * (a draw in [2^k, 1.5*2^k) gives 2^k, one in [1.5*2^k, 2^(k+1)] gives 2^(k+1)). */
static inline size_t pick_size(rng_t *r, int pow2) {
    size_t size = random_size(r);
    if (!pow2) return size;
    size_t lo = 16;
    while (lo * 2 <= size) lo *= 2; /* lo = 2^k <= size < 2^(k+1) */
    return size - lo >= lo / 2 ? lo * 2 : lo;
}

/* The size mode: argv's (may be NULL), else $env_var's; "random" (0) or "pow2" (1); -1 if neither. */
static MAYBE_UNUSED int parse_size_mode(const char *arg, const char *env_var) {
    const char *mode = arg ? arg : getenv(env_var);
    if (!mode || !*mode || strcmp(mode, "random") == 0) return 0;
    return strcmp(mode, "pow2") == 0 ? 1 : -1;
}

/* Writes the first and the last byte, so the block is really used (and the
 * compiler cannot drop or merge the call), without a memset that gcc could
 * fold into calloc. */
static inline void touch_mark(void *p, size_t size, unsigned char first, unsigned char last) {
    volatile unsigned char *b = p;
    b[0] = first;
    b[size - 1] = last;
}

static inline void touch(void *p, size_t size) { touch_mark(p, size, (unsigned char)size, (unsigned char)(size >> 8)); }

/* ---- the recursion: four distinct functions, chosen level by level ----
 *
 * At each level the next function is 2 bits of the path's pattern. The call
 * is not a tail call (its result is used after it returns), so every level
 * stays on the stack as its own frame. At the bottom, s->leaf (the workload's
 * non-inlined dispatcher) makes the allocation call through one more
 * function of its own (leaf_malloc, ...), so the depth of the allocation
 * call, counting the frame that called descend() and the allocator function
 * itself, is: caller, descend, remaining x (walk_*, descend), [pad_frame],
 * leaf, leaf_*, malloc = 5 + 2*remaining + pad.
 */

typedef struct step step_t;

struct step {
    uint32_t remaining; /* walk_* + descend pairs still to push before the leaf */
    uint32_t pad;       /* 1: one more frame (pad_frame) right above the leaf */
    uint32_t level;
    uint64_t pattern;
    uint32_t op;
    uint32_t slot;
    size_t size;
    int (*leaf)(step_t *s); /* the workload's dispatcher */
    void *ctx;              /* the workload's per-thread state */
};

static int descend(step_t *s);

NOINLINE static int walk_a(step_t *s) { return descend(s) + 1; }
NOINLINE static int walk_b(step_t *s) { return descend(s) + 2; }
NOINLINE static int walk_c(step_t *s) { return descend(s) + 3; }
NOINLINE static int walk_d(step_t *s) { return descend(s) + 4; }

NOINLINE static int pad_frame(step_t *s) { return s->leaf(s) + 5; }

NOINLINE static int descend(step_t *s) {
    if (s->remaining == 0) return (s->pad ? pad_frame(s) : s->leaf(s)) ^ 1;
    s->remaining--;
    uint32_t which = (uint32_t)(s->pattern >> ((s->level++ * 2u) % 64u)) & 3u;
    switch (which) {
    case 0: return walk_a(s) ^ 1;
    case 1: return walk_b(s) ^ 1;
    case 2: return walk_c(s) ^ 1;
    default: return walk_d(s) ^ 1;
    }
}

/* 16 fixed 64-bit patterns (level 30 uses bits up to 59), the first draws of r. */
static MAYBE_UNUSED void init_patterns(rng_t *r, uint64_t patterns[PATHS]) {
    for (uint32_t i = 0; i < PATHS; i++) patterns[i] = rng_next(r);
}

/* Draws the call depth (MIN_DEPTH..MAX_DEPTH), then the path. */
static inline void draw_path(step_t *s, rng_t *r, const uint64_t patterns[PATHS]) {
    uint32_t depth = MIN_DEPTH + rng_below(r, MAX_DEPTH - MIN_DEPTH + 1);
    s->remaining = (depth - 5) / 2;
    s->pad = (depth - 5) % 2;
    s->level = 0;
    s->pattern = patterns[rng_below(r, PATHS)];
}

#endif
