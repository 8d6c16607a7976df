/*
 * fds: the descriptors a program finds open that it never opened.
 *
 *   fds          closes every descriptor but 1 and 2 (stdin too, as a daemon
 *                or posix_spawn's file actions do), then execs itself as
 *   fds child    which allocates (the shim is running, libunwind is
 *                initialized, stacks are unwound), also in a signal handler
 *                (a signal frame: the shim asks libunwind, which checks
 *                addresses through its pipe), and prints its open
 *                descriptors below 1024: {"open":"1 2"} whether traced or not.
 *
 * The trace files and the ring are the collector's or closed right after
 * mmap; libunwind's pipe was the one the program could see
 * (cshim/src/stack.c).
 */
#include "victim.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>

static void on_signal(int sig) {
  (void)sig;
  v_free(v_alloc(V_MALLOC, malloc(40), 40)); /* not async-signal-safe in general; the main thread waits in raise */
}

int main(int argc, char **argv) {
  if (argc < 2) {
    for (int fd = 0; fd < 1024; fd++)
      if (fd != 1 && fd != 2) close(fd);
    char *args[] = {argv[0], "child", NULL};
    execv("/proc/self/exe", args);
    v_die("execv");
  }
  for (size_t i = 0; i < 100; i++) v_free(v_alloc(V_MALLOC, malloc(64 + i), 64 + i));
  signal(SIGUSR1, on_signal);
  for (int i = 0; i < 10; i++) raise(SIGUSR1);
  char open_fds[8192] = "";
  size_t len = 0;
  for (int fd = 0; fd < 1024; fd++) {
    if (fcntl(fd, F_GETFD) == -1) continue;
    int n = snprintf(open_fds + len, sizeof open_fds - len, "%s%d", len ? " " : "", fd);
    if (n < 0 || (size_t)n >= sizeof open_fds - len) v_die("too many descriptors");
    len += (size_t)n;
  }
  v_json_begin();
  v_json_str("open", open_fds);
  v_json_end();
  return 0;
}
