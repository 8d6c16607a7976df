/*
 * Unit tests for the shared-memory ring (ring/ring.c).
 *
 * Each test is written so that it fails if a property the tracer relies on
 * breaks: order = reservation order, no loss and no duplicates under
 * backpressure, zeroed laps, salvage after a dead producer, attach.
 */
#define _GNU_SOURCE
#include "memsift_ring.h"
#include "testhelper.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1u
#endif

/* Overridable so a slow instrumented build can scale down; the default is
 * what the brief asks for. */
#ifndef MP_PER_THREAD
#define MP_PER_THREAD 200000
#endif
#define MP_THREADS 8

#ifndef CAUSAL_ROUNDS
#define CAUSAL_ROUNDS 50000
#endif

/* ---- helpers ----------------------------------------------------------- */

static int ring_fd(void) {
    int fd = (int)syscall(SYS_memfd_create, "memsift-test-ring", MFD_CLOEXEC);
    if (fd >= 0) return fd;
    /* Kernels without memfd: an unlinked temp file behaves the same. */
    char path[] = "/tmp/memsift-test-ring-XXXXXX";
    fd = mkstemp(path);
    if (fd >= 0) unlink(path);
    return fd;
}

typedef struct {
    int fd;
    ms_ring_t ring;
} fixture_t;

static int fixture_open(fixture_t *f, uint64_t capacity) {
    f->fd = ring_fd();
    if (!CHECK(f->fd >= 0)) return 0;
    int rc = ms_ring_create(&f->ring, f->fd, capacity, (int32_t)getpid(), 12345);
    if (!CHECK(rc == 0)) {
        close(f->fd);
        return 0;
    }
    return 1;
}

static void fixture_close(fixture_t *f) {
    ms_ring_unmap(&f->ring);
    close(f->fd);
}

static uint64_t load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static ms_record_header_t header_at(const uint8_t *rec) {
    ms_record_header_t h;
    memcpy(&h, rec, sizeof h);
    return h;
}

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0) return 0;
    return 1;
}

static uint64_t ring_mask(const ms_ring_t *r) { return r->capacity - 1; }

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/* How much of a peeked span a threaded consumer takes at once. Producers
 * write every header through the first mapping; a whole span reads the
 * headers past the wrap point through the second one. Same memory, but TSan
 * tracks addresses, not pages, so it sees no acquire matching the producer's
 * release and reports a race on the next lap. Under TSan, stop at the first
 * header past the end: the next peek reads it through the first mapping. */
static size_t take_of_span(const ms_ring_t *r, const uint8_t *span, size_t n) {
#if defined(UNDER_TSAN) && !defined(TEST_WHOLE_SPANS) /* -DTEST_WHOLE_SPANS shows the report */
    const uint8_t *end = r->data + r->capacity;
    size_t off = 0;
    while (off < n && span + off < end) off += header_at(span + off).size;
    return off;
#else
    (void)r;
    (void)span;
    return n;
#endif
}

static void tiny_pause(unsigned spins) {
    for (unsigned i = 0; i < spins; i++) __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* ---- single-producer records: everything derived from the sequence ----- */

static uint32_t sp_size(uint64_t seq) { return 8u * (1u + (uint32_t)(mix64(seq) % 25)); } /* 8..200 */
static uint8_t sp_type(uint64_t seq) { return (uint8_t)(seq * 31 + 7); }
static uint8_t sp_aux(uint64_t seq) { return (uint8_t)(seq >> 3); }
static uint8_t sp_byte(uint64_t seq, uint32_t i) { return (uint8_t)(seq * 131 + i * 7 + 1); }

static uint8_t *sp_write(ms_ring_t *r, uint64_t seq) {
    uint32_t size = sp_size(seq);
    uint8_t *rec = ms_ring_reserve(r, size, sp_type(seq), sp_aux(seq));
    if (size >= 16) memcpy(rec + 8, &seq, 8);
    for (uint32_t i = 16; i < size; i++) rec[i] = sp_byte(seq, i);
    return rec;
}

static int sp_verify(const uint8_t *rec, uint64_t seq) {
    ms_record_header_t h = header_at(rec);
    uint32_t size = sp_size(seq);
    if (h.size != size || h.type != sp_type(seq) || h.aux != sp_aux(seq) || h.state != MS_STATE_COMMITTED ||
        h.magic != MS_RECORD_MAGIC)
        return 0;
    if (size >= 16) {
        uint64_t s;
        memcpy(&s, rec + 8, 8);
        if (s != seq) return 0;
    }
    for (uint32_t i = 16; i < size; i++)
        if (rec[i] != sp_byte(seq, i)) return 0;
    return 1;
}

/* Reads `count` records starting at sequence `seq` from the span at the tail
 * and returns their bytes, or 0 on any mismatch. */
static size_t sp_expect_span(const uint8_t *span, size_t n, uint64_t seq, uint64_t count) {
    size_t off = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (off >= n || !sp_verify(span + off, seq + i)) return 0;
        off += sp_size(seq + i);
    }
    return off == n ? off : 0;
}

