/*
 * libunwind's pipe, kept out of the program's descriptors.
 *
 * libunwind checks that an address is readable, where it must not trust it
 * (every read of an unw_step: Debian builds it with conservative checks), by
 * write()ing a byte from it into a pipe of its own. It makes that pipe with
 * pipe2 when it initializes and again whenever a read from it fails, at the
 * lowest free descriptors, and keeps it for the life of the process. So the
 * program had descriptors it never opened: started with stdin closed, it
 * found one (the pipe was fd 0: CPython's test_posix test_close_file);
 * listing its descriptors, it found two more than it was given
 * (test_subprocess test_pass_fds_redirected); and had it closed them and
 * opened its own files at those numbers, libunwind would have read a byte
 * from one and written a byte into the other (libunwind issues #274 and
 * #291: ssh's closefrom()).
 *
 * So the pipe exists only while a thread of the shim is inside libunwind:
 *  - pipe2 called from inside the shim (the guard is set: libunwind is the
 *    only such caller) records where libunwind keeps the two descriptors
 *    (the array it passed, its own static one) and moves them to the top of
 *    what the program may use, below min(RLIMIT_NOFILE, 1024) (a huge limit
 *    would grow the kernel's table), where lowest-first numbering reaches
 *    last, so that even while it exists it is not a number the program is
 *    about to be given;
 *  - the last thread to leave libunwind closes the pipe and puts -1 back in
 *    libunwind's slots, its "no pipe yet": the next check makes a new one.
 * Any other pipe2 call is the program's: glibc's pipe2 is this one system
 * call, forwarded unchanged.
 */
#include "internal.h"
#include "guard.h"

#define UNW_LOCAL_ONLY
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MS_PIPE_TOP 1024
#define MS_PIPE_ROOM 16 /* below the top: room for a pipe remade while another thread still holds one */

/* libunwind's two descriptor slots, once its first pipe2 call showed them. */
static int *g_slots;

/* Threads of the shim inside libunwind, and CLOSING while the last one out
 * closes the pipe (a new one waits: libunwind must not read a slot being
 * reset). Not a lock fork or a signal can strand: a fork child starts over
 * (ms_libunwind_after_fork), and a signal handler that interrupts a thread
 * here runs under the guard, so it never unwinds. */
#define MS_CLOSING 0x80000000u
static unsigned g_users;

static int ms_move_high(int fd, int flags) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return fd;
    rlim_t top = rl.rlim_cur < MS_PIPE_TOP ? rl.rlim_cur : MS_PIPE_TOP;
    if (top <= 3 + MS_PIPE_ROOM) return fd; /* too few descriptors: leave it where it is */
    int high = fcntl(fd, (flags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, (int)(top - MS_PIPE_ROOM));
    if (high < 0) return fd; /* the top is full: a low number still works */
    close(fd);
    return high;
}

MEMSIFT_EXPORT int pipe2(int fds[2], int flags) {
    int rc = (int)syscall(SYS_pipe2, fds, flags);
    if (rc == 0 && t_in_shim) {
        int saved = errno;
        ms_store_release(&g_slots, fds);
        fds[0] = ms_move_high(fds[0], flags);
        fds[1] = ms_move_high(fds[1], flags);
        errno = saved;
    }
    return rc;
}

void ms_libunwind_enter(void) {
    for (;;) {
        unsigned v = ms_load_acquire(&g_users);
        if (v & MS_CLOSING) {
            sched_yield(); /* two close() calls away */
            continue;
        }
        if (ms_cas_acq_rel(&g_users, &v, v + 1)) return;
    }
}

void ms_libunwind_leave(void) {
    unsigned last = 1;
    if (!ms_cas_acq_rel(&g_users, &last, MS_CLOSING)) {
        __atomic_fetch_sub(&g_users, 1, __ATOMIC_ACQ_REL);
        return;
    }
    int *slots = ms_load_acquire(&g_slots);
    if (slots && slots[0] >= 0) {
        /* The system call, not close(): close() is a cancellation point, and
         * a thread cancelled here would leave CLOSING set for good. (One
         * cancelled inside libunwind, in its read(), leaves a user counted
         * for good instead: the pipe then stays, at the top.) */
        syscall(SYS_close, slots[0]);
        syscall(SYS_close, slots[1]);
        slots[0] = slots[1] = -1;
    }
    ms_store_release(&g_users, 0u);
}

int ms_libunwind_setup(void) {
    /* libunwind initializes here (and makes its first pipe). */
    ms_libunwind_enter();
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    ms_libunwind_leave();
    return 0;
}

void ms_libunwind_after_fork(void) {
    /* Only this thread exists now: no one else is inside libunwind. An
     * inherited pipe is closed at this thread's next leave. */
    g_users = 0;
}
