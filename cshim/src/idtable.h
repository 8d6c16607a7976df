/*
 * A lock-free set of 128-bit keys that hands out small ids: the stack table
 * and the Python code table are both one of these.
 *
 * Open addressing; a slot is claimed by a CAS on its first key word and
 * published by a release store of its id. Only the keys are kept (callers
 * hash what they intern): two distinct values sharing all 128 bits would
 * share an id (about 2^-64 likely for a billion of them), which is the
 * trade for a table that needs no arena and no lock.
 *
 * Each slot remembers the generation in which its record was written; a
 * fork child bumps g_generation, so the first use of an id in the child
 * writes its record again into the child's own trace.
 */
#ifndef MEMSIFT_IDTABLE_H
#define MEMSIFT_IDTABLE_H

#include <stdint.h>
#include <string.h>

typedef struct ms_id_slot_s ms_id_slot_t;

typedef struct ms_idtable_s {
    ms_id_slot_t *slots;
    uint64_t mask;
    uint32_t next_id;
    /* Claims between their CAS and their publication. Copied into a fork
     * child, a non-zero count means some slot there will never be published. */
    uint32_t claims_in_flight;
    int orphaned_claims;
} ms_idtable_t;

/* Maps 2^log2 slots (untouched pages cost nothing). Returns 0 or -1. */
int ms_idtable_init(ms_idtable_t *t, unsigned log2);

/* The id of key (h1, h2), 0 when the table is full. *announce is set when
 * the caller must write the id's record: the key is new, or first used in
 * this generation. */
uint32_t ms_idtable_intern(ms_idtable_t *t, uint64_t h1, uint64_t h2, int *announce);

/* In a fork child: notes whether a claim was cut short by the fork. */
void ms_idtable_after_fork(ms_idtable_t *t);

static inline uint64_t ms_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Two independent multiplicative lanes (cheap: this runs on every
 * allocation), finished by ms_hash_finish with a full avalanche. */
typedef struct ms_hash_s {
    uint64_t h1, h2;
} ms_hash_t;

static inline ms_hash_t ms_hash_start(uint64_t seed) {
    return (ms_hash_t){0x9e3779b97f4a7c15ULL ^ seed, 0x6a09e667f3bcc909ULL + seed};
}

static inline void ms_hash_add(ms_hash_t *h, uint64_t v) {
    h->h1 = (h->h1 ^ v) * 0x9e3779b97f4a7c15ULL;
    h->h1 ^= h->h1 >> 32;
    h->h2 = (h->h2 + v) * 0xc2b2ae3d27d4eb4fULL;
    h->h2 ^= h->h2 >> 29;
}

/* A 64x64->128 multiply folded to 64 bits. */
static inline uint64_t ms_fold_mul(uint64_t a, uint64_t b) {
#if defined(__x86_64__)
    /* gcc 12 sends a __uint128_t product through the stack here. */
    uint64_t lo, hi;
    __asm__("mulq %3" : "=a"(lo), "=d"(hi) : "a"(a), "rm"(b) : "cc");
    return lo ^ hi;
#else
    __uint128_t p = (__uint128_t)a * b;
    return (uint64_t)p ^ (uint64_t)(p >> 64);
#endif
}

/* Adds `n` words (a stack's return addresses) at once. ms_hash_add is a
 * chain (each word waits for the previous multiply); here each pair of
 * words is multiplied on its own, salted by its position, and the products
 * summed, so the multiplies overlap: a 30-frame stack hashes in about a
 * fifth of the time. Each lane uses its own salts and keys. */
static inline void ms_hash_words(ms_hash_t *h, const void *words, uint32_t n) {
    /* Read with memcpy (plain loads): callers pass arrays of pointers and
     * of structs made of whole words alike. */
    const unsigned char *w = words;
    /* The salts start at fixed keys and move by a different odd constant
     * per pair; x and y enter each product differently (xor / add), so a
     * pair and its swap do not collide. */
    uint64_t a1 = 0, a2 = 0, s1 = 0xa0761d6478bd642fULL, s2 = 0x8ebc6af09c88c6e3ULL;
    uint32_t i = 0;
    for (; i + 1 < n; i += 2) {
        uint64_t x, y;
        memcpy(&x, w + 8u * i, 8);
        memcpy(&y, w + 8u * i + 8, 8);
        a1 += ms_fold_mul(x ^ s1, y + s1);
        a2 += ms_fold_mul(x + s2, y ^ s2);
        s1 += 0x9e3779b97f4a7c15ULL;
        s2 += 0xd6e8feb86659fd93ULL;
    }
    if (i < n) {
        uint64_t x;
        memcpy(&x, w + 8u * i, 8);
        a1 += ms_fold_mul(x ^ s1, 0xe7037ed1a0b428dbULL);
        a2 += ms_fold_mul(x + s2, 0x589965cc75374cc3ULL);
    }
    h->h1 = (h->h1 ^ a1) * 0x9e3779b97f4a7c15ULL;
    h->h1 ^= h->h1 >> 32;
    h->h2 = (h->h2 + a2) * 0xc2b2ae3d27d4eb4fULL;
    h->h2 ^= h->h2 >> 29;
}

static inline ms_hash_t ms_hash_finish(ms_hash_t h) {
    return (ms_hash_t){ms_mix(h.h1) | 1 /* 0 marks an empty slot */, ms_mix(h.h2)};
}

#endif
