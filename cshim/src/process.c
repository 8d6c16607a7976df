/*
 * The process's life as the shim sees it: start, fork, exec, dlopen and
 * dlclose, thread names, and every way out (return from main, exit, _exit,
 * abort, the destructor).
 *
 * Each hook resolves its real function lazily with dlsym under the guard.
 */
#include "internal.h"
#include "guard.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

MS_TLS int t_in_shim;

int g_tracing;
uint32_t g_generation;
int32_t g_pid;
int32_t g_host_pid;
uint64_t g_start_mono_ns;
uint64_t g_start_wall_ns;
uintptr_t g_self_begin, g_self_end;

static char g_exe[4096];
static uint32_t g_exe_len;
static char g_cmdline[32768];
static uint32_t g_cmdline_len;

/* How the process said it is ending; END repeats it. */
static uint32_t g_exit_kind = MS_EXIT_UNKNOWN;
static int32_t g_exit_status;

#define MS_REAL(type, name) ((type)ms_real_symbol(#name))

static void *ms_real_symbol(const char *name) {
    int entered = ms_guard_enter();
    void *f = dlsym(RTLD_NEXT, name);
    if (entered) ms_guard_leave();
    return f;
}

static uint64_t ms_clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- identity ---- */

static void ms_read_identity(void) {
    ssize_t n = readlink("/proc/self/exe", g_exe, sizeof g_exe - 1);
    g_exe_len = n > 0 ? (uint32_t)n : 0;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    g_cmdline_len = 0;
    if (fd >= 0) {
        ssize_t got;
        while (g_cmdline_len < sizeof g_cmdline &&
               (got = read(fd, g_cmdline + g_cmdline_len, sizeof g_cmdline - g_cmdline_len)) > 0)
            g_cmdline_len += (uint32_t)got;
        close(fd);
    }
}

void ms_emit_process(void) {
    uint32_t size = MS_ALIGN8((uint32_t)sizeof(ms_process_record_t) + g_exe_len + g_cmdline_len);
    uint8_t *rec = ms_ring_reserve(&g_ring, size, MS_REC_PROCESS, 0);
    ms_process_record_t *r = (ms_process_record_t *)rec;
    r->pid = g_host_pid;
    r->ppid = (int32_t)getppid();
    r->start_wall_ns = g_start_wall_ns;
    r->start_mono_ns = g_start_mono_ns;
    r->page_size = (uint32_t)sysconf(_SC_PAGESIZE);
    r->max_depth = g_config.depth;
    r->exe_len = g_exe_len;
    r->argv_len = g_cmdline_len;
    uint8_t *out = rec + sizeof *r;
    memcpy(out, g_exe, g_exe_len);
    memcpy(out + g_exe_len, g_cmdline, g_cmdline_len);
    out += g_exe_len + g_cmdline_len;
    memset(out, 0, (size_t)(rec + size - out));
    ms_ring_commit(rec);
}

/* Our PID as the outermost PID namespace we can see numbers it: the first
 * field of "NSpid:" in /proc/self/status. A program may run us inside a PID
 * namespace (unshare -p, a container), where getpid() is small and means
 * some other process to the collector outside. Falls back to getpid(). */
static int32_t ms_read_host_pid(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return (int32_t)getpid();
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return (int32_t)getpid();
    buf[n] = 0;
    const char *line = strstr(buf, "\nNSpid:");
    if (!line) return (int32_t)getpid();
    const char *p = line + 7;
    while (*p == ' ' || *p == '\t') p++;
    int32_t pid = 0;
    for (; *p >= '0' && *p <= '9'; p++) pid = pid * 10 + (*p - '0');
    return pid > 0 ? pid : (int32_t)getpid();
}

