/*
 * Allocates K blocks (leaked), prints its tally, then ends the way argv says.
 *
 * usage: endings HOW STATUS K
 *   HOW: exit | _exit | abort | kill (SIGKILL itself) | return |
 *        sigterm (waits 250 ms, allocates one more block, then dies of
 *        SIGTERM's default action: no exit path the shim could see)
 *   STATUS: the exit status for exit, _exit and return
 *   K: blocks of 100 + i bytes allocated first (one temporary block of 10
 *      bytes is also allocated and freed before them)
 */
#include "victim.h"

#include <signal.h>

int main(int argc, char **argv) {
  if (argc != 4) v_die("usage: endings exit|_exit|abort|kill|return|sigterm STATUS K");
  const char *how = argv[1];
  int status = (int)v_arg(argc, argv, 2, 0);
  unsigned long k = v_arg(argc, argv, 3, 0);
  if (k > V_MAX_LIVE - 1) v_die("K too large");

  v_free(v_alloc(V_MALLOC, malloc(10), 10));
  for (unsigned long i = 0; i < k; i++) v_alloc(V_MALLOC, malloc(100 + i), 100 + i);
  if (strcmp(how, "sigterm") == 0) {
    /* The shim drains its ring every 100 ms, on an allocation. */
    usleep(250000);
    v_alloc(V_MALLOC, malloc(100 + k), 100 + k);
  }

  v_json_begin();
  v_json_str("how", how);
  v_json_i64("status", status);
  v_json_tally();
  v_json_end();

  if (strcmp(how, "exit") == 0) exit(status);
  if (strcmp(how, "_exit") == 0) _exit(status);
  if (strcmp(how, "abort") == 0) abort();
  if (strcmp(how, "kill") == 0) {
    kill(getpid(), SIGKILL);
    for (;;) pause();
  }
  if (strcmp(how, "return") == 0) return status;
  if (strcmp(how, "sigterm") == 0) {
    /* The default action, even if whoever started us ignored or blocked it. */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &term, NULL);
    raise(SIGTERM);
    for (;;) pause();
  }
  v_die("unknown way to end");
  return 99;
}
