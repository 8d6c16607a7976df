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
 * If ALLOC_HEAVY_RSS is set in the environment, the program's own peak RSS
 * (getrusage ru_maxrss, KiB) is written to stderr as "alloc_heavy maxrss_kb=N".
 *
 * Usage: alloc_heavy [steps [random|pow2]]
 *        (default 5000000 steps: 5,001,000 allocation calls; default sizes:
 *        $ALLOC_HEAVY_SIZES, else random)
 * Build: cc -O2 -g -fno-omit-frame-pointer -o alloc_heavy alloc_heavy.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define POOL_SLOTS 4096u
#define LEAK_BLOCKS 1000u
#define LEAK_SIZE 100u
#define DEFAULT_STEPS 5000000ull
#define MIN_DEPTH 5u
#define MAX_DEPTH 30u
#define PATHS 16u

#define NOINLINE __attribute__((noinline, noclone))

/* ---- deterministic PRNG: xorshift64* ---- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static inline uint64_t rng_next(void) {
    uint64_t x = g_rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g_rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n) (n small; the modulo bias is irrelevant here). */
static inline uint32_t rng_below(uint32_t n) { return (uint32_t)((rng_next() >> 32) % n); }

/* 16 B .. 64 KiB, log-distributed: octave 2^4 .. 2^15, then uniform inside. */
static inline size_t random_size(void) {
    uint32_t octave = 4 + rng_below(12);
    size_t lo = (size_t)1 << octave;
    return lo + rng_below((uint32_t)lo + (octave == 15 ? 1u : 0u)); /* 16 .. 65536 */
}

/* pow2 mode: the same draw rounded to the nearest power of two, 16 .. 65536. */
static int g_pow2;

static inline size_t pick_size(void) {
    size_t size = random_size();
    if (!g_pow2) return size;
    size_t lo = 16;
    while (lo * 2 <= size) lo *= 2; /* lo = 2^k <= size < 2^(k+1) */
    return size - lo >= lo / 2 ? lo * 2 : lo;
}

/* ---- counts of the calls this program makes ---- */

static uint64_t n_malloc, n_calloc, n_realloc, n_free;

/* ---- the pool ---- */

static void *g_pool[POOL_SLOTS];
static void *g_leak[LEAK_BLOCKS];

static void die(const char *what) {
    static const char prefix[] = "alloc_heavy: out of memory in ";
    ssize_t ignored = write(2, prefix, sizeof prefix - 1);
    ignored = write(2, what, strlen(what));
    ignored = write(2, "\n", 1);
    (void)ignored;
    _exit(2);
}

/* Touches the first and last byte, so the block is really used (and the
 * compiler cannot drop or merge the call), without a memset that gcc could
 * fold into calloc. */
static inline void touch(void *p, size_t size) {
    volatile unsigned char *b = p;
    b[0] = (unsigned char)size;
    b[size - 1] = (unsigned char)(size >> 8);
}

/* ---- the three leaf functions: the actual allocation calls ---- */

enum { OP_MALLOC, OP_CALLOC, OP_REALLOC };

NOINLINE static int leaf_malloc(uint32_t slot, size_t size) {
    void *p = malloc(size);
    if (!p) die("malloc");
    n_malloc++;
    touch(p, size);
    g_pool[slot] = p;
    return 1;
}

NOINLINE static int leaf_calloc(uint32_t slot, size_t size) {
    size_t n = size >= 64 ? 4 : 1;
    size_t each = size / n;
    void *p = calloc(n, each);
    if (!p) die("calloc");
    n_calloc++;
    touch(p, n * each);
    g_pool[slot] = p;
    return 1;
}

NOINLINE static int leaf_realloc(uint32_t slot, size_t size) {
    void *p = realloc(g_pool[slot], size);
    if (!p) die("realloc");
    n_realloc++;
    touch(p, size);
    g_pool[slot] = p;
    return 1;
}

/* ---- the recursion: four distinct functions, chosen level by level ----
 *
 * At each level the next function is 2 bits of the path's pattern. The call
 * is not a tail call (its result is used after it returns), so every level
 * stays on the stack as its own frame.
 */

typedef struct {
    uint32_t remaining; /* walk_* + descend pairs still to push before the leaf */
    uint32_t pad;       /* 1: one more frame (pad_frame) right above the leaf */
    uint32_t level;
    uint64_t pattern;
    uint32_t op;
    uint32_t slot;
    size_t size;
} step_t;

static int descend(step_t *s);

NOINLINE static int walk_a(step_t *s) { return descend(s) + 1; }
NOINLINE static int walk_b(step_t *s) { return descend(s) + 2; }
NOINLINE static int walk_c(step_t *s) { return descend(s) + 3; }
NOINLINE static int walk_d(step_t *s) { return descend(s) + 4; }

NOINLINE static int leaf(step_t *s) {
    switch (s->op) {
    case OP_MALLOC: return leaf_malloc(s->slot, s->size) ^ 2;
    case OP_CALLOC: return leaf_calloc(s->slot, s->size) ^ 2;
    default: return leaf_realloc(s->slot, s->size) ^ 2;
    }
}

