/*
 * alloc_threads: alloc_heavy with 8 threads and cross-thread frees.
 *
 * The same kind of step as alloc_heavy.c (alloc_common.h, bench_common.h: the same PRNG,
 * size draw, call depths of 5..30 frames through non-inlined helpers along
 * 16 paths, the same malloc ~85% / calloc ~8% / realloc ~7% mix), made by
 * THREADS threads at once, each with a fixed seed of its own and
 * steps / THREADS steps:
 *   malloc, calloc  the new block is published into a random slot of a pool
 *                   shared by all threads (atomic exchange), and the block it
 *                   displaces is freed: a block that another thread allocated
 *                   about 7 times in 8, so most frees are cross-thread;
 *   realloc         resizes a block of the thread's own small private pool
 *                   (realloc(NULL, n) when the slot is still empty), so that
 *                   the number of realloc(NULL, n) calls, hence every count,
 *                   is independent of the interleaving.
 * Which thread frees which block depends on the scheduling; what is counted
 * does not: every block of the shared pool is freed exactly once (by the
 * thread that displaces it, or by main at the end), every private block by
 * its thread at its end, except a known leak of LEAK_BLOCKS blocks of
 * LEAK_SIZE bytes (LEAK_BLOCKS / THREADS per thread, at a fixed site).
 *
 * Output: one JSON line with the calls the program itself made (free(NULL)
 * is never called), identical in every run:
 *   {"malloc":N,"calloc":N,"realloc":N,"free":N,"leaked_bytes":N,"leaked_allocations":N,"threads":8}
 * (with ,"sizes":"pow2" before the brace in pow2 mode), and on stderr the
 * number of frees of a block another thread allocated, which varies:
 *   alloc_threads cross_thread_frees=N
 * The C library's own allocations for each new thread (glibc callocs the
 * thread's DTV in pthread_create) are not the program's calls and are not
 * counted.
 *
 * Usage: alloc_threads [steps [random|pow2]]
 *        (default 5000000 steps in all: 5,001,000 allocation calls; default
 *        sizes: $ALLOC_THREADS_SIZES, else random)
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -o alloc_threads alloc_threads.c
 */
#include "alloc_common.h"

#include <pthread.h>
#include <stdatomic.h>

#define THREADS 8u
#define SHARED_SLOTS 4096u
#define PRIVATE_SLOTS 64u
#define DEFAULT_STEPS 5000000ull

static const char PROG[] = "alloc_threads";
static int g_pow2;
static uint64_t g_patterns[PATHS];
static _Atomic(void *) g_shared[SHARED_SLOTS];

typedef struct {
    uint32_t index;
    uint64_t steps;
    rng_t rng;
    counts_t counts;
    uint64_t cross_frees;
    void *priv[PRIVATE_SLOTS];
    void *leak[LEAK_BLOCKS / THREADS];
} worker_t;

static worker_t g_workers[THREADS];

enum { OP_MALLOC, OP_CALLOC, OP_REALLOC };

/* The first byte of every shared block names the thread that allocated it. */
static void publish(worker_t *w, uint32_t slot, void *p, size_t size) {
    touch_mark(p, size, (unsigned char)w->index, (unsigned char)(size >> 8));
    void *old = atomic_exchange(&g_shared[slot], p);
    if (old) {
        if (*(volatile unsigned char *)old != w->index) w->cross_frees++;
        free(old);
        w->counts.free++;
    }
}

NOINLINE static int leaf_malloc(worker_t *w, uint32_t slot, size_t size) {
    void *p = malloc(size);
    if (!p) die(PROG, "malloc");
    w->counts.malloc++;
    publish(w, slot, p, size);
    return 1;
}

NOINLINE static int leaf_calloc(worker_t *w, uint32_t slot, size_t size) {
    size_t n = size >= 64 ? 4 : 1;
    size_t each = size / n;
    void *p = calloc(n, each);
    if (!p) die(PROG, "calloc");
    w->counts.calloc++;
    publish(w, slot, p, n * each);
    return 1;
}

NOINLINE static int leaf_realloc(worker_t *w, uint32_t slot, size_t size) {
    uint32_t i = slot % PRIVATE_SLOTS;
    void *p = realloc(w->priv[i], size);
    if (!p) die(PROG, "realloc");
    w->counts.realloc++;
    touch(p, size);
    w->priv[i] = p;
    return 1;
}

