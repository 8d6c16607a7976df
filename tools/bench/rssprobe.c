/*
 * rssprobe: how the benchmark learns the peak RSS of the traced program
 * itself, whatever the program and whatever tracer runs it.
 *
 * An LD_PRELOAD library with nothing but a destructor: when a process that
 * loaded it exits (exit() or a return from main), it appends one line to the
 * file named by $BENCH_RSS_FILE:
 *     PID PEAK_RSS_KB EXE
 * with the VmHWM of /proc/self/status and the target of /proc/self/exe.
 * VmHWM, not getrusage's ru_maxrss: ru_maxrss also counts the address space
 * the process had before its exec, i.e. a copy of its parent's (the driver's
 * Python interpreter, a tracer's shell script), a floor of 5-30 MB that has
 * nothing to do with the program. (ru_maxrss is the fallback if VmHWM cannot
 * be read.) The
 * driver preloads it into the whole command tree (every tracer passes
 * LD_PRELOAD on, prepending its own library), so each process of the tree
 * (the target, `memsift run`'s collector, heaptrack's script and
 * heaptrack_interpret, /usr/bin/time) leaves its line, and the driver picks
 * the target's by its executable. It interposes nothing and allocates
 * nothing (open/write/close, no stdio); a process killed by a signal or
 * ending in _exit() leaves no line.
 *
 * Build: cc -O2 -shared -fPIC -o rssprobe.so rssprobe.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static size_t put_u64(char *buf, uint64_t v) {
    char d[24];
    size_t n = 0, k = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) buf[k++] = d[--n];
    return k;
}

/* VmHWM of /proc/self/status in KiB; 0 if it cannot be read. */
static uint64_t vm_hwm_kb(void) {
    char buf[8192];
    size_t len = 0;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    for (ssize_t n; len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0;) len += (size_t)n;
    close(fd);
    buf[len] = 0;
    const char *p = strstr(buf, "\nVmHWM:");
    if (!p) return 0;
    p += 7;
    while (*p == ' ' || *p == '\t') p++;
    uint64_t kb = 0;
    while (*p >= '0' && *p <= '9') kb = kb * 10 + (uint64_t)(*p++ - '0');
    return kb;
}

__attribute__((destructor)) static void rssprobe_report(void) {
    const char *path = getenv("BENCH_RSS_FILE");
    if (!path || !*path) return;
    uint64_t kb = vm_hwm_kb();
    struct rusage ru;
    if (kb == 0 && getrusage(RUSAGE_SELF, &ru) == 0) kb = (uint64_t)ru.ru_maxrss;
    char line[4200];
    size_t k = put_u64(line, (uint64_t)getpid());
    line[k++] = ' ';
    k += put_u64(line + k, kb);
    line[k++] = ' ';
    ssize_t n = readlink("/proc/self/exe", line + k, sizeof line - k - 1);
    k += n > 0 ? (size_t)n : 0;
    line[k++] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t ignored = write(fd, line, k); /* one write with O_APPEND: lines of concurrent exits do not mix */
    (void)ignored;
    close(fd);
}
