/*
 * Sampling by bytes (MEMSIFT_SAMPLE_RATE, `memsift run --sample-rate`), as
 * tcmalloc and jemalloc do it: each thread counts down the bytes to its next
 * sample, drawn from an exponential distribution with the rate as its mean,
 * so an allocation of s bytes is sampled with probability 1 - exp(-s/rate)
 * whoever makes it. An unsampled allocation costs the countdown; only a
 * sampled one is unwound and recorded. Its address goes into a set, so a
 * free costs one lookup and is recorded only for a sampled block.
 *
 * The set is a table of 64-byte buckets of seven addresses, a bucket per
 * address hash; an address that finds its bucket full goes to the next
 * ones and marks its home bucket as overflowed, so a lookup reads one cache
 * line unless that happened. Slots are claimed and emptied by CAS, with no
 * tombstones (a lookup never stops early at an empty slot, it reads the
 * bucket). An address is removed (free, realloc) before the real call
 * releases it and inserted after the real call returned it, so it is never
 * in the set twice.
 */
#include "sample.h"

#include <sys/syscall.h>
#include <unistd.h>

#define MS_BUCKET_SLOTS 7u
#define MS_BUCKETS_LOG2 17u
#define MS_BUCKET_PROBES 8u

typedef struct ms_bucket_s {
    uint64_t keys[MS_BUCKET_SLOTS]; /* 0: empty */
    uint64_t overflowed;            /* an insert went past this bucket */
} ms_bucket_t;

/* A counting filter in front of the table: per 4 KiB page (modulo 1 GiB),
 * how many sampled blocks live there. A free of an unsampled block (nearly
 * all of them) reads one byte, and frees close in the heap read bytes close
 * in the filter (a cache line covers 64 pages), instead of a bucket of an
 * 8 MiB table. A counter that would pass 255 drops the sample rather than
 * overflow. */

static ms_bucket_t *g_buckets;
static uint64_t *g_sizes; /* per slot: the block's size, for a failed realloc */
static uint64_t g_bucket_mask;

MS_TLS int64_t t_sample_countdown;
MS_TLS uint32_t t_sample_skipped;
static MS_TLS uint64_t t_rng;
uint8_t *g_sample_filter;

int ms_sample_setup(void) {
    if (!g_config.sample_rate) return 0;
    size_t buckets = (size_t)1 << MS_BUCKETS_LOG2;
    /* Untouched pages cost nothing: sized for millions of sampled blocks. */
    void *b = ms_map_table(buckets * sizeof(ms_bucket_t));
    void *s = ms_map_table(buckets * MS_BUCKET_SLOTS * sizeof(uint64_t));
    void *f = ms_map_table((size_t)1 << MS_FILTER_LOG2);
    if (!b || !s || !f) return -1;
    g_buckets = b;
    g_sizes = s;
    g_bucket_mask = buckets - 1;
    /* Last: the hooks' fast paths start using the filter once it is set. */
    ms_store_release(&g_sample_filter, (uint8_t *)f);
    return 0;
}

/* log2(x) for x in (0, 1], to 3e-5: the exponent bits, and a least-squares
 * quintic for the mantissa's log2 on [1, 2) (no libm in the shim). */
