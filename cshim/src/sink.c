/*
 * Where this process's ring lives, and who drains it.
 *
 * Under `memsift run` (MEMSIFT_RUN_DIR set) the ring is a file in the run's
 * private directory; the collector finds it, drains it into the trace and
 * salvages it if we die. The shim never touches the trace file then, so no
 * disk I/O happens in the target.
 *
 * Under plain LD_PRELOAD the ring is a memfd and the shim drains it itself
 * into the trace file: whenever a producer finds the ring full (it becomes
 * the consumer for a moment), every 100 ms (on an allocation), before exec,
 * and at every way out of the process it can see (exit, _exit, abort,
 * return from main, destructor).
 */
#include "internal.h"
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h> /* rename() only: no stdio streams */
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

ms_ring_t g_ring;

static char g_trace_path[4096]; /* absolute; standalone only */
static char g_ring_path[4096];  /* run mode: our published ring file */
static int g_standalone;
static int g_drain_busy;
static int g_finished;
static int g_write_failed;

static const char *ms_basename(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- run mode: a ring file for the collector ---- */

static void ms_abandon_ring(void);

/* Whether `pid` is a live process: kill(pid, 0) alone says yes to a zombie
 * nobody has reaped yet, so the state letter in /proc/PID/stat decides. */
static int ms_process_alive(int32_t pid) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return 0;
    char path[64], buf[512];
    size_t n = ms_append(path, 0, sizeof path, "/proc/");
    n = ms_append_u64(path, n, sizeof path, (uint64_t)pid);
    ms_append(path, n, sizeof path, "/stat");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno != ENOENT;
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0) return 1;
    buf[got] = 0;
    const char *paren = strrchr(buf, ')');
    return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

/* Waiting on a full ring that the collector drains. If the collector is
 * gone (killed), nobody ever will: rather than block the program forever,
 * tracing stops and the ring is emptied into nothing, with one warning. */
static void ms_collector_wait(ms_ring_t *ring, void *ctx, uint32_t attempt) {
    (void)ring;
    (void)ctx;
    /* We hold a reservation: no cancellation here (ms_cancel_off). */
    int cancel = ms_cancel_off();
    ms_ring_backoff(attempt);
    /* Every ~100 ms of waiting (2048 sleeps of 50 us). */
    if (attempt % 2048 == 0 && g_config.collector_pid > 0 && !ms_process_alive(g_config.collector_pid))
        ms_abandon_ring();
    ms_cancel_restore(cancel);
}

static int ms_open_run_ring(void) {
    char tmp[4096], final[4096];
    size_t n = ms_append(tmp, 0, sizeof tmp, g_config.run_dir);
    n = ms_append(tmp, n, sizeof tmp, "/");
    n = ms_append_u64(tmp, n, sizeof tmp, (uint64_t)g_host_pid);
    n = ms_append(tmp, n, sizeof tmp, "-");
    n = ms_append_u64(tmp, n, sizeof tmp, g_start_mono_ns);
    memcpy(final, tmp, n + 1);
    ms_append(final, n, sizeof final, MEMSIFT_RING_SUFFIX);
    memcpy(g_ring_path, final, sizeof final);
    ms_append(tmp, n, sizeof tmp, ".tmp");
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        ms_warn("cannot create a ring in MEMSIFT_RUN_DIR ", g_config.run_dir, ": ", strerror(errno));
        return -1;
    }
    int rc = ms_ring_create(&g_ring, fd, g_config.ring_bytes, g_host_pid, g_start_mono_ns);
    close(fd); /* the mapping keeps the file alive; no descriptor left for the program to trip on */
    /* Published by rename, so the collector never sees a half-made ring. */
    if (rc != 0 || rename(tmp, final) != 0) {
        ms_warn("cannot set up a ring in MEMSIFT_RUN_DIR ", g_config.run_dir, ": ", strerror(rc ? -rc : errno));
        if (rc == 0) ms_ring_unmap(&g_ring);
        unlink(tmp);
        return -1;
    }
    g_ring.wait = ms_collector_wait;
    g_standalone = 0;
    return 0;
}

/* ---- standalone: a memfd ring and a trace file of our own ---- */

