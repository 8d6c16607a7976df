/*
 * Declarations shared by the shim's files. Everything here is hidden
 * (-fvisibility=hidden); only MEMSIFT_EXPORT symbols leave the library.
 *
 * All of the shim runs inside other people's malloc: it must not allocate
 * through the hooked functions, take locks that fork or signals can strand,
 * or call stdio.
 */
#ifndef MEMSIFT_INTERNAL_H
#define MEMSIFT_INTERNAL_H

#define _GNU_SOURCE
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "memsift/trace_format.h"
#include "memsift_ring.h"

#define MEMSIFT_EXPORT __attribute__((visibility("default")))
#define MS_LIKELY(x) __builtin_expect(!!(x), 1)
#define MS_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define ms_load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define ms_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ms_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define ms_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ms_fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define ms_cas_acq_rel(p, expected, desired) \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

#define MS_MAX_DEPTH 512u

/* Bits of a heap address, hashed: blocks are 16-byte aligned, so the low
 * bits go, then Fibonacci hashing. */
static inline uint64_t ms_address_hash(uintptr_t p, unsigned bits) {
    return ((uint64_t)p >> 4) * 0x9E3779B97F4A7C15ull >> (64 - bits);
}

/* Zeroed memory for a table sized once for the worst case: untouched
 * pages are never backed. NULL when the mapping fails. */
void *ms_map_table(size_t bytes);

/* Event times: CLOCK_MONOTONIC_COARSE, a plain read of the vDSO page
 * (about 5 ns here, against 22 ns for CLOCK_MONOTONIC) at the kernel tick's
 * resolution (a few ms). The order of events is the order of the ring, not
 * of their times; times only place events on the timeline. */
static inline uint64_t ms_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* pthread_cancel: a deferred cancellation acts at the next cancellation
 * point the thread reaches, and the shim's waits on a full ring (nanosleep)
 * and its drains (open, write, close) are ones. A thread cancelled there
 * would die holding a ring reservation it never commits, where the consumer
 * stops for good (every producer then waits on a full ring), or holding
 * the drain, which nobody takes again: the program hangs. So cancellation
 * is off while the shim waits or drains; a request stays pending and acts
 * at the program's own next cancellation point. Slow paths only: it costs
 * an atomic on the thread's descriptor. */
static inline int ms_cancel_off(void) {
    int old = PTHREAD_CANCEL_ENABLE;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}

static inline void ms_cancel_restore(int old) {
    int ignored;
    pthread_setcancelstate(old, &ignored);
}

/* ---- config.c: MEMSIFT_* environment, read without allocating ---- */
typedef struct ms_config_s {
    uint32_t depth;           /* MEMSIFT_DEPTH, frames kept per stack */
    uint64_t ring_bytes;      /* MEMSIFT_RING_MB */
    uint64_t rss_interval_ns; /* MEMSIFT_RSS_INTERVAL_MS; 0 disables sampling */
    const char *run_dir;      /* MEMSIFT_RUN_DIR: a collector drains our ring */
    const char *output;       /* MEMSIFT_OUTPUT: trace path without a collector */
    int32_t collector_pid;    /* MEMSIFT_COLLECTOR_PID: who drains a MEMSIFT_RUN_DIR ring */
    int python_frames;        /* MEMSIFT_PYTHON_FRAMES (default 1): read CPython's frames */
    int python_native_all;    /* MEMSIFT_PYTHON_NATIVE=all: native frames above Python code too */
    int python_allocators;    /* MEMSIFT_PYTHON_ALLOCATORS (default 1): hook CPython's object allocators */
    int pythonmalloc_default; /* PYTHONMALLOC=malloc is memsift run's fallback (MEMSIFT_PYTHONMALLOC=fallback) */
    uint64_t sample_rate;     /* MEMSIFT_SAMPLE_RATE: mean bytes between samples; 0 records every event */
    uint64_t sample_seed;     /* MEMSIFT_SAMPLE_SEED: reproducible sampling (tests); 0 seeds from the clock */
} ms_config_t;
extern ms_config_t g_config;
void ms_config_read(void);

