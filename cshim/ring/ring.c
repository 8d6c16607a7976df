/*
 * The shared-memory ring (see memsift_ring.h and memsift/ring_layout.h).
 *
 * Order: a producer's place in the trace is its fetch_add on head. Records
 * become visible to the consumer strictly in that order, because the consumer
 * stops at the first record that is not committed. This is what makes the
 * trace causal for reused addresses: a free takes its place before the real
 * free runs, so any allocation that later returns the same address takes a
 * later place.
 *
 * Runs inside malloc: no allocation, no locks, no stdio.
 */
#define _GNU_SOURCE
#include "memsift_ring.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ms_load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define ms_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ms_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define ms_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ms_fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

static uint64_t ms_header_word(uint32_t size, uint8_t type, uint8_t state, uint8_t aux) {
    return (uint64_t)size | ((uint64_t)type << 32) | ((uint64_t)state << 40) | ((uint64_t)aux << 48) |
           ((uint64_t)MS_RECORD_MAGIC << 56);
}

static uint32_t ms_word_size(uint64_t w) { return (uint32_t)w; }
static uint8_t ms_word_state(uint64_t w) { return (uint8_t)(w >> 40); }
static uint8_t ms_word_magic(uint64_t w) { return (uint8_t)(w >> 56); }

static uint64_t ms_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t ms_round_capacity(uint64_t capacity, uint64_t page) {
    uint64_t c = page;
    while (c < capacity && c < (1ull << 40)) c <<= 1;
    return c;
}

/* Maps header + data, then the data a second time right after, inside one
 * reservation so nothing else can land between the two copies. */
static int ms_ring_map(ms_ring_t *ring, int fd, uint32_t data_offset, uint64_t capacity) {
    size_t total = (size_t)data_offset + 2 * (size_t)capacity;
    uint8_t *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return -errno;
    if (mmap(base, data_offset + capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
        mmap(base + data_offset + capacity, capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
             data_offset) == MAP_FAILED) {
        int err = errno;
        munmap(base, total);
        return -err;
    }
    ring->header = (ms_ring_header_t *)base;
    ring->data = base + data_offset;
    ring->capacity = capacity;
    ring->map_size = total;
    ring->wait = NULL;
    ring->wait_ctx = NULL;
    return 0;
}

int ms_ring_create(ms_ring_t *ring, int fd, uint64_t capacity, int32_t pid, uint64_t start_mono_ns) {
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint32_t data_offset = (uint32_t)(sizeof(ms_ring_header_t) <= page ? page : MS_ALIGN8(sizeof(ms_ring_header_t)));
    capacity = ms_round_capacity(capacity, page);
    if (ftruncate(fd, (off_t)(data_offset + capacity)) != 0) return -errno;
    int rc = ms_ring_map(ring, fd, data_offset, capacity);
    if (rc != 0) return rc;
    ms_ring_header_t *h = ring->header;
    h->version = MEMSIFT_RING_VERSION;
    h->data_offset = data_offset;
    h->capacity = capacity;
    h->pid = pid;
    h->state = MS_RING_ACTIVE;
    h->start_mono_ns = start_mono_ns;
    /* The magic goes last: a consumer that sees it sees a whole header. */
    ms_store_release(&h->magic, MEMSIFT_RING_MAGIC);
    return 0;
}

int ms_ring_attach(ms_ring_t *ring, int fd) {
    ms_ring_header_t h;
    struct stat st;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) return -EPROTO;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (h.magic != MEMSIFT_RING_MAGIC || h.version != MEMSIFT_RING_VERSION || h.data_offset % page != 0 ||
        h.capacity == 0 || h.capacity % page != 0 || (h.capacity & (h.capacity - 1)) != 0)
        return -EPROTO;
    /* A file shorter than its header says would fault (SIGBUS) on access. */
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < h.data_offset + h.capacity) return -EPROTO;
    return ms_ring_map(ring, fd, h.data_offset, h.capacity);
}

void ms_ring_unmap(ms_ring_t *ring) {
    if (ring->header) munmap(ring->header, ring->map_size);
    ring->header = NULL;
    ring->data = NULL;
}

