/*
 * memsift trace format — the single source of truth.
 *
 * Shared by the C shim (writer), the collector and the Swift reader (through
 * the CMemsiftFormat module). Depends on nothing but <stdint.h>.
 *
 * A trace file is:
 *
 *     ms_file_header_t            fixed, little-endian
 *     records...                  raw, or one zstd stream (MS_FILE_ZSTD)
 *
 * Every record starts with an 8-byte ms_record_header_t and is padded to a
 * multiple of 8 bytes. `size` covers the header, the payload and the padding,
 * so a reader skips a record type it does not know. The first record of every
 * trace is MS_REC_PROCESS.
 *
 * Header word, as one little-endian uint64 (the ring commits it atomically):
 *
 *     bits  0..31  size   total record bytes, multiple of 8, >= 8
 *     bits 32..39  type   ms_record_type
 *     bits 40..47  state  MS_STATE_COMMITTED in files; in the ring also 0/PENDING
 *     bits 48..55  aux    the allocator function for ALLOC/REALLOC records
 *     bits 56..63  magic  MS_RECORD_MAGIC, lets salvage resynchronize after a hole
 *
 * Times are nanoseconds of CLOCK_MONOTONIC. Event times come from
 * CLOCK_MONOTONIC_COARSE (the same clock at the kernel tick's resolution, a
 * few ms): the order of events is the order of the records, not of their times.
 *
 * Version policy: bump MEMSIFT_FORMAT_VERSION on any incompatible change;
 * readers accept every version <= their own; new record types are compatible
 * because unknown types are skipped by size.
 */
#ifndef MEMSIFT_TRACE_FORMAT_H
#define MEMSIFT_TRACE_FORMAT_H

#include <stdint.h>

/* "MEMSIFT\0" read as a little-endian uint64. */
#define MEMSIFT_TRACE_MAGIC 0x00544649534D454DULL
#define MEMSIFT_FORMAT_VERSION 4

/* ms_file_header_t.flags */
#define MS_FILE_ZSTD 0x1u /* everything after the header is one zstd stream */
#define MS_FILE_LIVE 0x4u /* live mode: the collector summarized the events into SITE records */

/* ms_file_header_t.writer */
#define MS_WRITER_SHIM 1u      /* the shim drained its own ring (plain LD_PRELOAD) */
#define MS_WRITER_COLLECTOR 2u /* `memsift run` drained the ring */

typedef struct ms_file_header_s {
    uint64_t magic;        /* MEMSIFT_TRACE_MAGIC */
    uint32_t version;      /* MEMSIFT_FORMAT_VERSION of the writer */
    uint32_t header_size;  /* bytes of this header; records start here */
    uint32_t flags;        /* MS_FILE_* */
    uint32_t writer;       /* MS_WRITER_* */
    int32_t pid;
    int32_t ppid;
    uint64_t start_wall_ns; /* CLOCK_REALTIME at shim start */
    uint64_t start_mono_ns; /* CLOCK_MONOTONIC at shim start; event times use this clock */
    uint32_t page_size;
    uint32_t reserved;
} ms_file_header_t;

#define MS_RECORD_MAGIC 0xA5u

enum ms_record_state {
    MS_STATE_EMPTY = 0,     /* ring only: not reserved yet, or reserved and not started */
    MS_STATE_PENDING = 1,   /* ring only: reserved, payload being written */
    MS_STATE_COMMITTED = 2, /* complete */
};

