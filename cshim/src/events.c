/*
 * Writing event records into the ring: allocations, frees, reallocs,
 * threads, RSS samples and the exit the process saw.
 *
 * Called with the reentrancy guard set. Each writer reserves its record,
 * fills it in place and commits it: no copy, no lock.
 */
#include "internal.h"
#include "guard.h"
#include "sample.h"

#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Per-thread identity, refreshed when g_generation moves (in a fork child
 * the tid changed and the new trace has not heard of this thread). */
static MS_TLS uint32_t t_tid;
static MS_TLS uint32_t t_generation;

static void ms_read_thread_name(uint32_t tid, char name[16]) {
    char path[64];
    size_t n = ms_append(path, 0, sizeof path, "/proc/self/task/");
    n = ms_append_u64(path, n, sizeof path, tid);
    ms_append(path, n, sizeof path, "/comm");
    memset(name, 0, 16);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t got = read(fd, name, 15);
    close(fd);
    if (got > 0 && name[got - 1] == '\n') name[got - 1] = 0;
}

static void ms_emit_thread(uint32_t tid, const char *name) {
    ms_thread_record_t *r = (ms_thread_record_t *)ms_ring_reserve(&g_ring, sizeof *r, MS_REC_THREAD, 0);
    r->time_ns = ms_now_ns();
    r->tid = tid;
    r->reserved = 0;
    memcpy(r->name, name, 16);
    r->name[15] = 0;
    ms_ring_commit((uint8_t *)r);
}

uint32_t ms_thread_tid(void) {
    if (MS_LIKELY(t_generation == ms_load_relaxed(&g_generation) && t_tid)) return t_tid;
    t_tid = (uint32_t)syscall(SYS_gettid);
    t_generation = ms_load_relaxed(&g_generation);
    char name[16];
    ms_read_thread_name(t_tid, name);
    ms_emit_thread(t_tid, name);
    return t_tid;
}

void ms_record_thread_name(const char *name) {
    char copy[16] = {0};
    strncpy(copy, name, 15);
    ms_emit_thread(ms_thread_tid(), copy);
}

/* Once per period (100 ms by default), whichever thread gets there first:
 * samples RSS and, without a collector, moves the ring to the trace file,
 * so a sudden death (SIGTERM, SIGSEGV, abort() from inside libc) loses at
 * most one period of events. */
static uint64_t g_next_tick_ns;
#define MS_FLUSH_PERIOD_NS (100u * 1000000u)

static void ms_periodic(uint64_t now) {
    uint64_t next = ms_load_relaxed(&g_next_tick_ns);
    if (MS_LIKELY(now < next)) return;
    uint64_t period = g_config.rss_interval_ns ? g_config.rss_interval_ns : MS_FLUSH_PERIOD_NS;
    if (!ms_cas_acq_rel(&g_next_tick_ns, &next, now + period)) return;
    if (g_config.rss_interval_ns) ms_record_rss(now);
    ms_sink_flush();
}

void ms_record_rss(uint64_t now) {
    /* Opened each time: a descriptor kept open could be closed and its
     * number reused by the program, and we would read its file. */
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    /* statm: size resident shared ... (pages) */
    const char *s = buf;
    while (*s && *s != ' ') s++;
    uint64_t pages = 0;
    for (s++; *s >= '0' && *s <= '9'; s++) pages = pages * 10 + (uint64_t)(*s - '0');
    ms_rss_record_t *r = (ms_rss_record_t *)ms_ring_reserve(&g_ring, sizeof *r, MS_REC_RSS, 0);
    r->time_ns = now;
    r->rss_bytes = pages * (uint64_t)sysconf(_SC_PAGESIZE);
    ms_ring_commit((uint8_t *)r);
}

static void ms_emit_alloc(uint8_t fn, const void *ptr, uint64_t size, uint64_t now) {
    uint32_t tid = ms_thread_tid();
    uint32_t stack = ms_stack_capture();
    ms_alloc_record_t *r = (ms_alloc_record_t *)ms_ring_reserve(&g_ring, sizeof *r, MS_REC_ALLOC, fn);
    r->time_ns = now;
    r->ptr = (uint64_t)(uintptr_t)ptr;
    r->size = size;
    r->stack = stack;
    r->tid = tid;
    ms_ring_commit((uint8_t *)r);
}