void ms_ring_backoff(uint32_t attempt) {
    if (attempt < 64) {
        ms_cpu_relax();
    } else if (attempt < 128) {
        sched_yield();
    } else {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
}

uint8_t *ms_ring_reserve(ms_ring_t *ring, uint32_t size, uint8_t type, uint8_t aux) {
    ms_ring_header_t *h = ring->header;
    /* Callers write fixed structs and bounded strings; a record that could
     * never fit would wait forever, so it is a bug to stop on at once. */
    if (size < sizeof(ms_record_header_t) || size % 8 != 0 || size > ring->capacity) __builtin_trap();
    uint64_t pos = ms_fetch_add_relaxed(&h->head, size);
    /* The bytes [pos, pos+size) are free once the consumer has passed
     * pos + size - capacity. Acquire: its zeroing happens before our writes. */
    if (pos + size > ring->capacity && ms_load_acquire(&h->tail) < pos + size - ring->capacity) {
        uint64_t started = ms_now_ns();
        uint32_t attempt = 0;
        while (ms_load_acquire(&h->tail) < pos + size - ring->capacity) {
            if (ring->wait)
                ring->wait(ring, ring->wait_ctx, attempt);
            else
                ms_ring_backoff(attempt);
            if (attempt < UINT32_MAX) attempt++;
        }
        ms_fetch_add_relaxed(&h->backpressure_ns, ms_now_ns() - started);
        ms_fetch_add_relaxed(&h->backpressure_waits, 1);
    }
    uint8_t *record = ring->data + (pos & (ring->capacity - 1));
    /* Pending, not committed: salvage can skip it by size if we die now. */
    ms_store_relaxed((uint64_t *)record, ms_header_word(size, type, MS_STATE_PENDING, aux));
    return record;
}

void ms_ring_commit(uint8_t *record) {
    uint64_t *word = (uint64_t *)record;
    uint64_t w = ms_load_relaxed(word);
    w = (w & ~(0xffull << 40)) | ((uint64_t)MS_STATE_COMMITTED << 40);
    ms_store_release(word, w);
}

static int ms_size_is_sane(uint32_t size, uint64_t room) {
    return size >= sizeof(ms_record_header_t) && size % 8 == 0 && size <= room;
}

size_t ms_ring_peek(ms_ring_t *ring, const uint8_t **span, int *corrupt) {
    uint64_t tail = ms_load_relaxed(&ring->header->tail);
    uint8_t *start = ring->data + (tail & (ring->capacity - 1));
    size_t off = 0;
    *corrupt = 0;
    while (off + sizeof(ms_record_header_t) <= ring->capacity) {
        uint64_t w = ms_load_acquire((uint64_t *)(start + off));
        if (ms_word_state(w) != MS_STATE_COMMITTED) break;
        uint32_t size = ms_word_size(w);
        if (ms_word_magic(w) != MS_RECORD_MAGIC || !ms_size_is_sane(size, ring->capacity - off)) {
            *corrupt = 1;
            break;
        }
        off += size;
    }
    *span = start;
    return off;
}

void ms_ring_consume(ms_ring_t *ring, size_t n) {
    uint64_t tail = ms_load_relaxed(&ring->header->tail);
    memset(ring->data + (tail & (ring->capacity - 1)), 0, n);
    ms_store_release(&ring->header->tail, tail + n);
}

uint64_t ms_ring_backlog(const ms_ring_t *ring) {
    uint64_t head = ms_load_acquire(&ring->header->head);
    uint64_t tail = ms_load_acquire(&ring->header->tail);
    uint64_t limit = tail + ring->capacity;
    return (head < limit ? head : limit) - tail;
}

void ms_ring_discard(ms_ring_t *ring) {
    uint64_t backlog;
    while ((backlog = ms_ring_backlog(ring)) > 0) ms_ring_consume(ring, (size_t)backlog);
}

uint64_t ms_ring_skip_hole(ms_ring_t *ring) {
    uint64_t backlog = ms_ring_backlog(ring);
    if (backlog == 0) return 0;
    const uint8_t *start = ring->data + (ms_load_relaxed(&ring->header->tail) & (ring->capacity - 1));
    uint64_t w = ms_load_acquire((const uint64_t *)start);
    uint64_t skip = 8;
    if (ms_word_state(w) == MS_STATE_PENDING && ms_word_magic(w) == MS_RECORD_MAGIC &&
        ms_size_is_sane(ms_word_size(w), backlog)) {
        skip = ms_word_size(w);
    } else {
        /* Nothing says where the next record starts: look for the next word
         * that reads as a committed header. Payload words rarely do (the top
         * byte of addresses, sizes and times is 0), and the next peek checks
         * the records that follow. */
        while (skip < backlog) {
            uint64_t c = ms_load_acquire((const uint64_t *)(start + skip));
            if (ms_word_state(c) == MS_STATE_COMMITTED && ms_word_magic(c) == MS_RECORD_MAGIC &&
                ms_size_is_sane(ms_word_size(c), backlog - skip))
                break;
            skip += 8;
        }
    }
    ms_ring_consume(ring, skip);
    return skip;
}