enum ms_record_type {
    MS_REC_PROCESS = 1,       /* ms_process_record_t + exe + argv */
    MS_REC_MODULE_LOAD = 2,   /* ms_module_record_t + segments + build-id + path */
    MS_REC_MODULE_UNLOAD = 3, /* ms_module_unload_record_t */
    MS_REC_THREAD = 4,        /* ms_thread_record_t */
    MS_REC_STACK = 5,         /* ms_stack_record_t + frames */
    MS_REC_ALLOC = 6,         /* ms_alloc_record_t; aux = ms_alloc_function */
    MS_REC_FREE = 7,          /* ms_free_record_t */
    MS_REC_REALLOC = 8,       /* ms_realloc_record_t, before the real call; aux = ms_alloc_function */
    MS_REC_RSS = 9,           /* ms_rss_record_t */
    MS_REC_EXIT = 10,         /* ms_exit_record_t: what the process itself saw */
    MS_REC_END = 11,          /* ms_end_record_t: the writer's last word */
    MS_REC_REALLOC_DONE = 12, /* ms_realloc_done_record_t, after the real call */
    MS_REC_SNAPSHOT = 13,     /* ms_snapshot_record_t + label */
    MS_REC_CODE = 14,         /* ms_code_record_t + name + file + line table (version 2) */
    MS_REC_SAMPLING = 15,     /* ms_sampling_record_t (version 3): events are a sample */
    MS_REC_SITE = 16,         /* ms_site_record_t (version 3): a site's state, in place of its events */
    MS_REC_EVENTS = 17,       /* ms_events_record_t + ops (version 4): the collector's compact events */
};

/* Which interposed function made an ALLOC/REALLOC record (header aux byte). */
enum ms_alloc_function {
    MS_FN_MALLOC = 1,
    MS_FN_CALLOC = 2,
    MS_FN_REALLOC = 3,
    MS_FN_REALLOCARRAY = 4,
    MS_FN_POSIX_MEMALIGN = 5,
    MS_FN_ALIGNED_ALLOC = 6,
    MS_FN_MEMALIGN = 7,
    MS_FN_VALLOC = 8,
    MS_FN_PVALLOC = 9,
};

typedef struct ms_record_header_s {
    uint32_t size;
    uint8_t type;
    uint8_t state;
    uint8_t aux;
    uint8_t magic;
} ms_record_header_t;

/* MS_REC_PROCESS, always first. Followed by exe_len bytes of the executable
 * path and argv_len bytes of NUL-separated arguments (as /proc/PID/cmdline). */
typedef struct ms_process_record_s {
    ms_record_header_t h;
    int32_t pid;
    int32_t ppid;
    uint64_t start_wall_ns;
    uint64_t start_mono_ns;
    uint32_t page_size;
    uint32_t max_depth; /* frames kept per stack */
    uint32_t exe_len;
    uint32_t argv_len;
} ms_process_record_t;

/* One PT_LOAD segment of a module: [base + vaddr, base + vaddr + memsz). */
typedef struct ms_segment_s {
    uint64_t vaddr;
    uint64_t memsz;
    uint32_t flags; /* PF_X, PF_W, PF_R */
    uint32_t reserved;
} ms_segment_t;

/* MS_REC_MODULE_LOAD: a loaded object (the executable, a DSO, the vDSO).
 * Followed by segment_count ms_segment_t, build_id_len bytes, path_len bytes. */
typedef struct ms_module_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint64_t base; /* dlpi_addr: load bias added to every vaddr */
    uint32_t segment_count;
    uint32_t build_id_len;
    uint32_t path_len;
    uint32_t reserved;
} ms_module_record_t;

/* MS_REC_MODULE_UNLOAD: the module loaded at `base` was dlclosed. */
typedef struct ms_module_unload_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint64_t base;
} ms_module_unload_record_t;

/* MS_REC_THREAD: a thread's first event, or a new name. */
typedef struct ms_thread_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint32_t tid;
    uint32_t reserved;
    char name[16]; /* NUL-terminated, as in /proc/PID/task/TID/comm */
} ms_thread_record_t;

/* MS_REC_STACK: stack `id`, innermost frame first. Frames are return
 * addresses (the caller of the allocator first), followed (version 2) by the
 * Python frames the thread was executing, innermost first. A stack may be
 * written after the first event that uses it (another thread interned it
 * first), so readers resolve ids at the end, not in order.
 *
 * Version 1 had one uint32 depth; its high half (py_depth) was always 0, so
 * a version 1 record reads the same. */
typedef struct ms_stack_record_s {
    ms_record_header_t h;
    uint32_t id;
    uint16_t depth;    /* native frames */
    uint16_t py_depth; /* Python frames after them */
    /* uint64_t frames[depth]; ms_py_frame_t py_frames[py_depth]; */
} ms_stack_record_t;

/* One Python frame: the code object it runs (an id of a CODE record) and
 * the instruction it is executing. */