NOINLINE static int leaf(step_t *s) {
    worker_t *w = s->ctx;
    switch (s->op) {
    case OP_MALLOC: return leaf_malloc(w, s->slot, s->size) ^ 2;
    case OP_CALLOC: return leaf_calloc(w, s->slot, s->size) ^ 2;
    default: return leaf_realloc(w, s->slot, s->size) ^ 2;
    }
}

/* The leak: a fixed site at a fixed depth. */
NOINLINE static int leak_one(worker_t *w, uint32_t i, uint32_t depth) {
    if (depth) return leak_one(w, i, depth - 1) + 1;
    void *p = malloc(LEAK_SIZE);
    if (!p) die(PROG, "malloc (leak)");
    w->counts.malloc++;
    touch(p, LEAK_SIZE);
    w->leak[i] = p;
    return 0;
}

static void *worker_main(void *arg) {
    worker_t *w = arg;
    volatile int sink = 0;
    for (uint64_t i = 0; i < w->steps; i++) {
        step_t s;
        s.slot = rng_below(&w->rng, SHARED_SLOTS);
        s.size = pick_size(&w->rng, g_pow2);
        uint32_t r = rng_below(&w->rng, 100);
        s.op = r < 85 ? OP_MALLOC : r < 93 ? OP_CALLOC : OP_REALLOC;
        s.leaf = leaf;
        s.ctx = w;
        draw_path(&s, &w->rng, g_patterns);
        sink += descend(&s);
    }
    for (uint32_t i = 0; i < LEAK_BLOCKS / THREADS; i++) sink += leak_one(w, i, 3);
    for (uint32_t i = 0; i < PRIVATE_SLOTS; i++) {
        if (w->priv[i]) {
            free(w->priv[i]);
            w->counts.free++;
            w->priv[i] = NULL;
        }
    }
    (void)sink;
    return NULL;
}

static int usage(void) {
    write_text(2, "usage: alloc_threads [steps [random|pow2]]  (or ALLOC_THREADS_SIZES=random|pow2)\n");
    return 64;
}

int main(int argc, char **argv) {
    uint64_t steps = DEFAULT_STEPS;
    if (argc > 3) return usage();
    if (argc > 1 && (steps = parse_steps(argv[1])) == 0) return usage();
    if ((g_pow2 = parse_size_mode(argc > 2 ? argv[2] : NULL, "ALLOC_THREADS_SIZES")) < 0) return usage();

    rng_t seeds = {RNG_SEED};
    init_patterns(&seeds, g_patterns);
    pthread_t tids[THREADS];
    for (uint32_t t = 0; t < THREADS; t++) {
        worker_t *w = &g_workers[t];
        w->index = t;
        w->steps = steps / THREADS + (t < steps % THREADS ? 1 : 0);
        do w->rng.s = rng_next(&seeds); /* xorshift needs a nonzero state */
        while (w->rng.s == 0);
    }
    for (uint32_t t = 0; t < THREADS; t++) {
        if (pthread_create(&tids[t], NULL, worker_main, &g_workers[t]) != 0) die(PROG, "pthread_create");
    }
    counts_t total = {0, 0, 0, 0};
    uint64_t cross = 0;
    for (uint32_t t = 0; t < THREADS; t++) {
        pthread_join(tids[t], NULL);
        const worker_t *w = &g_workers[t];
        total.malloc += w->counts.malloc;
        total.calloc += w->counts.calloc;
        total.realloc += w->counts.realloc;
        total.free += w->counts.free;
        cross += w->cross_frees;
    }
    for (uint32_t i = 0; i < SHARED_SLOTS; i++) {
        void *p = atomic_exchange(&g_shared[i], NULL);
        if (p) {
            free(p);
            total.free++;
        }
    }

    char extra[64], msg[64];
    snprintf(extra, sizeof extra, ",\"threads\":%u%s", THREADS, g_pow2 ? ",\"sizes\":\"pow2\"" : "");
    print_counts(&total, (uint64_t)LEAK_BLOCKS * LEAK_SIZE, LEAK_BLOCKS, extra);
    snprintf(msg, sizeof msg, "alloc_threads cross_thread_frees=%llu\n", (unsigned long long)cross);
    write_text(2, msg);
    return 0;
}