static void ms_emit_free(const void *ptr) {
    ms_free_record_t *r = (ms_free_record_t *)ms_ring_reserve(&g_ring, sizeof *r, MS_REC_FREE, 0);
    r->time_ns = ms_now_ns();
    r->ptr = (uint64_t)(uintptr_t)ptr;
    ms_ring_commit((uint8_t *)r);
}

void ms_record_alloc(uint8_t fn, const void *ptr, uint64_t size) {
    uint64_t now = ms_now_ns();
    /* Sampling (the hook already counted the size down): an unsampled
     * allocation is not recorded; a sampled one whose address finds no room
     * in the set is dropped (its free would be lost). */
    if (!g_sample_filter || (ms_sample_due() && ms_sampled_insert(ptr, size))) ms_emit_alloc(fn, ptr, size, now);
    ms_periodic(now);
}

void ms_record_free(const void *ptr) {
    if (g_sample_filter && !ms_sampled_remove(ptr, NULL)) return;
    ms_emit_free(ptr);
}

/* A sampled realloc is the release of the old block if it was sampled,
 * then an allocation sampled like any other. What the call was given, kept
 * from before it to after it (a thread has one realloc in flight). */
static MS_TLS struct {
    uint8_t fn;
    int old_sampled;
    uint64_t old_size;
    uint64_t size;
} t_sampled_realloc;

void ms_record_realloc_begin(uint8_t fn, const void *old, uint64_t size) {
    if (g_sample_filter) {
        t_sampled_realloc.fn = fn;
        t_sampled_realloc.size = size;
        t_sampled_realloc.old_sampled = old && ms_sampled_remove(old, &t_sampled_realloc.old_size);
        if (t_sampled_realloc.old_sampled) ms_emit_free(old);
        return;
    }
    uint32_t tid = ms_thread_tid();
    uint32_t stack = ms_stack_capture();
    ms_realloc_record_t *r = (ms_realloc_record_t *)ms_ring_reserve(&g_ring, sizeof *r, MS_REC_REALLOC, fn);
    r->time_ns = ms_now_ns();
    r->old_ptr = (uint64_t)(uintptr_t)old;
    r->size = size;
    r->stack = stack;
    r->tid = tid;
    ms_ring_commit((uint8_t *)r);
}

void ms_record_realloc_done(const void *old, const void *new_ptr) {
    if (g_sample_filter) {
        if (new_ptr) {
            if (!ms_sample_skip(t_sampled_realloc.size))
                ms_record_alloc(t_sampled_realloc.fn, new_ptr, t_sampled_realloc.size);
        } else if (t_sampled_realloc.size > 0 && t_sampled_realloc.old_sampled &&
                   ms_sampled_insert(old, t_sampled_realloc.old_size)) {
            /* Failed: the old block lives on, recorded anew. */
            ms_emit_alloc(t_sampled_realloc.fn, old, t_sampled_realloc.old_size, ms_now_ns());
        }
        return;
    }
    ms_realloc_done_record_t *r =
        (ms_realloc_done_record_t *)ms_ring_reserve(&g_ring, sizeof *r, MS_REC_REALLOC_DONE, 0);
    uint64_t now = ms_now_ns();
    r->time_ns = now;
    r->old_ptr = (uint64_t)(uintptr_t)old;
    r->new_ptr = (uint64_t)(uintptr_t)new_ptr;
    r->tid = ms_thread_tid();
    r->reserved = 0;
    ms_ring_commit((uint8_t *)r);
    ms_periodic(now);
}

void ms_record_exit(uint32_t kind, int32_t status) {
    ms_exit_record_t *r = (ms_exit_record_t *)ms_ring_reserve(&g_ring, sizeof *r, MS_REC_EXIT, 0);
    r->time_ns = ms_now_ns();
    r->kind = kind;
    r->status = status;
    ms_ring_commit((uint8_t *)r);
}