typedef struct ms_py_frame_s {
    uint32_t code;  /* code id, | MS_PY_FRAME_ENTRY | MS_PY_FRAME_INCOMPLETE */
    int32_t instr;  /* index (2-byte code units) of the executing instruction
                       in co_code; -1: the frame has not started (its line is
                       co_firstlineno) */
} ms_py_frame_t;

/* Set on the outermost frame of each call into the interpreter's evaluation
 * loop (3.11 `is_entry`; 3.12+ the frame under a C-stack entry frame): the
 * frames up to and including it ran in one native _PyEval_EvalFrameDefault
 * frame, which is where the analyzer splices them in. */
#define MS_PY_FRAME_ENTRY 0x80000000u
/* Set on a frame that has not reached its first traceable instruction (it
 * is making its cells, say): CPython leaves such frames out of tracebacks
 * and tracemalloc out of its stacks, and so do the reports; the frame stays
 * in the record because it still marks where an evaluation call ran. */
#define MS_PY_FRAME_INCOMPLETE 0x40000000u
#define MS_PY_CODE_MASK 0x3FFFFFFFu

/* MS_REC_CODE: a Python code object, written once per process before (or,
 * from another thread, just after) the first stack that uses it. Followed by
 * name_len bytes of co_qualname, file_len bytes of co_filename, each in
 * CPython's compact string kind (1: Latin-1, of which ASCII; 2: UCS-2;
 * 4: UCS-4; little-endian), and linetable_len bytes of co_linetable
 * (3.11+ location table). Ids are per process; a code object freed and its
 * address reused gets a new id. */
typedef struct ms_code_record_s {
    ms_record_header_t h;
    uint64_t address; /* the code object's address (for debugging) */
    uint32_t id;
    int32_t first_line; /* co_firstlineno */
    uint32_t name_len;
    uint32_t file_len;
    uint32_t linetable_len;
    uint8_t name_kind;
    uint8_t file_kind;
    uint8_t flags; /* MS_CODE_* */
    uint8_t reserved;
} ms_code_record_t;

#define MS_CODE_TRUNCATED 0x1u /* a string or the line table was cut to its cap */
/* Code id of a code object the shim could not record (its table was full). */
#define MS_CODE_UNKNOWN 0u

/* Stack id for events whose stack could not be captured or interned. */
#define MS_STACK_UNKNOWN 0u

/* MS_REC_ALLOC: `ptr` of `size` requested bytes returned to the program.
 * Failed allocations (NULL) are not recorded. */
typedef struct ms_alloc_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint64_t ptr;
    uint64_t size;
    uint32_t stack;
    uint32_t tid;
} ms_alloc_record_t;

/* MS_REC_FREE: written before the real free runs (causal order). */
typedef struct ms_free_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint64_t ptr;
} ms_free_record_t;

/* A realloc is two records, each in its causal place:
 *
 * MS_REC_REALLOC takes its place before the real call: from here on the old
 * block is being released (no other thread can be handed its address until
 * the real call has freed it, which is after this record).
 *
 * MS_REC_REALLOC_DONE takes its place after the real call returned: the new
 * block exists from here on (an address another thread freed while the call
 * ran has its FREE before this record). A thread has at most one realloc in
 * flight, so DONE pairs with the latest REALLOC of the same tid.
 *
 * Outcomes (glibc), read from the pair:
 *   old == 0                   an allocation of `size` (new_ptr != 0)
 *   new_ptr != 0               free(old) + allocation(new_ptr, size)
 *   new_ptr == 0, size == 0    realloc(p, 0): old freed
 *   new_ptr == 0, size > 0     failed: old untouched, nothing allocated
 * A REALLOC without DONE (the thread died inside the call) leaves old alive. */
typedef struct ms_realloc_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint64_t old_ptr;
    uint64_t size;
    uint32_t stack;
    uint32_t tid;
} ms_realloc_record_t;

typedef struct ms_realloc_done_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint64_t old_ptr;
    uint64_t new_ptr;
    uint32_t tid;
    uint32_t reserved;
} ms_realloc_done_record_t;

/* MS_REC_RSS: resident set size sampled from /proc/self/statm. */
typedef struct ms_rss_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint64_t rss_bytes;
} ms_rss_record_t;