/* ---- tests --------------------------------------------------------------- */

static void test_create_header(void) {
    long page = sysconf(_SC_PAGESIZE);
    fixture_t f;
    if (!fixture_open(&f, 5000)) return;
    ms_ring_header_t *h = f.ring.header;
    /* Rounded up to a power of two >= the page size. */
    CHECK(f.ring.capacity == 8192 || (page > 8192 && f.ring.capacity == (uint64_t)page));
    CHECK(h->magic == MEMSIFT_RING_MAGIC);
    CHECK(h->version == MEMSIFT_RING_VERSION);
    CHECK(h->data_offset == (uint32_t)page);
    CHECK(h->capacity == f.ring.capacity);
    CHECK(h->pid == (int32_t)getpid());
    CHECK(h->state == MS_RING_ACTIVE);
    CHECK(h->start_mono_ns == 12345);
    CHECK(h->head == 0 && h->tail == 0);
    CHECK(f.ring.data == (uint8_t *)h + h->data_offset);
    CHECK(lseek(f.fd, 0, SEEK_END) == (off_t)(h->data_offset + h->capacity));
    fixture_close(&f);
    CHECK(f.ring.header == NULL && f.ring.data == NULL);

    if (!fixture_open(&f, 1)) return;
    CHECK(f.ring.capacity == (uint64_t)page);
    fixture_close(&f);
}

static void test_peek_stops_at_pending(void) {
    fixture_t f;
    if (!fixture_open(&f, 4096)) return;
    ms_ring_t *r = &f.ring;
    const uint8_t *span;
    int corrupt = -1;
    CHECK(ms_ring_peek(r, &span, &corrupt) == 0);
    CHECK(corrupt == 0);

    uint8_t *a = sp_write(r, 0);
    ms_ring_commit(a);
    uint8_t *b = sp_write(r, 1);
    uint8_t *c = sp_write(r, 2);
    ms_ring_commit(c);
    CHECK(header_at(b).state == MS_STATE_PENDING);
    CHECK(header_at(b).magic == MS_RECORD_MAGIC);

    /* A committed record behind a pending one must stay invisible: that is
     * what keeps the trace in reservation order. */
    size_t n = ms_ring_peek(r, &span, &corrupt);
    CHECK(!corrupt);
    CHECK(span == r->data);
    CHECK(n == sp_size(0));
    CHECK(sp_expect_span(span, n, 0, 1) == n);

    ms_ring_commit(b);
    n = ms_ring_peek(r, &span, &corrupt);
    CHECK(!corrupt);
    CHECK(n == (size_t)sp_size(0) + sp_size(1) + sp_size(2));
    CHECK(sp_expect_span(span, n, 0, 3) == n);
    CHECK(ms_ring_backlog(r) == n);
    ms_ring_consume(r, n);
    CHECK(all_zero(r->data, n));
    CHECK(ms_ring_peek(r, &span, &corrupt) == 0);
    CHECK(ms_ring_backlog(r) == 0);
    fixture_close(&f);
}