static int ms_find_self(struct dl_phdr_info *info, size_t size, void *ctx) {
    (void)size;
    uintptr_t probe = (uintptr_t)ctx, begin = UINTPTR_MAX, end = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_LOAD) continue;
        uintptr_t b = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr, e = b + info->dlpi_phdr[i].p_memsz;
        if (b < begin) begin = b;
        if (e > end) end = e;
    }
    if (probe < begin || probe >= end) return 0;
    g_self_begin = begin;
    g_self_end = end;
    return 1;
}

/* ---- start and fork ---- */

static int g_owner_fallback = 1;
volatile int *g_trace_owner = &g_owner_fallback;

/* Moves the owner flag to its own wipe-on-fork page (kernel 4.14+; without
 * it, the pthread_atfork handler alone notices forks). */
static void ms_setup_owner_page(void) {
    long page = sysconf(_SC_PAGESIZE);
    int *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    if (madvise(p, (size_t)page, MADV_WIPEONFORK) != 0) {
        munmap(p, (size_t)page);
        return;
    }
    *p = 1;
    g_trace_owner = p;
}

static void ms_after_fork_child(void);

/* A sampled trace says so right after PROCESS, before any event. */
static void ms_emit_sampling(void) {
    if (!g_config.sample_rate) return;
    ms_sampling_record_t *r = (ms_sampling_record_t *)ms_ring_reserve(&g_ring, sizeof *r, MS_REC_SAMPLING, 0);
    r->rate_bytes = g_config.sample_rate;
    ms_ring_commit((uint8_t *)r);
}

/* Opens this process's trace: ring, PROCESS record, modules, first RSS. */
static int ms_begin_trace(int is_fork_child) {
    g_pid = (int32_t)getpid();
    g_host_pid = ms_read_host_pid();
    /* The precise clock: an exec'd image must start strictly after the
     * image it replaced (the collector orders a PID's rings by it). */
    g_start_mono_ns = ms_clock_ns(CLOCK_MONOTONIC);
    g_start_wall_ns = ms_clock_ns(CLOCK_REALTIME);
    if ((is_fork_child ? ms_sink_reopen_in_child() : ms_sink_open()) != 0) return -1;
    ms_emit_process();
    ms_emit_sampling();
    if (is_fork_child)
        ms_objects_after_fork();
    else
        ms_objects_scan();
    ms_record_rss(g_start_mono_ns);
    return 0;
}

extern char **environ;

enum { MS_NOT_STARTED = 0, MS_STARTING = 1, MS_STARTED = 2 };
static int g_start_state;

/* Starts tracing, once. Called by our constructor and by the first hooked
 * call that finds libc initialized: the loader runs the constructors of the
 * program's own libraries (libstdc++, ...) before ours, and their
 * allocations belong in the trace. `environ` is set by libc's own
 * initialization, which runs before any other library's constructor. */
static void ms_start(void) {
    int expected = MS_NOT_STARTED;
    if (!environ || !ms_cas_acq_rel(&g_start_state, &expected, MS_STARTING)) return;
    ms_resolve();
    int entered = ms_guard_enter();
    ms_config_read();
    dl_iterate_phdr(ms_find_self, (void *)(uintptr_t)&ms_start);
    ms_read_identity();
    ms_setup_owner_page();
    if (ms_stack_setup() == 0 && ms_sample_setup() == 0 && ms_begin_trace(0) == 0) {
        /* Only the child handler: we hold no lock a fork could strand. */
        pthread_atfork(NULL, NULL, ms_after_fork_child);
        ms_python_detect();
        ms_pymem_detect(1);
        ms_store_release(&g_tracing, 1);
    }
    ms_store_release(&g_start_state, MS_STARTED);
    if (entered) ms_guard_leave();
}

#ifdef MS_SANITIZER_BUILD
int g_constructed; /* see MS_MAY_START in hooks.h */
#endif

__attribute__((constructor(101))) static void ms_constructor(void) {
#ifdef MS_SANITIZER_BUILD
    ms_store_release(&g_constructed, 1);
#endif
    ms_start();
}

int ms_adopt_after_fork(void) {
    ms_after_fork_child();
    *g_trace_owner = 1;
    return ms_load_acquire(&g_tracing);
}