enum ms_exit_kind {
    MS_EXIT_UNKNOWN = 0,   /* the process ended and nobody saw how */
    MS_EXIT_RETURN = 1,    /* main returned `status` */
    MS_EXIT_EXIT = 2,      /* exit(status) */
    MS_EXIT__EXIT = 3,     /* _exit(status) or _Exit(status) */
    MS_EXIT_ABORT = 4,     /* abort() */
    MS_EXIT_SIGNAL = 5,    /* killed by signal `status` (collector: waitpid) */
    MS_EXIT_EXEC = 6,      /* the image was replaced by exec; the PID goes on */
    MS_EXIT_DESTRUCTOR = 7,/* exit path reached the shim's destructor, status unknown */
    MS_EXIT_STATUS = 8,    /* exited with `status` (collector: waitpid) */
};

/* MS_REC_EXIT: written by the shim when the program ends itself. */
typedef struct ms_exit_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint32_t kind; /* ms_exit_kind */
    int32_t status;
} ms_exit_record_t;

/* MS_REC_END: the last record of a complete trace. */
typedef struct ms_end_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint32_t kind; /* ms_exit_kind: how the process (image) ended */
    int32_t status;
    uint64_t backpressure_ns;    /* total time producers waited on a full ring */
    uint64_t backpressure_waits; /* number of such waits */
    uint64_t lost_bytes;         /* ring bytes salvage could not read (a producer died mid-record) */
    uint64_t stack_table_full;   /* events recorded with MS_STACK_UNKNOWN because the table was full */
} ms_end_record_t;

/* MS_REC_SAMPLING, right after PROCESS when the trace is a sample: each
 * allocation of s bytes was recorded with probability 1 - exp(-s/rate),
 * and a free only for a recorded block (readers scale to estimates). A
 * failed realloc of a sampled block is recorded as the block's release and
 * a new allocation of it. */
typedef struct ms_sampling_record_s {
    ms_record_header_t h;
    uint64_t rate_bytes; /* mean bytes between samples */
} ms_sampling_record_t;

/* MS_REC_SITE (live mode, `memsift run --live`): the collector replays the
 * events itself and writes, at each snapshot, the state of every site that
 * changed since the last one, instead of the events: what the site holds
 * now and what it allocated so far. Sites that shrank come first, so the
 * heap never reads higher between two snapshots than at them. */
typedef struct ms_site_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint32_t stack;
    uint32_t reserved;
    uint64_t live_bytes;
    uint64_t live_count;
    uint64_t allocations;     /* since the start */
    uint64_t bytes_allocated; /* since the start */
} ms_site_record_t;

/* MS_REC_EVENTS (version 4, written by `memsift run`'s collector in place
 * of ALLOC/FREE/REALLOC/REALLOC_DONE): the collector matches every free to
 * its allocation itself, so the file needs no addresses. It numbers each
 * distinct (requested size, stack, function) an *info*, 0, 1, 2... in order
 * of definition, and writes per event the info of the block concerned.
 * Addresses and per-event times are what made the raw records incompressible;
 * a repetitive program gives a repetitive info stream, which zstd shrinks
 * well (heaptrack's interpreter does the same with its allocation indices).
 *
 * Followed by `len` bytes of ops. Each op starts with an unsigned LEB128
 * value v: v & 3 is the op, v >> 2 its operand:
 *   0 ALLOC i       a call allocated a block of info i (counts the call)
 *   1 FREE i        free() released a block of info i
 *   2 FREE_TEMP i   the same, and it was the last block allocated (temporary)
 *   3 EXT e         extended op e, with its own LEB128 operands:
 *       0 TIME d          the event clock moved d ns forward (starts at start_mono_ns)
 *       1 INFO size stack function
 *                         defines the next info (function: ms_alloc_function)
 *       2 ALLOC_NOCALL i  a realloc's new block (its call was counted by CALL)
 *       3 DETACH i        a realloc began: its old block of info i is no longer live
 *       4 RESTORE i       a realloc failed (or never returned): the block is live again
 *       5 RELEASE i       a realloc released its detached old block
 *       6 RELEASE_TEMP i  the same, and it was the last block allocated
 *       7 STALE i         an address came back live without a free seen: the
 *                         block it held is dropped (reused_without_free)
 *       8 FREE_UNMATCHED  free() of an address never seen allocated
 *       9 RELEASE_UNMATCHED  a realloc's old address never seen allocated
 *      10 CALL function   a realloc call (its allocation, if any, is ALLOC_NOCALL)
 * The record order is the causal order of the shim's records, so snapshots
 * and other records keep their place among the events. */