static void test_single_producer_laps(void) {
    fixture_t f;
    if (!fixture_open(&f, 4096)) return;
    ms_ring_t *r = &f.ring;
    CHECK(r->capacity == 4096);
    const uint64_t total = 300000;
    uint64_t rng = 1, written = 0, read = 0, wrapped = 0, partial = 0;
    int ok = 1;
    while (ok && read < total) {
        unsigned burst = 1 + (unsigned)(mix64(rng++) % 48);
        while (burst-- > 0 && written < total) {
            uint32_t size = sp_size(written);
            /* We are also the consumer: a reserve that has to wait would
             * wait forever. */
            if (ms_ring_backlog(r) + size > r->capacity) break;
            uint64_t pos = load64(&r->header->head);
            uint8_t *rec = sp_write(r, written);
            uint64_t off = pos & ring_mask(r);
            ok &= CHECK(rec == r->data + off);
            if (off + size > r->capacity) {
                wrapped++;
                /* The bytes past the end are the start of the ring again. */
                ok &= CHECK(memcmp(r->data, r->data + r->capacity, off + size - r->capacity) == 0);
            }
            ms_ring_commit(rec);
            written++;
        }

        const uint8_t *span;
        int corrupt;
        uint64_t tail = load64(&r->header->tail);
        size_t n = ms_ring_peek(r, &span, &corrupt);
        ok &= CHECK(!corrupt);
        ok &= CHECK(span == r->data + (tail & ring_mask(r)));
        ok &= CHECK(n == ms_ring_backlog(r)); /* everything written is committed */

        /* Consume a random prefix so the tail lands on every offset, not
         * only where a burst ended. */
        uint64_t pending = written - read;
        uint64_t want = mix64(rng++) % 4 == 0 ? pending : mix64(rng++) % (pending + 1);
        size_t off = 0, consumed = 0;
        uint64_t count = 0;
        while (off < n) {
            if (!(ok &= CHECK(sp_verify(span + off, read + count)))) break;
            off += sp_size(read + count);
            if (++count == want) consumed = off;
        }
        ok &= CHECK(off == n && count == pending);
        if (want < pending) partial++;
        ms_ring_consume(r, consumed);
        /* The next lap relies on EMPTY headers. */
        ok &= CHECK(all_zero(r->data + (tail & ring_mask(r)), consumed));
        ok &= CHECK(load64(&r->header->tail) == tail + consumed);
        read += want;
    }
    uint64_t head = load64(&r->header->head);
    CHECK(written == total && read == total);
    CHECK(head == load64(&r->header->tail));
    CHECK(head / r->capacity > 1000); /* many laps */
    CHECK(wrapped > 1000);
    CHECK(partial > 1000);
    CHECK(load64(&r->header->backpressure_waits) == 0);
    const uint8_t *span;
    int corrupt;
    CHECK(ms_ring_peek(r, &span, &corrupt) == 0);
    fixture_close(&f);
}

/* ---- backpressure with a wait hook (deterministic, one thread) -------- */

typedef struct {
    uint32_t calls;
    uint32_t attempts_in_order;
} wait_log_t;

/* Plays the consumer from inside the producer's wait: the first calls drain
 * nothing (the producer must keep waiting), later ones one record each. */
static void drain_one_in_wait(ms_ring_t *r, void *ctx, uint32_t attempt) {
    wait_log_t *log = ctx;
    if (attempt == log->calls) log->attempts_in_order++;
    log->calls++;
    if (attempt < 3) return;
    const uint8_t *span;
    int corrupt;
    size_t n = ms_ring_peek(r, &span, &corrupt);
    if (n >= 64) ms_ring_consume(r, 64);
}

/* Fills a 4096-byte ring with 64 committed 64-byte records of type 1. */
static void fill_4096(ms_ring_t *r) {
    for (int i = 0; i < 64; i++) {
        uint8_t *rec = ms_ring_reserve(r, 64, 1, 0);
        memset(rec + 8, 0x5a, 56);
        ms_ring_commit(rec);
    }
}

static void test_backpressure_wait_hook(void) {
    fixture_t f;
    if (!fixture_open(&f, 4096)) return;
    ms_ring_t *r = &f.ring;
    /* Exactly full: the last record ends at the capacity and must not wait. */
    fill_4096(r);
    CHECK(ms_ring_backlog(r) == 4096);
    CHECK(load64(&r->header->backpressure_waits) == 0);

    wait_log_t log = {0, 0};
    r->wait = drain_one_in_wait;
    r->wait_ctx = &log;
    /* Needs 128 free bytes: two records drained on attempts 3 and 4. */
    uint8_t *rec = ms_ring_reserve(r, 128, 2, 0);
    CHECK(rec == r->data);
    CHECK(log.calls == 5);
    CHECK(log.attempts_in_order == 5);
    CHECK(load64(&r->header->tail) == 128);
    CHECK(load64(&r->header->backpressure_waits) == 1);
    CHECK(load64(&r->header->backpressure_ns) > 0);
    /* The drained bytes were zeroed before the producer got them. */
    CHECK(all_zero(rec + 8, 120));
    ms_ring_commit(rec);

    const uint8_t *span;
    int corrupt;
    size_t n = ms_ring_peek(r, &span, &corrupt);
    CHECK(!corrupt && n == 4096);
    CHECK(span == r->data + 128);
    CHECK(header_at(span + 4096 - 128).type == 2); /* the wrapped record, seen through the second mapping */
    fixture_close(&f);
}

