/*
 * Unit tests for the lock-free id table (src/idtable.c), the shim's stack
 * table and Python code table: threads interning overlapping keys at once
 * must agree on one id per key, never share an id between keys, and
 * announce each key once per generation. Run under ThreadSanitizer by
 * `make test-tsan`, which is where a missing acquire/release shows.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "idtable.h"
#include "testhelper.h"

#include <pthread.h>
#include <stdlib.h>

/* The shim's generation counter (process.c), bumped by a fork child. */
uint32_t g_generation;

#define THREADS 8
#ifndef KEYS
#define KEYS 20000
#endif

static ms_idtable_t table;
static pthread_barrier_t start;
static uint32_t ids[THREADS][KEYS];
static uint32_t announced[KEYS]; /* announcements per key, all threads */

/* Distinct odd first words (idtable keys are odd), a second word to match. */
static void key_of(uint32_t k, uint64_t *h1, uint64_t *h2) {
    ms_hash_t h = ms_hash_start(7);
    ms_hash_add(&h, k);
    h = ms_hash_finish(h);
    *h1 = h.h1;
    *h2 = h.h2;
}

/* Every thread interns every key, each thread in its own order, so that
 * several threads race to claim the same empty slot. */
static void *intern_all(void *arg) {
    uint32_t t = (uint32_t)(uintptr_t)arg;
    pthread_barrier_wait(&start);
    for (uint32_t i = 0; i < KEYS; i++) {
        uint32_t k = (t % 2 == 0) ? (i + t * 977) % KEYS : KEYS - 1 - (i + t * 131) % KEYS;
        uint64_t h1, h2;
        key_of(k, &h1, &h2);
        int announce;
        ids[t][k] = ms_idtable_intern(&table, h1, h2, &announce);
        if (announce) __atomic_fetch_add(&announced[k], 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void run_threads(void) {
    pthread_t threads[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (uint32_t t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, intern_all, (void *)(uintptr_t)t);
    for (uint32_t t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&start);
}

static void test_concurrent_interns_agree(void) {
    if (!CHECK(ms_idtable_init(&table, 16) == 0)) return;
    memset(announced, 0, sizeof announced);
    run_threads();
    /* One id per key, the same in every thread; no id given to two keys. */
    uint8_t *seen = calloc(KEYS + 1, 1);
    for (uint32_t k = 0; k < KEYS; k++) {
        uint32_t id = ids[0][k];
        if (!CHECK(id != 0 && id <= KEYS)) break;
        for (uint32_t t = 1; t < THREADS; t++)
            if (!CHECK(ids[t][k] == id)) break;
        if (!CHECK(!seen[id])) break;
        seen[id] = 1;
        if (!CHECK(announced[k] == 1)) break;
    }
    free(seen);

    /* A fork child's generation: each key is announced once more, by
     * whichever thread uses it first, with the same id. */
    __atomic_store_n(&g_generation, g_generation + 1, __ATOMIC_RELAXED);
    uint32_t before[KEYS];
    memcpy(before, ids[0], sizeof before);
    memset(announced, 0, sizeof announced);
    run_threads();
    for (uint32_t k = 0; k < KEYS; k++) {
        if (!CHECK(ids[0][k] == before[k])) break;
        if (!CHECK(announced[k] == 1)) break;
    }
}

/* A table too small for its keys answers 0 (the stack is then recorded as
 * unknown) instead of probing forever. */
static void test_full_table_answers_zero(void) {
    ms_idtable_t small;
    if (!CHECK(ms_idtable_init(&small, 8) == 0)) return;
    uint32_t zeros = 0;
    for (uint32_t k = 0; k < 1000; k++) {
        uint64_t h1, h2;
        key_of(k, &h1, &h2);
        int announce;
        if (ms_idtable_intern(&small, h1, h2, &announce) == 0) zeros++;
    }
    CHECK(zeros >= 1000 - 256);
}

int main(int argc, char **argv) {
    if (argc > 1) test_filter = argv[1];
    RUN_TEST(test_concurrent_interns_agree);
    RUN_TEST(test_full_table_answers_zero);
    return test_summary();
}
