/*
 * Stack capture (libunwind) and the stack table that deduplicates stacks.
 *
 * The table is an open-addressing hash set keyed by a 128-bit hash of the
 * frames, lock-free: a slot is claimed by a CAS on its first key word, and
 * published by a release store of its id. The frames themselves are not
 * kept; two distinct stacks sharing all 128 bits of hash would share an id
 * (about 2^-64 likely for a billion stacks), which is the trade for a table
 * that needs no arena and no lock.
 *
 * Each slot remembers the generation in which its STACK record was written;
 * a fork child bumps g_generation, so the first event to use a stack in the
 * child writes it again into the child's own trace.
 */
#include "internal.h"
#include "guard.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>
#include <sys/mman.h>

typedef struct ms_stack_slot_s {
    uint64_t key1; /* 0: empty; claimed by CAS */
    uint64_t key2; /* written before id is published */
    uint32_t id;   /* 0 until published */
    uint32_t generation;
} ms_stack_slot_t;

#define MS_STACK_SLOTS_LOG2 20u
#define MS_STACK_PROBES 256u
#define MS_SKIP_MAX 8u
#define MS_CLAIM_SPINS (1u << 20)
/* key1 of a slot whose claim died with a fork: never equal to a key (keys
 * are odd), never empty. */
#define MS_SLOT_TOMBSTONE 2u

static ms_stack_slot_t *g_slots;
static uint64_t g_slot_mask;
static uint32_t g_next_stack_id = 1;
/* Claims between their CAS and their publication. Copied into a fork child,
 * a non-zero count means some slot there will never be published. */
static uint32_t g_claims_in_flight;
static int g_orphaned_claims;

int ms_stack_setup(void) {
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    size_t bytes = sizeof(ms_stack_slot_t) << MS_STACK_SLOTS_LOG2;
    /* Untouched pages cost nothing; the table is as big as it is so that it
     * never needs to grow (growing a lock-free table is not worth it here). */
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return -1;
    g_slots = p;
    g_slot_mask = (1ull << MS_STACK_SLOTS_LOG2) - 1;
    return 0;
}

static inline uint64_t ms_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static void ms_emit_stack(uint32_t id, void *const *frames, uint32_t depth) {
    uint32_t size = (uint32_t)(sizeof(ms_stack_record_t) + (size_t)depth * 8u);
    uint8_t *rec = ms_ring_reserve(&g_ring, size, MS_REC_STACK, 0);
    ms_stack_record_t *r = (ms_stack_record_t *)rec;
    r->id = id;
    r->depth = depth;
    memcpy(rec + sizeof *r, frames, (size_t)depth * 8u);
    ms_ring_commit(rec);
}

/* A new stack may hold addresses of a library loaded behind dlopen's back
 * (e.g. by libc itself): make sure its module is recorded. */
static void ms_check_modules(void *const *frames, uint32_t depth) {
    for (uint32_t i = 0; i < depth; i++) {
        if (!ms_objects_cover((uintptr_t)frames[i])) {
            ms_objects_scan();
            return;
        }
    }
}

static uint32_t ms_stack_intern(void *const *frames, uint32_t depth) {
    /* Two independent multiplicative lanes per frame (cheap: this runs on
     * every allocation), each finished with a full avalanche. */
    uint64_t epoch = ms_load_relaxed(&g_module_epoch);
    uint64_t h1 = 0x9e3779b97f4a7c15ULL ^ depth ^ (epoch << 32), h2 = 0x6a09e667f3bcc909ULL + depth + epoch;
    for (uint32_t i = 0; i < depth; i++) {
        uint64_t f = (uint64_t)(uintptr_t)frames[i];
        h1 = (h1 ^ f) * 0x9e3779b97f4a7c15ULL;
        h1 ^= h1 >> 32;
        h2 = (h2 + f) * 0xc2b2ae3d27d4eb4fULL;
        h2 ^= h2 >> 29;
    }
    h1 = ms_mix(h1) | 1; /* 0 marks an empty slot */
    h2 = ms_mix(h2);
    uint32_t generation = ms_load_relaxed(&g_generation);
    uint64_t i = h1 & g_slot_mask;
    for (uint32_t probe = 0; probe < MS_STACK_PROBES; probe++, i = (i + 1) & g_slot_mask) {
        ms_stack_slot_t *s = &g_slots[i];
        uint64_t key = ms_load_acquire(&s->key1);
        if (key == 0) {
            ms_fetch_add_relaxed(&g_claims_in_flight, 1);
            if (ms_cas_acq_rel(&s->key1, &key, h1)) {
                uint32_t id = ms_fetch_add_relaxed(&g_next_stack_id, 1);
                s->key2 = h2;
                ms_store_relaxed(&s->generation, generation);
                ms_store_release(&s->id, id);
                __atomic_fetch_sub(&g_claims_in_flight, 1, __ATOMIC_RELEASE);
                ms_check_modules(frames, depth);
                ms_emit_stack(id, frames, depth);
                return id;
            }
            __atomic_fetch_sub(&g_claims_in_flight, 1, __ATOMIC_RELEASE);
            /* Lost the race: `key` now holds the winner's key1. */
        }
        if (key != h1) continue;
        /* The claimer publishes within a few instructions. The wait is
         * bounded: in a fork child, a slot another thread was claiming at the
         * moment of fork is never published. Such a slot is passed over and,
         * in a child that may hold one, buried, so it costs one wait only
         * (the stack takes another slot and id, which is harmless). */
        uint32_t id = 0;
        for (uint32_t spin = 0; spin < MS_CLAIM_SPINS && (id = ms_load_acquire(&s->id)) == 0; spin++) ms_cpu_relax();
        if (id == 0) {
            uint64_t orphan = h1;
            if (g_orphaned_claims) ms_cas_acq_rel(&s->key1, &orphan, (uint64_t)MS_SLOT_TOMBSTONE);
            continue;
        }
        if (s->key2 != h2) continue;
        uint32_t seen = ms_load_relaxed(&s->generation);
        if (MS_UNLIKELY(seen != generation) && ms_cas_acq_rel(&s->generation, &seen, generation))
            ms_emit_stack(id, frames, depth);
        return id;
    }
    ms_fetch_add_relaxed(&g_ring.header->stack_table_full, 1);
    return MS_STACK_UNKNOWN;
}

void ms_stack_after_fork(void) {
    if (g_claims_in_flight) g_orphaned_claims = 1;
    g_claims_in_flight = 0;
}

uint32_t ms_stack_capture(void) {
    void *frames[MS_MAX_DEPTH + MS_SKIP_MAX];
    int n = unw_backtrace(frames, (int)(g_config.depth + MS_SKIP_MAX));
    /* The shim's own frames go, wherever they are: the hooks at the top,
     * and our __libc_start_main wrapper near the bottom. */
    uint32_t depth = 0;
    for (int i = 0; i < n && depth < g_config.depth; i++) {
        uintptr_t ip = (uintptr_t)frames[i];
        if (ip >= g_self_begin && ip < g_self_end) continue;
        frames[depth++] = frames[i];
    }
    return ms_stack_intern(frames, depth);
}