int ms_start_lazily(void) {
    if (ms_load_acquire(&g_start_state) == MS_NOT_STARTED) ms_start();
    return ms_load_acquire(&g_tracing);
}

/* Opens a fork child's own trace. Runs from our pthread_atfork child handler,
 * or from the first hook that finds the owner page wiped, whichever comes
 * first; the second finds the work done (the PID is already the child's). */
static void ms_after_fork_child(void) {
    if (!g_tracing || (int32_t)getpid() == g_pid) return;
    /* Only this thread exists now. New generation: stacks and threads are
     * announced again in the child's own trace. */
    g_tracing = 0;
    t_in_shim = 1;
    g_generation++;
    g_exit_kind = MS_EXIT_UNKNOWN;
    ms_stack_after_fork();
    ms_python_after_fork();
    if (ms_begin_trace(1) == 0) g_tracing = 1;
    *g_trace_owner = 1;
    t_in_shim = 0;
}

/* ---- the ways out ---- */

/* Notes how the process ends; `final`: nothing of ours runs afterwards
 * (_exit, abort), so finish the trace now. */
/* A vfork child shares our memory until it execs or _exits: its exit and
 * exec must not touch the parent's tracing state (Python's subprocess uses
 * vfork). The extra getpid() is on these rare paths only. */
static int ms_is_vfork_child(void) { return (int32_t)getpid() != g_pid; }

static void ms_note_exit(uint32_t kind, int32_t status, int final) {
    if (!g_tracing || t_in_shim || ms_is_vfork_child()) return;
    t_in_shim = 1;
    if (g_exit_kind == MS_EXIT_UNKNOWN || kind != MS_EXIT_RETURN) {
        g_exit_kind = kind;
        g_exit_status = status;
    }
    ms_record_exit(kind, status);
    if (final) {
        ms_sink_finish(kind, status);
        g_tracing = 0;
    }
    t_in_shim = 0;
}

__attribute__((destructor(101))) static void ms_stop(void) {
    if (!g_tracing) return;
    t_in_shim = 1;
    if (g_exit_kind == MS_EXIT_UNKNOWN) {
        g_exit_kind = MS_EXIT_DESTRUCTOR;
        ms_record_exit(MS_EXIT_DESTRUCTOR, 0);
    }
    ms_record_rss(ms_now_ns());
    ms_sink_finish(g_exit_kind, g_exit_status);
    g_ring.header->state = MS_RING_FINISHED;
    t_in_shim = 0;
}

MEMSIFT_EXPORT void exit(int status) {
    ms_note_exit(MS_EXIT_EXIT, status, 0);
    MS_REAL(void (*)(int), exit)(status);
    __builtin_unreachable();
}

MEMSIFT_EXPORT void _exit(int status) {
    ms_note_exit(MS_EXIT__EXIT, status, 1);
    MS_REAL(void (*)(int), _exit)(status);
    __builtin_unreachable();
}

MEMSIFT_EXPORT void _Exit(int status) {
    ms_note_exit(MS_EXIT__EXIT, status, 1);
    MS_REAL(void (*)(int), _Exit)(status);
    __builtin_unreachable();
}

MEMSIFT_EXPORT void abort(void) {
    ms_note_exit(MS_EXIT_ABORT, SIGABRT, 1);
    MS_REAL(void (*)(void), abort)();
    __builtin_unreachable();
}

/* main's return value is only visible from here: glibc calls exit() from
 * inside libc, which no interposition sees. */
typedef int (*ms_main_fn)(int, char **, char **);
static ms_main_fn g_real_main;

static int ms_main(int argc, char **argv, char **envp) {
    int rc = g_real_main(argc, argv, envp);
    ms_note_exit(MS_EXIT_RETURN, rc, 0);
    return rc;
}