/* A consumer that dies between zeroing a span it read and moving the tail
 * past it leaves a hole that no peek passes: draining by peek makes no
 * progress, and a producer waiting on the full ring would wait forever.
 * ms_ring_discard (what the shim does once its collector is gone) frees it. */
static void discard_in_wait(ms_ring_t *ring, void *ctx, uint32_t attempt) {
    (void)ctx;
    (void)attempt;
    ms_ring_discard(ring);
}

static void test_discard_passes_a_dead_consumers_hole(void) {
    fixture_t f;
    if (!fixture_open(&f, 4096)) return;
    ms_ring_t *r = &f.ring;
    fill_4096(r);
    memset(r->data, 0, 128); /* the dead consumer's half-done consume */
    const uint8_t *span;
    int corrupt;
    CHECK(ms_ring_peek(r, &span, &corrupt) == 0);
    CHECK(ms_ring_backlog(r) == 4096);
    r->wait = discard_in_wait;
    uint8_t *rec = ms_ring_reserve(r, 64, 2, 0);
    CHECK(rec == r->data);
    CHECK(load64(&r->header->tail) >= 64);
    ms_ring_commit(rec);
    fixture_close(&f);
}

/* ---- multi-producer ---------------------------------------------------- */

typedef struct {
    ms_record_header_t h;
    uint32_t tid;
    uint32_t len; /* payload bytes after this struct */
    uint64_t seq;
    uint64_t sum;
} mp_record_t;

#define MP_TYPE 0x70

static uint32_t mp_len(uint32_t tid, uint64_t seq) { return 8u * (uint32_t)(mix64(seq * MP_THREADS + tid) % 22); }
static uint64_t mp_word(uint32_t tid, uint64_t seq, uint32_t i) { return mix64(((uint64_t)tid << 56) ^ (seq << 6) ^ i); }

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

typedef struct {
    ms_ring_t *ring;
    uint32_t tid;
    const int *go;
} mp_producer_t;

static void *mp_producer(void *arg) {
    mp_producer_t *p = arg;
    while (!__atomic_load_n(p->go, __ATOMIC_ACQUIRE)) sched_yield();
    for (uint64_t seq = 0; seq < MP_PER_THREAD; seq++) {
        uint32_t len = mp_len(p->tid, seq);
        uint8_t *rec = ms_ring_reserve(p->ring, (uint32_t)sizeof(mp_record_t) + len, MP_TYPE, (uint8_t)p->tid);
        uint8_t *payload = rec + sizeof(mp_record_t);
        for (uint32_t i = 0; i < len / 8; i++) {
            uint64_t w = mp_word(p->tid, seq, i);
            memcpy(payload + 8 * i, &w, 8);
        }
        mp_record_t *m = (mp_record_t *)rec;
        m->tid = p->tid;
        m->len = len;
        m->seq = seq;
        m->sum = fnv1a(payload, len);
        ms_ring_commit(rec);
    }
    return NULL;
}

typedef struct {
    ms_ring_t *ring;
    uint64_t next[MP_THREADS];
    uint64_t received;
    uint64_t bytes;
    uint64_t spans;
} mp_consumer_t;

static int mp_check_record(mp_consumer_t *c, const uint8_t *rec) {
    const mp_record_t *m = (const mp_record_t *)rec;
    ms_record_header_t h = header_at(rec);
    if (!CHECK(h.type == MP_TYPE && h.state == MS_STATE_COMMITTED && h.magic == MS_RECORD_MAGIC)) return 0;
    if (!CHECK(m->tid < MP_THREADS && h.aux == m->tid)) return 0;
    if (!CHECK(h.size == sizeof(mp_record_t) + m->len)) return 0;
    /* Equal, not just greater: catches a lost record and a duplicate alike. */
    if (!CHECK(m->seq == c->next[m->tid])) return 0;
    if (!CHECK(m->len == mp_len(m->tid, m->seq))) return 0;
    const uint8_t *payload = rec + sizeof(mp_record_t);
    if (!CHECK(fnv1a(payload, m->len) == m->sum)) return 0;
    for (uint32_t i = 0; i < m->len / 8; i++) {
        uint64_t w;
        memcpy(&w, payload + 8 * i, 8);
        if (!CHECK(w == mp_word(m->tid, m->seq, i))) return 0;
    }
    return 1;
}