NOINLINE static int pad_frame(step_t *s) { return leaf(s) + 5; }

NOINLINE static int descend(step_t *s) {
    if (s->remaining == 0) return (s->pad ? pad_frame(s) : leaf(s)) ^ 1;
    s->remaining--;
    uint32_t which = (uint32_t)(s->pattern >> ((s->level++ * 2u) % 64u)) & 3u;
    switch (which) {
    case 0: return walk_a(s) ^ 1;
    case 1: return walk_b(s) ^ 1;
    case 2: return walk_c(s) ^ 1;
    default: return walk_d(s) ^ 1;
    }
}

/* 16 fixed 64-bit patterns (level 30 uses bits up to 59). */
static uint64_t g_patterns[PATHS];

/* The leak: a fixed site at a fixed depth. */
NOINLINE static int leak_one(uint32_t i, uint32_t depth) {
    if (depth) return leak_one(i, depth - 1) + 1;
    void *p = malloc(LEAK_SIZE);
    if (!p) die("malloc (leak)");
    n_malloc++;
    touch(p, LEAK_SIZE);
    g_leak[i] = p;
    return 0;
}

static size_t fmt_u64(char *buf, uint64_t v) {
    char d[24];
    size_t n = 0, k = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) buf[k++] = d[--n];
    return k;
}

static int usage(void) {
    static const char text[] = "usage: alloc_heavy [steps [random|pow2]]  (or ALLOC_HEAVY_SIZES=random|pow2)\n";
    ssize_t ignored = write(2, text, sizeof text - 1);
    (void)ignored;
    return 64;
}

int main(int argc, char **argv) {
    uint64_t steps = DEFAULT_STEPS;
    if (argc > 3) return usage();
    if (argc > 1) {
        char *end;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (*argv[1] == 0 || *end != 0 || v == 0) return usage();
        steps = v;
    }
    const char *mode = argc > 2 ? argv[2] : getenv("ALLOC_HEAVY_SIZES");
    if (mode && *mode) {
        if (strcmp(mode, "pow2") == 0)
            g_pow2 = 1;
        else if (strcmp(mode, "random") != 0)
            return usage();
    }

    for (uint32_t i = 0; i < PATHS; i++) g_patterns[i] = rng_next();

    volatile int sink = 0;
    for (uint64_t i = 0; i < steps; i++) {
        step_t s;
        s.slot = rng_below(POOL_SLOTS);
        s.size = pick_size();
        uint32_t r = rng_below(100);
        s.op = r < 85 ? OP_MALLOC : r < 93 ? OP_CALLOC : OP_REALLOC;
        /* The call depth of the allocation call, counting main and the
         * allocator function itself: main, descend, remaining x (walk_*,
         * descend), [pad_frame], leaf, leaf_*, malloc = 5 + 2*remaining + pad. */
        uint32_t depth = MIN_DEPTH + rng_below(MAX_DEPTH - MIN_DEPTH + 1);
        s.remaining = (depth - 5) / 2;
        s.pad = (depth - 5) % 2;
        s.level = 0;
        s.pattern = g_patterns[rng_below(PATHS)];
        if (s.op != OP_REALLOC && g_pool[s.slot]) {
            free(g_pool[s.slot]);
            n_free++;
            g_pool[s.slot] = NULL;
        }
        sink += descend(&s);
    }

    for (uint32_t i = 0; i < LEAK_BLOCKS; i++) sink += leak_one(i, 3);

    for (uint32_t i = 0; i < POOL_SLOTS; i++) {
        if (g_pool[i]) {
            free(g_pool[i]);
            n_free++;
            g_pool[i] = NULL;
        }
    }
    (void)sink;

    char line[256];
    int n = snprintf(line, sizeof line,
                     "{\"malloc\":%llu,\"calloc\":%llu,\"realloc\":%llu,\"free\":%llu,"
                     "\"leaked_bytes\":%llu,\"leaked_allocations\":%llu%s}\n",
                     (unsigned long long)n_malloc, (unsigned long long)n_calloc, (unsigned long long)n_realloc,
                     (unsigned long long)n_free, (unsigned long long)LEAK_BLOCKS * LEAK_SIZE,
                     (unsigned long long)LEAK_BLOCKS, g_pow2 ? ",\"sizes\":\"pow2\"" : "");
    if (n > 0) {
        ssize_t ignored = write(1, line, (size_t)n);
        (void)ignored;
    }

    if (getenv("ALLOC_HEAVY_RSS")) {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) {
            char msg[64] = "alloc_heavy maxrss_kb=";
            size_t k = strlen(msg);
            k += fmt_u64(msg + k, (uint64_t)ru.ru_maxrss);
            msg[k++] = '\n';
            ssize_t ignored = write(2, msg, k);
            (void)ignored;
        }
    }
    return 0;
}