static int ms_write_all(int fd, const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The working directory when this image started tracing. A fork child
 * names its trace from its parent's, not from its own working directory:
 * the program may have changed it since (a daemon's chdir("/")), and the
 * traces of one run belong together. */
static char g_start_dir[4096];

/* Names the trace: MEMSIFT_OUTPUT (exact for the first process), else
 * memsift.PROGRAM.PID.trace in the working directory at start; a fork child,
 * or a name already taken (exec keeps the PID), gets PID and a counter. */
static int ms_create_trace_file(int is_fork_child) {
    char base[4096];
    size_t n = 0;
    if (!is_fork_child || !g_start_dir[0]) {
        if (!getcwd(g_start_dir, sizeof g_start_dir)) g_start_dir[0] = 0;
    }
    if (g_config.output) {
        if (g_config.output[0] != '/' && g_start_dir[0]) {
            n = ms_append(base, 0, sizeof base, g_start_dir);
            n = ms_append(base, n, sizeof base, "/");
        }
        n = ms_append(base, n, sizeof base, g_config.output);
    } else {
        if (!g_start_dir[0]) return -1;
        n = ms_append(base, 0, sizeof base, g_start_dir);
        n = ms_append(base, n, sizeof base, "/memsift.");
        /* /proc/self/comm would be truncated; the exe path is exact. */
        char exe[4096];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[len > 0 ? len : 0] = 0;
        n = ms_append(base, n, sizeof base, len > 0 ? ms_basename(exe) : "process");
        n = ms_append(base, n, sizeof base, ".");
        n = ms_append_u64(base, n, sizeof base, (uint64_t)g_pid);
        n = ms_append(base, n, sizeof base, ".trace");
    }
    /* Split "dir/name.trace" into stem and extension for derived names. */
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot > strrchr(base, '/') ? (size_t)(dot - base) : n;
    char link[sizeof g_trace_path]; /* the name a planted symbolic link took, if any */
    link[0] = 0;
    for (uint32_t attempt = 0; attempt < 1000; attempt++) {
        size_t m = 0;
        if (attempt == 0 && !(is_fork_child && g_config.output)) {
            m = ms_append(g_trace_path, 0, sizeof g_trace_path, base);
        } else {
            memcpy(g_trace_path, base, stem);
            m = stem;
            g_trace_path[m] = 0;
            if (g_config.output) {
                m = ms_append(g_trace_path, m, sizeof g_trace_path, ".");
                m = ms_append_u64(g_trace_path, m, sizeof g_trace_path, (uint64_t)g_pid);
            }
            if (attempt > 0) {
                m = ms_append(g_trace_path, m, sizeof g_trace_path, ".");
                m = ms_append_u64(g_trace_path, m, sizeof g_trace_path, attempt + 1);
            }
            m = ms_append(g_trace_path, m, sizeof g_trace_path, base + stem);
        }
        int fd = open(g_trace_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            if (link[0]) ms_warn("not writing through the symbolic link ", link, "; the trace is ", g_trace_path);
            return fd;
        }
        if (errno != EEXIST) {
            ms_warn("cannot create ", g_trace_path, ": ", strerror(errno));
            return -1;
        }
        /* Someone may have planted a link at the name to make us write
         * elsewhere: O_NOFOLLOW refused it; the user is told where the
         * trace went instead. */
        struct stat st;
        if (attempt == 0 && lstat(g_trace_path, &st) == 0 && S_ISLNK(st.st_mode)) memcpy(link, g_trace_path, sizeof link);
    }
    return -1;
}

static void ms_selfdrain_wait(ms_ring_t *ring, void *ctx, uint32_t attempt) {
    (void)ring;
    (void)ctx;
    /* We hold a reservation: no cancellation here (ms_cancel_off). */
    int cancel = ms_cancel_off();
    ms_sink_flush();
    if (attempt > 16) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    ms_cancel_restore(cancel);
}

static int ms_open_standalone(int is_fork_child) {
    int fd = ms_create_trace_file(is_fork_child);
    if (fd < 0) return -1;
    ms_file_header_t h = {
        .magic = MEMSIFT_TRACE_MAGIC,
        .version = MEMSIFT_FORMAT_VERSION,
        .header_size = sizeof h,
        .flags = 0,
        .writer = MS_WRITER_SHIM,
        .pid = g_pid,
        .ppid = (int32_t)getppid(),
        .start_wall_ns = g_start_wall_ns,
        .start_mono_ns = g_start_mono_ns,
        .page_size = (uint32_t)sysconf(_SC_PAGESIZE),
    };
    int ok = ms_write_all(fd, &h, sizeof h) == 0;
    close(fd);
    if (!ok) {
        ms_warn("cannot write ", g_trace_path, ": ", strerror(errno));
        return -1;
    }
    int ring_fd = (int)syscall(SYS_memfd_create, "memsift-ring", MFD_CLOEXEC);
    if (ring_fd < 0) return -1;
    int rc = ms_ring_create(&g_ring, ring_fd, g_config.ring_bytes, g_pid, g_start_mono_ns);
    close(ring_fd);
    if (rc != 0) return -1;
    g_ring.wait = ms_selfdrain_wait;
    g_standalone = 1;
    return 0;
}

static void ms_selfdrain_wait(ms_ring_t *ring, void *ctx, uint32_t attempt);

/* The collector is gone and nobody reads the ring again. A thread still
 * inside a reservation must not wait on it: besides the records of other
 * threads, the collector may have died between zeroing a span it had read
 * and moving the tail past it, a hole no drain ever passes. So the waiter
 * discards the whole backlog (those records would go nowhere anyway). */
static void ms_abandoned_wait(ms_ring_t *ring, void *ctx, uint32_t attempt) {
    (void)ctx;
    (void)attempt;
    int expected = 0;
    if (!ms_cas_acq_rel(&g_drain_busy, &expected, 1)) {
        sched_yield(); /* not a cancellation point */
        return;
    }
    ms_ring_discard(ring);
    ms_store_release(&g_drain_busy, 0);
}

static void ms_abandon_ring(void) {
    int expected = 0;
    static int warned;
    if (ms_cas_acq_rel(&warned, &expected, 1))
        ms_warn("the collector (memsift run) is gone; this process is no longer traced", NULL, NULL, NULL);
    ms_store_release(&g_tracing, 0);
    /* Nobody will remove the ring file (shared memory) and the run
     * directory now; the last process to leave takes the directory. */
    unlink(g_ring_path);
    rmdir(g_config.run_dir);
    /* From now on producers drain into nothing (see ms_drain). */
    g_finished = 1;
    g_standalone = 1;
    g_ring.wait = ms_abandoned_wait;
}

/* A run directory that cannot take a ring (removed, full, a bad
 * MEMSIFT_RUN_DIR) still leaves a trace: the process writes its own, as
 * without a collector, rather than go untraced. */
static int ms_open_sink(int is_fork_child) {
    if (g_config.run_dir && ms_open_run_ring() == 0) return 0;
    return ms_open_standalone(is_fork_child);
}

int ms_sink_open(void) { return ms_open_sink(0); }

int ms_sink_reopen_in_child(void) {
    /* The parent's ring is shared memory: the child must never write to it.
     * Unmapping only drops our view; the parent keeps its own. */
    ms_ring_unmap(&g_ring);
    g_drain_busy = 0;
    g_finished = 0;
    return ms_open_sink(1);
}

/* Drains into the trace file. `wait`: take the consumer role even if
 * another thread holds it now (exit paths), instead of giving up. */
static void ms_drain(int wait) {
    if (!g_standalone) return;
    int expected = 0;
    while (!ms_cas_acq_rel(&g_drain_busy, &expected, 1)) {
        if (!wait) return;
        expected = 0;
        sched_yield();
    }
    /* We hold the drain: no cancellation in open/write/close (ms_cancel_off). */
    int cancel = ms_cancel_off();
    {
        /* After END, records have nowhere to go; they are still consumed so
         * that producers never wait on a ring nobody drains. Opened per drain: a descriptor kept open could be closed by the
         * program and its number reused for one of its own files. */
        int fd = g_finished ? -1 : open(g_trace_path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && !g_finished && !g_write_failed) {
            g_write_failed = 1;
            ms_warn("cannot reopen ", g_trace_path, "; events are being dropped: ", strerror(errno));
        }
        for (;;) {
            const uint8_t *span;
            int corrupt;
            size_t n = ms_ring_peek(&g_ring, &span, &corrupt);
            if (n == 0) break;
            if (fd >= 0 && ms_write_all(fd, span, n) != 0 && !g_write_failed) {
                g_write_failed = 1;
                ms_warn("cannot write ", g_trace_path, "; events are being dropped: ", strerror(errno));
            }
            ms_ring_consume(&g_ring, n);
        }
        if (fd >= 0) close(fd);
    }
    ms_store_release(&g_drain_busy, 0);
    ms_cancel_restore(cancel);
}

void ms_sink_flush(void) { ms_drain(0); }

void ms_sink_sync(void) { ms_drain(1); }

void ms_sink_finish(uint32_t kind, int32_t status) {
    if (!g_standalone || g_finished) return;
    ms_drain(1);
    int expected = 0;
    while (!ms_cas_acq_rel(&g_drain_busy, &expected, 1)) {
        expected = 0;
        sched_yield();
    }
    ms_end_record_t end = {
        .h = {sizeof end, MS_REC_END, MS_STATE_COMMITTED, 0, MS_RECORD_MAGIC},
        .time_ns = ms_now_ns(),
        .kind = kind,
        .status = status,
        .backpressure_ns = ms_load_relaxed(&g_ring.header->backpressure_ns),
        .backpressure_waits = ms_load_relaxed(&g_ring.header->backpressure_waits),
        .lost_bytes = 0,
        .stack_table_full = ms_load_relaxed(&g_ring.header->stack_table_full),
    };
    int cancel = ms_cancel_off(); /* we hold the drain */
    int fd = open(g_trace_path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        ms_write_all(fd, &end, sizeof end);
        close(fd);
    }
    ms_cancel_restore(cancel);
    /* Later events (other libraries' destructors) have nowhere to go. */
    g_finished = 1;
    ms_store_release(&g_drain_busy, 0);
}