static double ms_log2(double x) {
    union {
        double d;
        uint64_t u;
    } v = {x};
    int exponent = (int)((v.u >> 52) & 0x7ff) - 1023;
    v.u = (v.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
    double m = v.d;
    double poly = ((((0.0434333809 * m - 0.4049084787) * m + 1.5940475763) * m - 3.4927443027) * m + 5.0470835991) * m -
                  2.7868800888;
    return exponent + poly;
}

/* Threads that drew their first interval, for MEMSIFT_SAMPLE_SEED. */
static uint64_t g_sampling_threads;

/* A thread's generator: from MEMSIFT_SAMPLE_SEED and the order in which
 * threads first allocate (reproducible runs, for tests), else from the tid
 * and the clock. Never 0 (xorshift's fixed point). */
static uint64_t ms_seed(void) {
    uint64_t seed = g_config.sample_seed
                        ? g_config.sample_seed * 0x9e3779b97f4a7c15ull + __atomic_add_fetch(&g_sampling_threads, 1, __ATOMIC_RELAXED)
                        : ((uint64_t)syscall(SYS_gettid) << 32) ^ ms_now_ns() ^ (uintptr_t)&t_rng;
    seed ^= seed >> 31;
    seed *= 0xbf58476d1ce4e5b9ull;
    seed ^= seed >> 27;
    return seed ? seed : 1;
}

/* Bytes to the next sample: -rate * ln(U), U uniform in (0, 1]. */
static int64_t ms_next_interval(void) {
    if (!t_rng) t_rng = ms_seed();
    t_rng ^= t_rng << 13;
    t_rng ^= t_rng >> 7;
    t_rng ^= t_rng << 17;
    double u = (double)((t_rng >> 11) + 1) / 9007199254740992.0; /* (0, 1] */
    double bytes = -ms_log2(u) * 0.6931471805599453 * (double)g_config.sample_rate;
    return (int64_t)bytes + 1;
}

int ms_sample_due(void) {
    /* A thread's first countdown ran from 0: it is due at once, and draws
     * its first interval instead (that allocation is not sampled). */
    if (MS_UNLIKELY(t_rng == 0)) {
        t_sample_countdown = ms_next_interval();
        return 0;
    }
    if (t_sample_countdown > 0) return 0; /* only the periodic tick */
    /* Sampled: the next interval counts from here (a big allocation may
     * cover several intervals; it is still one sample). */
    do t_sample_countdown += ms_next_interval(); while (t_sample_countdown <= 0);
    return 1;
}

static inline uint64_t ms_bucket_of(uint64_t p) { return ms_address_hash(p, MS_BUCKETS_LOG2); }


int ms_sampled_insert(const void *ptr, uint64_t size) {
    uint64_t p = (uint64_t)(uintptr_t)ptr, home = ms_bucket_of(p);
    uint8_t *count = ms_sample_filter_of(p), seen = ms_load_relaxed(count);
    do {
        if (seen == 255) return 0;
    } while (!ms_cas_acq_rel(count, &seen, (uint8_t)(seen + 1)));
    for (uint32_t probe = 0; probe < MS_BUCKET_PROBES; probe++) {
        uint64_t b = (home + probe) & g_bucket_mask;
        for (uint32_t i = 0; i < MS_BUCKET_SLOTS; i++) {
            uint64_t expected = 0;
            if (ms_load_relaxed(&g_buckets[b].keys[i]) == 0 &&
                ms_cas_acq_rel(&g_buckets[b].keys[i], &expected, p)) {
                g_sizes[b * MS_BUCKET_SLOTS + i] = size;
                if (probe) ms_store_release(&g_buckets[home].overflowed, 1);
                return 1;
            }
        }
    }
    __atomic_fetch_sub(count, 1, __ATOMIC_ACQ_REL);
    return 0;
}

int ms_sampled_remove(const void *ptr, uint64_t *size) {
    uint64_t p = (uint64_t)(uintptr_t)ptr;
    uint8_t *count = ms_sample_filter_of(p);
    /* Acquire: pairs with the insert's count increment, made before its
     * slot claim; the block was handed to us after both. */
    if (ms_load_acquire(count) == 0) return 0;
    uint64_t home = ms_bucket_of(p);
    uint32_t probes = ms_load_acquire(&g_buckets[home].overflowed) ? MS_BUCKET_PROBES : 1;
    for (uint32_t probe = 0; probe < probes; probe++) {
        uint64_t b = (home + probe) & g_bucket_mask;
        for (uint32_t i = 0; i < MS_BUCKET_SLOTS; i++) {
            uint64_t expected = p;
            if (ms_load_relaxed(&g_buckets[b].keys[i]) == p && ms_cas_acq_rel(&g_buckets[b].keys[i], &expected, 0)) {
                if (size) *size = g_sizes[b * MS_BUCKET_SLOTS + i];
                __atomic_fetch_sub(count, 1, __ATOMIC_ACQ_REL);
                return 1;
            }
        }
    }
    return 0;
}
