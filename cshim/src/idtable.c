/* The lock-free id table: see idtable.h. */
#include "internal.h"
#include "idtable.h"

#include <sys/mman.h>

struct ms_id_slot_s {
    uint64_t key1; /* 0: empty; claimed by CAS */
    uint64_t key2; /* written before id is published */
    uint32_t id;   /* 0 until published */
    uint32_t generation;
};

#define MS_ID_PROBES 256u
#define MS_CLAIM_SPINS (1u << 20)
/* key1 of a slot whose claim died with a fork: never equal to a key (keys
 * are odd), never empty. */
#define MS_SLOT_TOMBSTONE 2u

int ms_idtable_init(ms_idtable_t *t, unsigned log2) {
    size_t bytes = sizeof(ms_id_slot_t) << log2;
    /* As big as it will ever need to be: growing a lock-free table is not
     * worth it here, and untouched pages are never backed. */
    void *p = ms_map_table(bytes);
    if (!p) return -1;
    t->slots = p;
    t->mask = (1ull << log2) - 1;
    t->next_id = 1;
    return 0;
}

void *ms_map_table(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

uint32_t ms_idtable_intern(ms_idtable_t *t, uint64_t h1, uint64_t h2, int *announce) {
    uint32_t generation = ms_load_relaxed(&g_generation);
    uint64_t i = h1 & t->mask;
    *announce = 0;
    for (uint32_t probe = 0; probe < MS_ID_PROBES; probe++, i = (i + 1) & t->mask) {
        ms_id_slot_t *s = &t->slots[i];
        uint64_t key = ms_load_acquire(&s->key1);
        if (key == 0) {
            ms_fetch_add_relaxed(&t->claims_in_flight, 1);
            if (ms_cas_acq_rel(&s->key1, &key, h1)) {
                uint32_t id = ms_fetch_add_relaxed(&t->next_id, 1);
                s->key2 = h2;
                ms_store_relaxed(&s->generation, generation);
                ms_store_release(&s->id, id);
                __atomic_fetch_sub(&t->claims_in_flight, 1, __ATOMIC_RELEASE);
                *announce = 1;
                return id;
            }
            __atomic_fetch_sub(&t->claims_in_flight, 1, __ATOMIC_RELEASE);
            /* Lost the race: `key` now holds the winner's key1. */
        }
        if (key != h1) continue;
        /* The claimer publishes within a few instructions. The wait is
         * bounded: in a fork child, a slot another thread was claiming at the
         * moment of fork is never published. Such a slot is passed over and,
         * in a child that may hold one, buried, so it costs one wait only
         * (the key takes another slot and id, which is harmless). */
        uint32_t id = 0;
        for (uint32_t spin = 0; spin < MS_CLAIM_SPINS && (id = ms_load_acquire(&s->id)) == 0; spin++) ms_cpu_relax();
        if (id == 0) {
            uint64_t orphan = h1;
            if (t->orphaned_claims) ms_cas_acq_rel(&s->key1, &orphan, (uint64_t)MS_SLOT_TOMBSTONE);
            continue;
        }
        if (s->key2 != h2) continue;
        uint32_t seen = ms_load_relaxed(&s->generation);
        if (MS_UNLIKELY(seen != generation) && ms_cas_acq_rel(&s->generation, &seen, generation)) *announce = 1;
        return id;
    }
    return 0;
}

void ms_idtable_after_fork(ms_idtable_t *t) {
    if (t->claims_in_flight) t->orphaned_claims = 1;
    t->claims_in_flight = 0;
}