typedef struct ms_events_record_s {
    ms_record_header_t h;
    uint32_t len; /* bytes of ops that follow (then padding to 8) */
    uint32_t reserved;
} ms_events_record_t;

enum ms_event_op {
    MS_OP_ALLOC = 0,
    MS_OP_FREE = 1,
    MS_OP_FREE_TEMP = 2,
    MS_OP_EXT = 3,
};

enum ms_event_ext_op {
    MS_EXT_TIME = 0,
    MS_EXT_INFO = 1,
    MS_EXT_ALLOC_NOCALL = 2,
    MS_EXT_DETACH = 3,
    MS_EXT_RESTORE = 4,
    MS_EXT_RELEASE = 5,
    MS_EXT_RELEASE_TEMP = 6,
    MS_EXT_STALE = 7,
    MS_EXT_FREE_UNMATCHED = 8,
    MS_EXT_RELEASE_UNMATCHED = 9,
    MS_EXT_CALL = 10,
};

/* Who placed a snapshot label (ms_snapshot_record_t.source). */
enum ms_snapshot_source {
    MS_SNAPSHOT_PROGRAM = 1,  /* the program called memsift_snapshot() */
    MS_SNAPSHOT_EXTERNAL = 2, /* `memsift snapshot PID LABEL` wrote it into the ring */
    MS_SNAPSHOT_COLLECTOR = 3,/* live mode: the collector's own (periodic, new peak) */
};

/* MS_REC_SNAPSHOT: a named moment. Its place in the record order is the
 * moment: the live heap at a label is every event before it. Followed by
 * label_len bytes of label (not NUL-terminated). */
typedef struct ms_snapshot_record_s {
    ms_record_header_t h;
    uint64_t time_ns;
    uint32_t label_len;
    uint32_t source; /* ms_snapshot_source */
} ms_snapshot_record_t;

/* Longest label kept; longer ones are cut. */
#define MS_SNAPSHOT_LABEL_MAX 256u

#define MS_ALIGN8(n) (((n) + 7u) & ~(uint32_t)7u)

_Static_assert(sizeof(ms_file_header_t) == 56, "file header layout");
_Static_assert(sizeof(ms_record_header_t) == 8, "record header is one word");
_Static_assert(sizeof(ms_process_record_t) == 48, "process record layout");
_Static_assert(sizeof(ms_segment_t) == 24, "segment layout");
_Static_assert(sizeof(ms_module_record_t) == 40, "module record layout");
_Static_assert(sizeof(ms_module_unload_record_t) == 24, "unload record layout");
_Static_assert(sizeof(ms_thread_record_t) == 40, "thread record layout");
_Static_assert(sizeof(ms_stack_record_t) == 16, "stack record layout");
_Static_assert(sizeof(ms_alloc_record_t) == 40, "alloc record layout");
_Static_assert(sizeof(ms_free_record_t) == 24, "free record layout");
_Static_assert(sizeof(ms_realloc_record_t) == 40, "realloc record layout");
_Static_assert(sizeof(ms_realloc_done_record_t) == 40, "realloc done record layout");
_Static_assert(sizeof(ms_rss_record_t) == 24, "rss record layout");
_Static_assert(sizeof(ms_exit_record_t) == 24, "exit record layout");
_Static_assert(sizeof(ms_end_record_t) == 56, "end record layout");
_Static_assert(sizeof(ms_snapshot_record_t) == 24, "snapshot record layout");
_Static_assert(sizeof(ms_py_frame_t) == 8, "python frame layout");
_Static_assert(sizeof(ms_code_record_t) == 40, "code record layout");
_Static_assert(sizeof(ms_sampling_record_t) == 16, "sampling record layout");
_Static_assert(sizeof(ms_site_record_t) == 56, "site record layout");
_Static_assert(sizeof(ms_events_record_t) == 16, "events record layout");

#endif
