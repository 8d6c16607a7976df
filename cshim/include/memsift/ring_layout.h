/*
 * Layout of the shared-memory ring between the shim (producers, in the
 * target) and its consumer (the collector of `memsift run`, or the shim
 * itself under plain LD_PRELOAD).
 *
 *     page 0 ..            ms_ring_header_t, padded to data_offset (page-aligned)
 *     data_offset ..       capacity bytes of records (trace_format.h records)
 *
 * head and tail are byte counters that only grow; a record at counter c lives
 * at data[c % capacity]. Both sides map the data twice, back to back, so a
 * record that wraps is still contiguous in memory.
 *
 * The counters are plain integers accessed with __atomic builtins (never
 * _Atomic), so Swift can import this header.
 */
#ifndef MEMSIFT_RING_LAYOUT_H
#define MEMSIFT_RING_LAYOUT_H

#include <stdint.h>

/* "MSRING\0\0" read as a little-endian uint64. */
#define MEMSIFT_RING_MAGIC 0x0000474E4952534DULL
#define MEMSIFT_RING_VERSION 1

/* ms_ring_header_t.state */
#define MS_RING_ACTIVE 1u   /* the producer process (image) is running */
#define MS_RING_FINISHED 2u /* the shim wrote its last record (exit path) */

/* Suffix of published ring files in a run directory; a ring is created under
 * a temporary name and renamed once its header is valid. */
#define MEMSIFT_RING_SUFFIX ".ring"

typedef struct ms_ring_header_s {
    uint64_t magic;       /* MEMSIFT_RING_MAGIC */
    uint32_t version;     /* MEMSIFT_RING_VERSION */
    uint32_t data_offset; /* page-aligned start of the data */
    uint64_t capacity;    /* data bytes, a multiple of the page size */
    int32_t pid;          /* producer process */
    uint32_t state;       /* MS_RING_*; written by the producer */
    uint64_t start_mono_ns;
    uint8_t pad0[24];

    uint64_t head; /* producers: bytes reserved (fetch_add); own cache line */
    uint8_t pad1[56];
    uint64_t tail; /* consumer: bytes consumed and zeroed; own cache line */
    uint8_t pad2[56];
    uint64_t backpressure_ns;    /* producers: time spent waiting on a full ring */
    uint64_t backpressure_waits; /* producers: how many waits */
    uint64_t stack_table_full;   /* producers: events whose stack could not be interned */
    uint8_t pad3[40];
} ms_ring_header_t;

_Static_assert(sizeof(ms_ring_header_t) == 256, "ring header layout");
_Static_assert(__builtin_offsetof(ms_ring_header_t, head) == 64, "head on its own line");
_Static_assert(__builtin_offsetof(ms_ring_header_t, tail) == 128, "tail on its own line");

#endif
