/*
 * vfork + a failing exec + _exit in the child, as Python's subprocess does
 * for a missing command. The child shares the parent's memory until it
 * _exits: nothing it does may end or disturb the parent's trace.
 *
 * Allocates and frees one 1000-byte block around the vfork, then leaks 10
 * blocks of 100 bytes.
 */
#include "victim.h"

#include <sys/wait.h>

int main(void) {
  void *a = v_alloc(V_MALLOC, malloc(1000), 1000);
  pid_t pid = vfork();
  if (pid == 0) {
    char *argv[] = {"/nonexistent/memsift-victim", NULL};
    execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  v_free(a);
  for (int i = 0; i < 10; i++) v_alloc(V_MALLOC, malloc(100), 100);
  v_json_begin();
  v_json_i64("child_status", WEXITSTATUS(status));
  v_json_tally();
  v_json_end();
  return 0;
}
