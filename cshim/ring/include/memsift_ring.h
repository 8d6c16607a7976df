/*
 * The shared-memory ring: many producers (threads of the traced process),
 * one consumer (the collector, or the shim draining itself).
 *
 * Used by the shim and, through the CMemsiftRing module, by the Swift
 * collector, so both sides run the same code. Runs inside malloc: must not
 * allocate, take locks or call stdio.
 */
#ifndef MEMSIFT_RING_H
#define MEMSIFT_RING_H

#include <stddef.h>
#include <stdint.h>

#include "memsift/ring_layout.h"
#include "memsift/trace_format.h"

typedef struct ms_ring_s ms_ring_t;

/* Spin-wait hint for the busy loops of the ring and the shim. */
static inline void ms_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Called by a producer while the ring has no room; `attempt` counts the calls
 * of this wait. Returns when the producer should look again. */
typedef void (*ms_ring_wait_fn)(ms_ring_t *ring, void *ctx, uint32_t attempt);

/* The default wait of a producer on a full ring: spin, then yield, then
 * sleep 50 us per call. Wait functions can build on it. */
void ms_ring_backoff(uint32_t attempt);

/* Process-local view of a ring. */
struct ms_ring_s {
    ms_ring_header_t *header;
    uint8_t *data; /* capacity bytes, mapped twice back to back */
    uint64_t capacity;
    size_t map_size;
    ms_ring_wait_fn wait; /* NULL: spin, yield, then sleep */
    void *wait_ctx;
};

/* Sizes a ring file in `fd` (opened read-write, empty), maps it and writes a
 * valid header. `capacity` is rounded up to a power of two >= the page size.
 * Returns 0, or -errno; on failure nothing stays mapped. */
int ms_ring_create(ms_ring_t *ring, int fd, uint64_t capacity, int32_t pid, uint64_t start_mono_ns);

/* Maps an existing ring file for consuming. Returns 0, -errno, or -EPROTO
 * when the header is not a ring of this version. */
int ms_ring_attach(ms_ring_t *ring, int fd);

void ms_ring_unmap(ms_ring_t *ring);

/* Producer: takes the next `size` bytes (a multiple of 8, at most the
 * capacity) of the order,
 * waiting while the ring is full (backpressure, never a drop), and marks them
 * pending. The caller fills the payload after the 8-byte header and calls
 * ms_ring_commit. */
uint8_t *ms_ring_reserve(ms_ring_t *ring, uint32_t size, uint8_t type, uint8_t aux);

/* Producer: publishes a reserved record (release: its payload is visible
 * before the consumer can see it committed). */
void ms_ring_commit(uint8_t *record);

/* Consumer: the committed records that follow the tail without a gap, as one
 * contiguous span. Returns its length in bytes (0 when the next record is not
 * committed yet). Sets *corrupt when the record at the end of the span has an
 * impossible size. */
size_t ms_ring_peek(ms_ring_t *ring, const uint8_t **span, int *corrupt);

/* Consumer: zeroes the first `n` bytes after the tail (so the next lap
 * starts from empty headers) and releases them to the producers. */
void ms_ring_consume(ms_ring_t *ring, size_t n);

/* Consumer, once the producer process is gone: skips a record that will
 * never be committed (a thread died while writing it), resynchronizing on the
 * next committed record. Returns the bytes skipped; 0 when nothing is left. */
uint64_t ms_ring_skip_hole(ms_ring_t *ring);

/* Bytes reserved but not yet consumed. */
uint64_t ms_ring_backlog(const ms_ring_t *ring);

/* Consumes everything reserved so far, read or not, holes included: for a
 * ring nobody will read again (its consumer died), so that producers never
 * wait on it. The caller must be the only consumer. */
void ms_ring_discard(ms_ring_t *ring);

#endif
