/*
 * alloc_heavy: the workload of the memsift overhead benchmark.
 *
 * Deterministic (a fixed-seed xorshift64* generator, never rand()) and
 * single-threaded. Each step picks a random slot of a bounded live pool and
 * replaces its block:
 *   ~85% free(old) + malloc(size)
 *    ~8% free(old) + calloc(n, size / n)
 *    ~7% realloc(old, size)           (realloc(NULL, size) if the slot is empty)
 * Sizes are log-distributed over 16 B .. 64 KiB (a uniform octave, then a
 * uniform size inside it). Every allocation call is made at a call depth of
 * 5..30 helper frames, through four distinct non-inlined functions that
 * recurse into one another along one of 16 fixed "paths"; with the three leaf
 * functions that makes a few hundred distinct call stacks.
 *
 * At the end everything is freed except a known leak: LEAK_BLOCKS blocks of
 * LEAK_SIZE bytes, allocated by malloc at a fixed site.
 *
 * Size modes (argv[2], else the environment variable ALLOC_HEAVY_SIZES):
 *   random (default)  the log-distributed sizes above: tens of thousands of
 *                     distinct sizes, so almost every (size, call stack) pair
 *                     is new.
 *   pow2              the same draw, then rounded to the nearest power of two
 *                     (16, 32, .. 65536 B: 13 sizes; a draw in [2^k, 1.5*2^k)
 *                     gives 2^k, one in [1.5*2^k, 2^(k+1)] gives 2^(k+1)). The
 *                     PRNG stream is the same, so the slots, operations, call
 *                     depths and paths -- hence every count on the JSON line
 *                     and the set of call stacks -- equal the random mode's;
 *                     only the sizes (and the addresses malloc hands out)
 *                     differ. At most 13 sizes per stack keeps the number of
 *                     distinct (size, stack) pairs near 10^4, well under the
 *                     ~59,000 at which Debian 12's heaptrack 1.4.0
 *                     (heaptrack_interpret) throws std::bad_alloc.
 *
 * Output: nothing on stdout but one JSON line with the calls the program
 * itself made (free(NULL) is never called, hence never counted):
 *   {"malloc":N,"calloc":N,"realloc":N,"free":N,"leaked_bytes":N,"leaked_allocations":N}
 * written with snprintf + write(2) so that stdio allocates nothing (in pow2
 * mode the line ends with ,"sizes":"pow2"} instead of }).
 * The PRNG, the size draw, the recursion and the JSON line are shared with
 * alloc_threads.c (alloc_common.h, bench_common.h).
 *
 * Usage: alloc_heavy [steps [random|pow2]]
 *        (default 5000000 steps: 5,001,000 allocation calls; default sizes:
 *        $ALLOC_HEAVY_SIZES, else random)
 * Build: cc -O2 -g -fno-omit-frame-pointer -o alloc_heavy alloc_heavy.c (alloc_common.h and bench_common.h beside it)
 */
#include "alloc_common.h"

#define POOL_SLOTS 4096u
#define DEFAULT_STEPS 5000000ull

static const char PROG[] = "alloc_heavy";
static rng_t g_rng = {RNG_SEED};
static int g_pow2;
static counts_t g_counts;

/* ---- the pool ---- */

static void *g_pool[POOL_SLOTS];
static void *g_leak[LEAK_BLOCKS];

/* ---- the three leaf functions: the actual allocation calls ---- */

enum { OP_MALLOC, OP_CALLOC, OP_REALLOC };

NOINLINE static int leaf_malloc(uint32_t slot, size_t size) {
    void *p = malloc(size);
    if (!p) die(PROG, "malloc");
    g_counts.malloc++;
    touch(p, size);
    g_pool[slot] = p;
    return 1;
}

NOINLINE static int leaf_calloc(uint32_t slot, size_t size) {
    size_t n = size >= 64 ? 4 : 1;
    size_t each = size / n;
    void *p = calloc(n, each);
    if (!p) die(PROG, "calloc");
    g_counts.calloc++;
    touch(p, n * each);
    g_pool[slot] = p;
    return 1;
}

NOINLINE static int leaf_realloc(uint32_t slot, size_t size) {
    void *p = realloc(g_pool[slot], size);
    if (!p) die(PROG, "realloc");
    g_counts.realloc++;
    touch(p, size);
    g_pool[slot] = p;
    return 1;
}

NOINLINE static int leaf(step_t *s) {
    switch (s->op) {
    case OP_MALLOC: return leaf_malloc(s->slot, s->size) ^ 2;
    case OP_CALLOC: return leaf_calloc(s->slot, s->size) ^ 2;
    default: return leaf_realloc(s->slot, s->size) ^ 2;
    }
}

/* The leak: a fixed site at a fixed depth. */
NOINLINE static int leak_one(uint32_t i, uint32_t depth) {
    if (depth) return leak_one(i, depth - 1) + 1;
    void *p = malloc(LEAK_SIZE);
    if (!p) die(PROG, "malloc (leak)");
    g_counts.malloc++;
    touch(p, LEAK_SIZE);
    g_leak[i] = p;
    return 0;
}

static int usage(void) {
    write_text(2, "usage: alloc_heavy [steps [random|pow2]]  (or ALLOC_HEAVY_SIZES=random|pow2)\n");
    return 64;
}

int main(int argc, char **argv) {
    uint64_t steps = DEFAULT_STEPS;
    if (argc > 3) return usage();
    if (argc > 1 && (steps = parse_steps(argv[1])) == 0) return usage();
    if ((g_pow2 = parse_size_mode(argc > 2 ? argv[2] : NULL, "ALLOC_HEAVY_SIZES")) < 0) return usage();

    uint64_t patterns[PATHS];
    init_patterns(&g_rng, patterns);

    volatile int sink = 0;
    for (uint64_t i = 0; i < steps; i++) {
        step_t s;
        s.slot = rng_below(&g_rng, POOL_SLOTS);
        s.size = pick_size(&g_rng, g_pow2);
        uint32_t r = rng_below(&g_rng, 100);
        s.op = r < 85 ? OP_MALLOC : r < 93 ? OP_CALLOC : OP_REALLOC;
        s.leaf = leaf;
        s.ctx = NULL;
        draw_path(&s, &g_rng, patterns);
        if (s.op != OP_REALLOC && g_pool[s.slot]) {
            free(g_pool[s.slot]);
            g_counts.free++;
            g_pool[s.slot] = NULL;
        }
        sink += descend(&s);
    }

    for (uint32_t i = 0; i < LEAK_BLOCKS; i++) sink += leak_one(i, 3);

    for (uint32_t i = 0; i < POOL_SLOTS; i++) {
        if (g_pool[i]) {
            free(g_pool[i]);
            g_counts.free++;
            g_pool[i] = NULL;
        }
    }
    (void)sink;

    print_counts(&g_counts, (uint64_t)LEAK_BLOCKS * LEAK_SIZE, LEAK_BLOCKS, g_pow2 ? ",\"sizes\":\"pow2\"" : "");
    return 0;
}