static void *mp_consumer(void *arg) {
    mp_consumer_t *c = arg;
    const uint64_t total = (uint64_t)MP_THREADS * MP_PER_THREAD;
    double idle_since = 0;
    while (c->received < total) {
        const uint8_t *span;
        int corrupt;
        size_t n = ms_ring_peek(c->ring, &span, &corrupt);
        if (!CHECK(!corrupt)) test_abort("corrupt record in the ring");
        n = take_of_span(c->ring, span, n);
        if (n == 0) {
            /* Producers never stall for long; a record that never shows up
             * (lost, or a stuck pending header) would hang the test. */
            double now = test_now_s();
            if (idle_since == 0) idle_since = now;
            else if (now - idle_since > 10) test_abort("no progress for 10s: a record never arrived");
            sched_yield();
            continue;
        }
        idle_since = 0;
        size_t off = 0;
        while (off < n) {
            const mp_record_t *m = (const mp_record_t *)(span + off);
            if (!mp_check_record(c, span + off)) test_abort("bad record");
            c->next[m->tid] = m->seq + 1;
            c->received++;
            off += m->h.size;
        }
        CHECK(off == n);
        ms_ring_consume(c->ring, n);
        c->bytes += n;
        /* Let the producers catch up now and then so the ring really fills. */
        if (++c->spans % 128 == 0) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void test_multi_producer(void) {
    fixture_t f;
    if (!fixture_open(&f, 64 * 1024)) return;
    ms_ring_t *r = &f.ring;
    CHECK(r->capacity == 64 * 1024);

    int go = 0;
    mp_consumer_t consumer = {.ring = r};
    mp_producer_t producers[MP_THREADS];
    pthread_t threads[MP_THREADS], consumer_thread;
    CHECK(pthread_create(&consumer_thread, NULL, mp_consumer, &consumer) == 0);
    for (uint32_t t = 0; t < MP_THREADS; t++) {
        producers[t] = (mp_producer_t){r, t, &go};
        CHECK(pthread_create(&threads[t], NULL, mp_producer, &producers[t]) == 0);
    }
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    for (uint32_t t = 0; t < MP_THREADS; t++) pthread_join(threads[t], NULL);
    pthread_join(consumer_thread, NULL);

    uint64_t expect_bytes = 0;
    for (uint32_t t = 0; t < MP_THREADS; t++)
        for (uint64_t s = 0; s < MP_PER_THREAD; s++) expect_bytes += sizeof(mp_record_t) + mp_len(t, s);
    CHECK(consumer.received == (uint64_t)MP_THREADS * MP_PER_THREAD);
    for (uint32_t t = 0; t < MP_THREADS; t++) CHECK(consumer.next[t] == MP_PER_THREAD);
    CHECK(consumer.bytes == expect_bytes);
    CHECK(load64(&r->header->head) == expect_bytes);
    CHECK(load64(&r->header->tail) == expect_bytes);
    CHECK(ms_ring_backlog(r) == 0);
    uint64_t waits = load64(&r->header->backpressure_waits);
    uint64_t wait_ns = load64(&r->header->backpressure_ns);
    /* The ring was full at times and nobody dropped anything. */
    CHECK(waits > 0);
    CHECK(wait_ns > 0);
    fprintf(stderr, "[%llu records, %.1f laps, %llu backpressure waits, %.3fs waited] ",
            (unsigned long long)consumer.received, (double)expect_bytes / (double)r->capacity,
            (unsigned long long)waits, (double)wait_ns / 1e9);
    fixture_close(&f);
}

/* ---- causal order across producers ------------------------------------- */

typedef struct {
    ms_ring_t *ring;
    int commit_late; /* A commits its free only after B committed the alloc */
    uint64_t signal; /* A -> B: frees reserved */
    uint64_t b_done; /* B -> A: allocs committed */
    uint64_t polls;  /* consumer: peeks done */
} causal_t;

static void wait_for(const uint64_t *p, uint64_t above) {
    unsigned spins = 0;
    while (__atomic_load_n(p, __ATOMIC_ACQUIRE) <= above) {
        if (++spins < 64) tiny_pause(8);
        else sched_yield();
    }
}

static void *causal_a(void *arg) {
    causal_t *c = arg;
    for (uint64_t i = 0; i < CAUSAL_ROUNDS; i++) {
        ms_free_record_t *r = (ms_free_record_t *)ms_ring_reserve(c->ring, sizeof *r, MS_REC_FREE, 0);
        r->ptr = 0x1000 + i;
        if (!c->commit_late) {
            r->time_ns = 1000 + i;
            ms_ring_commit((uint8_t *)r);
        }
        /* The real free would run here, after the record took its place. */
        __atomic_store_n(&c->signal, i + 1, __ATOMIC_RELEASE);
        if (c->commit_late) {
            wait_for(&c->b_done, i);
            /* Hold the record pending across a whole peek, with B's record
             * committed behind it: a consumer that read past a pending
             * header would see time_ns still 0. */
            wait_for(&c->polls, __atomic_load_n(&c->polls, __ATOMIC_ACQUIRE) + 1);
            r->time_ns = 1000 + i;
            ms_ring_commit((uint8_t *)r);
        }
    }
    return NULL;
}

static void *causal_b(void *arg) {
    causal_t *c = arg;
    for (uint64_t i = 0; i < CAUSAL_ROUNDS; i++) {
        /* malloc just returned the address A freed. */
        wait_for(&c->signal, i);
        ms_alloc_record_t *r = (ms_alloc_record_t *)ms_ring_reserve(c->ring, sizeof *r, MS_REC_ALLOC, MS_FN_MALLOC);
        r->time_ns = 1000 + i;
        r->ptr = 0x1000 + i;
        r->size = 32;
        r->stack = 0;
        r->tid = 2;
        ms_ring_commit((uint8_t *)r);
        __atomic_store_n(&c->b_done, i + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void causal_round(int commit_late) {
    fixture_t f;
    if (!fixture_open(&f, 4096)) return;
    causal_t c = {.ring = &f.ring, .commit_late = commit_late};
    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, causal_a, &c) == 0);
    CHECK(pthread_create(&b, NULL, causal_b, &c) == 0);

    uint64_t frees = 0, allocs = 0, violations = 0;
    double idle_since = 0;
    while (allocs < CAUSAL_ROUNDS || frees < CAUSAL_ROUNDS) {
        const uint8_t *span;
        int corrupt;
        size_t n = ms_ring_peek(&f.ring, &span, &corrupt);
        __atomic_store_n(&c.polls, c.polls + 1, __ATOMIC_RELEASE);
        if (!CHECK(!corrupt)) test_abort("corrupt record in the ring");
        n = take_of_span(&f.ring, span, n);
        if (n == 0) {
            double now = test_now_s();
            if (idle_since == 0) idle_since = now;
            else if (now - idle_since > 10) test_abort("no progress for 10s");
            sched_yield();
            continue;
        }
        idle_since = 0;
        for (size_t off = 0; off < n;) {
            ms_record_header_t h = header_at(span + off);
            if (h.type == MS_REC_FREE) {
                const ms_free_record_t *fr = (const ms_free_record_t *)(span + off);
                CHECK(fr->ptr == 0x1000 + frees);
                CHECK(fr->time_ns == 1000 + frees); /* complete when seen */
                frees++;
            } else if (CHECK(h.type == MS_REC_ALLOC)) {
                const ms_alloc_record_t *ar = (const ms_alloc_record_t *)(span + off);
                CHECK(ar->ptr == 0x1000 + allocs && ar->time_ns == 1000 + allocs);
                /* The free of this address must already have been seen. */
                if (frees <= allocs) violations++;
                allocs++;
            }
            off += h.size;
        }
        ms_ring_consume(&f.ring, n);
    }
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK(violations == 0);
    CHECK(frees == CAUSAL_ROUNDS && allocs == CAUSAL_ROUNDS);
    CHECK(ms_ring_backlog(&f.ring) == 0);
    fixture_close(&f);
}

static void test_causal_order(void) { causal_round(0); }

/* The shim's realloc takes its place before the real call and commits
 * after, so an alloc of the same address can be committed first. */
static void test_causal_order_commit_late(void) { causal_round(1); }

/* ---- salvage ----------------------------------------------------------- */

/* Writes and commits records seq .. seq+count-1. */
static void sp_commit_run(ms_ring_t *r, uint64_t seq, uint64_t count) {
    for (uint64_t i = 0; i < count; i++) ms_ring_commit(sp_write(r, seq + i));
}

static void test_salvage_pending(void) {
    fixture_t f;
    if (!fixture_open(&f, 4096)) return;
    ms_ring_t *r = &f.ring;
    uint64_t seq = 0, straddled = 0;
    const uint8_t *span;
    int corrupt;
    /* Many rounds, so the dead record sits at every offset, wrapping too. */
    for (uint32_t round = 0; round < 400; round++) {
        sp_commit_run(r, seq, 2);
        uint64_t before = sp_size(seq) + sp_size(seq + 1);

        uint32_t dead_size = 8u * (1 + round % 25);
        uint64_t dead_pos = load64(&r->header->head);
        uint8_t *dead = ms_ring_reserve(r, dead_size, MS_REC_ALLOC, 0);
        memset(dead + 8, 0x11, dead_size - 8); /* half-written, never committed */
        if ((dead_pos & ring_mask(r)) + dead_size > r->capacity) straddled++;

        sp_commit_run(r, seq + 2, 2);
        uint64_t after = sp_size(seq + 2) + sp_size(seq + 3);

        size_t n = ms_ring_peek(r, &span, &corrupt);
        if (!CHECK(!corrupt && n == before && sp_expect_span(span, n, seq, 2) == n)) break;
        ms_ring_consume(r, n);
        if (!CHECK(ms_ring_peek(r, &span, &corrupt) == 0 && !corrupt)) break;

        uint64_t tail = load64(&r->header->tail);
        if (!CHECK(ms_ring_skip_hole(r) == dead_size)) break;
        CHECK(all_zero(r->data + (tail & ring_mask(r)), dead_size));

        n = ms_ring_peek(r, &span, &corrupt);
        if (!CHECK(!corrupt && n == after && sp_expect_span(span, n, seq + 2, 2) == n)) break;
        ms_ring_consume(r, n);
        if (!CHECK(ms_ring_skip_hole(r) == 0)) break; /* nothing left */
        seq += 4;
    }
    CHECK(straddled > 0);
    CHECK(ms_ring_backlog(r) == 0);
    fixture_close(&f);
}

static void test_salvage_hole(void) {
    fixture_t f;
    if (!fixture_open(&f, 4096)) return;
    ms_ring_t *r = &f.ring;
    uint64_t seq = 0;
    const uint8_t *span;
    int corrupt;
    for (uint32_t round = 0; round < 400; round++) {
        sp_commit_run(r, seq, 1);
        /* A producer took its place (fetch_add) and died before writing even
         * the pending header: the word at the tail stays 0. */
        uint32_t hole = 8u * (1 + round % 25);
        __atomic_fetch_add(&r->header->head, hole, __ATOMIC_RELAXED);
        sp_commit_run(r, seq + 1, 2);
        uint64_t after = sp_size(seq + 1) + sp_size(seq + 2);

        size_t n = ms_ring_peek(r, &span, &corrupt);
        if (!CHECK(!corrupt && n == sp_size(seq) && sp_expect_span(span, n, seq, 1) == n)) break;
        ms_ring_consume(r, n);
        if (!CHECK(ms_ring_peek(r, &span, &corrupt) == 0 && !corrupt)) break;
        if (!CHECK(ms_ring_skip_hole(r) == hole)) break;

        n = ms_ring_peek(r, &span, &corrupt);
        if (!CHECK(!corrupt && n == after && sp_expect_span(span, n, seq + 1, 2) == n)) break;
        ms_ring_consume(r, n);
        if (!CHECK(ms_ring_skip_hole(r) == 0)) break;
        seq += 3;
    }

    /* A hole with nothing after it: everything reserved is skipped. */
    __atomic_fetch_add(&r->header->head, 40, __ATOMIC_RELAXED);
    CHECK(ms_ring_skip_hole(r) == 40);
    CHECK(ms_ring_backlog(r) == 0);
    CHECK(ms_ring_skip_hole(r) == 0);

    /* A hole, then a dead pending record, then committed ones: salvage lands
     * on the first committed record (the pending one is lost with the hole). */
    __atomic_fetch_add(&r->header->head, 24, __ATOMIC_RELAXED);
    uint8_t *dead = ms_ring_reserve(r, 48, MS_REC_FREE, 0);
    memset(dead + 8, 0, 40);
    sp_commit_run(r, seq, 2);
    uint64_t skipped = 0, step;
    while ((step = ms_ring_skip_hole(r)) != 0) {
        skipped += step;
        if (ms_ring_peek(r, &span, &corrupt) != 0) break;
    }
    CHECK(skipped == 24 + 48);
    size_t n = ms_ring_peek(r, &span, &corrupt);
    CHECK(!corrupt && n == (size_t)sp_size(seq) + sp_size(seq + 1));
    CHECK(sp_expect_span(span, n, seq, 2) == n);
    ms_ring_consume(r, n);
    CHECK(ms_ring_backlog(r) == 0);
    fixture_close(&f);
}

/* ---- attach ------------------------------------------------------------ */

static void test_attach(void) {
    fixture_t f;
    if (!fixture_open(&f, 4096)) return;
    ms_ring_t *r = &f.ring;
    sp_commit_run(r, 0, 10);

    ms_ring_t view;
    if (!CHECK(ms_ring_attach(&view, f.fd) == 0)) {
        fixture_close(&f);
        return;
    }
    CHECK(view.header != r->header); /* a mapping of its own */
    CHECK(view.capacity == r->capacity);
    CHECK(view.data == (uint8_t *)view.header + r->header->data_offset);
    CHECK(view.wait == NULL);

    const uint8_t *span, *mine;
    int corrupt;
    size_t n = ms_ring_peek(&view, &span, &corrupt);
    CHECK(!corrupt && n == ms_ring_peek(r, &mine, &corrupt));
    CHECK(n > 0 && memcmp(span, mine, n) == 0 && sp_expect_span(span, n, 0, 10) == n);
    ms_ring_consume(&view, n);
    /* Same memory: the creator sees the consumer's tail and zeroes. */
    CHECK(load64(&r->header->tail) == n);
    CHECK(all_zero(r->data, n));

    /* Produce through one mapping, consume through the other, over laps. */
    uint64_t seq = 10;
    int ok = 1;
    for (int round = 0; ok && round < 2000; round++) {
        sp_commit_run(r, seq, 3);
        n = ms_ring_peek(&view, &span, &corrupt);
        ok &= CHECK(!corrupt && sp_expect_span(span, n, seq, 3) == n);
        ms_ring_consume(&view, n);
        seq += 3;
    }
    CHECK(load64(&r->header->head) / r->capacity > 10);
    /* The attached view maps the data twice as well. */
    CHECK(memcmp(view.data, view.data + view.capacity, view.capacity) == 0);
    ms_ring_unmap(&view);
    CHECK(view.header == NULL);
    fixture_close(&f);

    /* Wrong magic, wrong version, a file too short for a header. */
    int fd = ring_fd();
    if (!CHECK(fd >= 0)) return;
    ms_ring_t other;
    CHECK(ms_ring_attach(&other, fd) == -EPROTO);
    CHECK(ms_ring_create(&other, fd, 4096, 1, 0) == 0);
    ms_ring_unmap(&other);
    uint64_t magic = MEMSIFT_RING_MAGIC ^ 1;
    CHECK(pwrite(fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic);
    CHECK(ms_ring_attach(&other, fd) == -EPROTO);
    magic = MEMSIFT_RING_MAGIC;
    CHECK(pwrite(fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic);
    CHECK(ms_ring_attach(&other, fd) == 0); /* restored: accepted again */
    ms_ring_unmap(&other);
    uint32_t version = MEMSIFT_RING_VERSION + 1;
    CHECK(pwrite(fd, &version, sizeof version, 8) == (ssize_t)sizeof version);
    CHECK(ms_ring_attach(&other, fd) == -EPROTO);
    close(fd);
}

/* test_ring [SUBSTRING]: runs the tests whose name contains SUBSTRING. */
int main(int argc, char **argv) {
    if (argc > 1) test_filter = argv[1];
    RUN_TEST(test_create_header);
    RUN_TEST(test_peek_stops_at_pending);
    RUN_TEST(test_single_producer_laps);
    RUN_TEST(test_backpressure_wait_hook);
    RUN_TEST(test_discard_passes_a_dead_consumers_hole);
    RUN_TEST(test_salvage_pending);
    RUN_TEST(test_salvage_hole);
    RUN_TEST(test_attach);
    RUN_TEST(test_causal_order);
    RUN_TEST(test_causal_order_commit_late);
    RUN_TEST(test_multi_producer);
    return test_summary();
}