/* ---- text.c: building strings without stdio or allocation ---- */
/* Appends `s` (or the decimal `v`) at buf[at], keeping buf NUL-terminated
 * within `cap`; returns the new length. */
size_t ms_append(char *buf, size_t at, size_t cap, const char *s);
size_t ms_append_u64(char *buf, size_t at, size_t cap, uint64_t v);
/* One line on stderr ("memsift: " a b c d), with one write(2); NULL parts are skipped. */
void ms_warn(const char *a, const char *b, const char *c, const char *d);

/* ---- bootstrap.c: the real functions, and an arena for calls before them ---- */
typedef struct ms_real_s {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
} ms_real_t;
extern ms_real_t g_real;
extern int g_real_ready;
/* Resolves g_real once. Returns 1 when the real functions can be called,
 * 0 when the caller must use the arena (we are inside the resolution). */
int ms_resolve(void);
void *ms_arena_alloc(size_t size, size_t alignment);
/* Inline: every free and realloc asks, most of them in the sampled fast path. */
#define MS_ARENA_SIZE (256u * 1024u)
extern __attribute__((visibility("hidden"))) unsigned char g_arena[MS_ARENA_SIZE];
static inline int ms_arena_owns(const void *p) {
    return (uintptr_t)p - (uintptr_t)g_arena < MS_ARENA_SIZE;
}
size_t ms_arena_size(const void *p);

/* ---- process.c ---- */
extern int g_tracing;        /* events are being recorded */
/* Starts tracing if it has not started and libc is ready; returns g_tracing. */
int ms_start_lazily(void);
/* Non-zero while this process owns its trace: it lives on a MADV_WIPEONFORK
 * page, so it reads 0 in a child made by any fork (pthread_atfork handlers
 * of other libraries that allocate before ours runs, _Fork, clone). */
extern volatile int *g_trace_owner;
/* A hook found g_trace_owner cleared: opens the child's trace. Returns g_tracing. */
int ms_adopt_after_fork(void);
extern uint32_t g_generation; /* bumped in a fork child: stacks and threads are re-announced */
extern int32_t g_pid;      /* getpid() */
extern int32_t g_host_pid; /* the PID outside any PID namespace: what the collector sees */
extern uint64_t g_start_mono_ns;
extern uint64_t g_start_wall_ns;
/* Writes the PROCESS record that opens every trace. */
void ms_emit_process(void);
/* Range of the shim's own code, for skipping its frames. */
extern uintptr_t g_self_begin, g_self_end;

/* ---- sink.c: where the ring goes ---- */
extern ms_ring_t g_ring;
/* Creates this process's ring: in MEMSIFT_RUN_DIR for a collector, or in
 * memory with a trace file the shim writes itself. Returns 0 or -1 (warned). */
int ms_sink_open(void);
/* In a fork child: leaves the parent's ring alone and opens our own. */
int ms_sink_reopen_in_child(void);
/* Without a collector: moves every committed record to the trace file. */
void ms_sink_flush(void);
/* Without a collector: everything committed so far is in the trace file when
 * this returns (waits for a drain another thread is running). */
void ms_sink_sync(void);
/* The process is ending: without a collector, drains and writes END. */
void ms_sink_finish(uint32_t kind, int32_t status);

/* ---- events.c: record writers ---- */
void ms_record_alloc(uint8_t fn, const void *ptr, uint64_t size);
void ms_record_free(const void *ptr);
/* realloc takes its place before the real call (releasing the old block)
 * and a second one after it (the new block): see trace_format.h. */
void ms_record_realloc_begin(uint8_t fn, const void *old, uint64_t size);
void ms_record_realloc_done(const void *old, const void *new_ptr);
void ms_record_exit(uint32_t kind, int32_t status);
void ms_record_thread_name(const char *name);
void ms_record_rss(uint64_t now);
/* The tid of the calling thread, announcing it on first use. */
uint32_t ms_thread_tid(void);

