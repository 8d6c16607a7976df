/*
 * bench_common.h: what every compiled workload of the benchmark shares
 * (alloc_heavy.c, alloc_threads.c, containers.cpp; C and C++):
 *
 *   - a deterministic PRNG (xorshift64*, one state per user: never rand());
 *   - a few helpers that allocate nothing (write(2), not stdio);
 *   - the JSON line with the program's own counts of allocation calls.
 *
 * Everything is static (each workload is one translation unit); functions a
 * workload may not use are marked MAYBE_UNUSED.
 */
#ifndef MEMSIFT_BENCH_COMMON_H
#define MEMSIFT_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))
#define MAYBE_UNUSED __attribute__((unused))

#define LEAK_BLOCKS 1000u /* the known leak, in every compiled workload: 1000 blocks of 100 B */
#define LEAK_SIZE 100u

/* ---- deterministic PRNG: xorshift64* ---- */

#define RNG_SEED 0x9E3779B97F4A7C15ull

typedef struct {
    uint64_t s;
} rng_t;

static inline uint64_t rng_next(rng_t *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n) (n small; the modulo bias is irrelevant here). */
static inline uint32_t rng_below(rng_t *r, uint32_t n) { return (uint32_t)((rng_next(r) >> 32) % n); }

/* A positive decimal step count; 0 if the text is not one. */
static MAYBE_UNUSED uint64_t parse_steps(const char *text) {
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    return (*text == 0 || *end != 0) ? 0 : (uint64_t)v;
}

/* ---- small helpers that allocate nothing ---- */

static MAYBE_UNUSED void write_text(int fd, const char *text) {
    ssize_t ignored = write(fd, text, strlen(text));
    (void)ignored;
}

static MAYBE_UNUSED void die(const char *prog, const char *what) {
    write_text(2, prog);
    write_text(2, ": out of memory in ");
    write_text(2, what);
    write_text(2, "\n");
    _exit(2);
}

/* ---- the program's own counts ---- */

typedef struct {
    uint64_t malloc, calloc, realloc, free;
} counts_t;

/* {"malloc":N,"calloc":N,"realloc":N,"free":N,"leaked_bytes":N,"leaked_allocations":N<extra>} on stdout;
 * extra ("" or ",\"key\":value...") goes before the closing brace. */
static MAYBE_UNUSED void print_counts(const counts_t *c, uint64_t leaked_bytes, uint64_t leaked_allocations,
                                      const char *extra) {
    char line[320];
    int n = snprintf(line, sizeof line,
                     "{\"malloc\":%llu,\"calloc\":%llu,\"realloc\":%llu,\"free\":%llu,"
                     "\"leaked_bytes\":%llu,\"leaked_allocations\":%llu%s}\n",
                     (unsigned long long)c->malloc, (unsigned long long)c->calloc, (unsigned long long)c->realloc,
                     (unsigned long long)c->free, (unsigned long long)leaked_bytes,
                     (unsigned long long)leaked_allocations, extra);
    if (n > 0) {
        ssize_t ignored = write(1, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)ignored;
    }
}

#endif