MEMSIFT_EXPORT int __libc_start_main(ms_main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                                     void (*rtld_fini)(void), void *stack_end) {
    typedef int (*start_fn)(ms_main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);
    g_real_main = main;
    return MS_REAL(start_fn, __libc_start_main)(ms_main, argc, argv, init, fini, rtld_fini, stack_end);
}

/* ---- exec: the image ends, the PID goes on ---- */

/* The image may end here, without destructors. Not a final END: exec fails
 * often (execvp tries PATH entries; a shell's child may find no command),
 * and tracing goes on if it returns. A trace whose last word is EXIT(EXEC)
 * was replaced by exec. */
static void ms_before_exec(void) {
    if (!g_tracing || t_in_shim || ms_is_vfork_child()) return;
    t_in_shim = 1;
    ms_record_exit(MS_EXIT_EXEC, 0);
    ms_sink_sync();
    t_in_shim = 0;
}

MEMSIFT_EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
    ms_before_exec();
    return MS_REAL(int (*)(const char *, char *const[], char *const[]), execve)(path, argv, envp);
}

MEMSIFT_EXPORT int execv(const char *path, char *const argv[]) {
    ms_before_exec();
    return MS_REAL(int (*)(const char *, char *const[]), execv)(path, argv);
}

MEMSIFT_EXPORT int execvp(const char *file, char *const argv[]) {
    ms_before_exec();
    return MS_REAL(int (*)(const char *, char *const[]), execvp)(file, argv);
}

MEMSIFT_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
    ms_before_exec();
    return MS_REAL(int (*)(const char *, char *const[], char *const[]), execvpe)(file, argv, envp);
}

/* The execl family is variadic: collect the arguments, then take the execv
 * route (which is what glibc does too). */
#define MS_COLLECT_ARGS(first, envp_out)                              \
    va_list ap;                                                       \
    size_t argc = 1;                                                  \
    va_start(ap, first);                                              \
    while (va_arg(ap, const char *)) argc++;                          \
    va_end(ap);                                                       \
    char *args[argc + 1];                                             \
    args[0] = (char *)(first);                                        \
    va_start(ap, first);                                              \
    for (size_t i = 1; i <= argc; i++) args[i] = va_arg(ap, char *);  \
    envp_out;                                                         \
    va_end(ap)

MEMSIFT_EXPORT int execl(const char *path, const char *arg, ...) {
    MS_COLLECT_ARGS(arg, (void)0);
    return execv(path, args);
}

MEMSIFT_EXPORT int execlp(const char *file, const char *arg, ...) {
    MS_COLLECT_ARGS(arg, (void)0);
    return execvp(file, args);
}

MEMSIFT_EXPORT int execle(const char *path, const char *arg, ...) {
    char **envp;
    MS_COLLECT_ARGS(arg, envp = va_arg(ap, char **));
    return execve(path, args, envp);
}

/* ---- modules and threads ---- */

MEMSIFT_EXPORT void *dlopen(const char *file, int mode) {
    void *handle = MS_REAL(void *(*)(const char *, int), dlopen)(file, mode);
    if (handle && g_tracing && ms_guard_enter()) {
        ms_objects_scan();
        ms_python_detect(); /* a program embedding CPython may load it late */
        ms_pymem_detect(0);
        ms_guard_leave();
    }
    return handle;
}

MEMSIFT_EXPORT int dlclose(void *handle) {
    int rc = MS_REAL(int (*)(void *), dlclose)(handle);
    if (rc == 0 && g_tracing && ms_guard_enter()) {
        ms_objects_scan();
        ms_guard_leave();
    }
    return rc;
}

MEMSIFT_EXPORT int pthread_setname_np(pthread_t thread, const char *name) {
    int rc = MS_REAL(int (*)(pthread_t, const char *), pthread_setname_np)(thread, name);
    /* Another thread's tid is not at hand; its name is read at its next
     * first event in a new generation, or stays as it was. */
    if (rc == 0 && thread == pthread_self() && g_tracing && ms_guard_enter()) {
        ms_record_thread_name(name);
        ms_guard_leave();
    }
    return rc;
}