/* ---- sample.c: sampling by bytes ---- */
int ms_sample_setup(void);
/* After ms_sample_skip said no: whether the allocation is sampled (else
 * only the periodic work is due). */
int ms_sample_due(void);
/* The set of sampled blocks: 0 when full (the sample is dropped) / absent. */
int ms_sampled_insert(const void *ptr, uint64_t size);
int ms_sampled_remove(const void *ptr, uint64_t *size);

/* ---- unwind.c ---- */
/* The calling thread's return addresses, innermost first, at most `max`:
 * what unw_backtrace(out, max) gives, from a per-address rule cache; cut
 * after the first address in [stop_begin, stop_end) (an empty range: no
 * cut), where the walk stops. */
int ms_backtrace_until(void **out, int max, uintptr_t stop_begin, uintptr_t stop_end);

/* ---- libunwind_pipe.c: libunwind's pipe exists only while it is used ---- */
/* Around every call into libunwind. */
void ms_libunwind_enter(void);
void ms_libunwind_leave(void);
/* Initializes libunwind (the caching policy). */
int ms_libunwind_setup(void);
void ms_libunwind_after_fork(void);

/* ---- stack.c ---- */
int ms_stack_setup(void);
/* Captures the caller's stack (shim frames skipped) and returns its id,
 * writing a STACK record the first time this process sees it. */
uint32_t ms_stack_capture(void);
/* In a fork child: notes whether a claim was cut short by the fork. */
void ms_stack_after_fork(void);

/* ---- python.c: CPython frames (3.11-3.13) ---- */
/* A frame as read at the allocation: resolved to a code id only when the
 * stack it is in is new. */
typedef struct ms_py_raw_frame_s {
    const char *code;
    uint64_t identity; /* what tells this code object from one reusing its address */
    int32_t instr;
    uint32_t flags;    /* MS_PY_FRAME_ENTRY, MS_PY_FRAME_INCOMPLETE */
} ms_py_raw_frame_t;
#define MS_PY_MAX_DEPTH 256u
/* Looks for a CPython we can read (at start, and after each dlopen). */
void ms_python_detect(void);
/* The calling thread's Python frames, innermost first; 0 when none. */
uint32_t ms_python_walk(ms_py_raw_frame_t *out, uint32_t max);
/* The code id of a frame's code object, writing its CODE record on first use. */
uint32_t ms_python_code_id(const ms_py_raw_frame_t *frame);
void ms_python_after_fork(void);
/* Set once a CPython is being read: frees then tell python.c about code objects dying. */
extern int g_python_active;
/* _PyEval_EvalFrameDefault's code, [begin, end); 0 when not cutting stacks there. */
extern uintptr_t g_python_eval_begin, g_python_eval_end;
void ms_python_freed(const void *p);
/* dlsym(RTLD_DEFAULT) that leaves no error string behind; NULL when absent. */
void *ms_lookup(const char *name);

/* ---- pymem.c: hooks on CPython's PyMem_/PyObject_ allocators (3.11-3.13) ---- */
/* Looks for a CPython whose allocators we hook (at start, and after each
 * dlopen). `at_start`: before main, when the environment may be changed. */
void ms_pymem_detect(int at_start);
/* Non-zero while the hooks wait for a malloc call made with the GIL held. */
extern int g_pymem_pending;
/* Installs the hooks if this thread holds the GIL of a running interpreter. */
void ms_pymem_install(void);

/* ---- objects.c ---- */
/* Records modules loaded or unloaded since the last scan. */
void ms_objects_scan(void);
/* Re-announces every known module (a fork child's new trace). */
void ms_objects_reemit(void);
/* Bumped on every dlclose that unloads a module: part of each stack's key,
 * so equal return addresses in a different library make a different stack. */
extern uint32_t g_module_epoch;
/* Whether some known module covers `addr`. */
int ms_objects_cover(uintptr_t addr);
void ms_objects_after_fork(void);

#endif
