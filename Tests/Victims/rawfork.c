/*
 * _Fork (glibc 2.34+): a fork that runs no pthread_atfork handlers. The
 * child allocates 3 blocks of 50,000 bytes and _exits; the parent frees its
 * one block of 100 bytes. Each trace must hold only its own process's.
 */
#include "victim.h"

#include <sys/wait.h>

extern pid_t _Fork(void);

int main(void) {
  void *a = v_alloc(V_MALLOC, malloc(100), 100);
  pid_t pid = _Fork();
  if (pid == 0) {
    for (int i = 0; i < 3; i++) v_keep(malloc(50000));
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  v_free(a);
  v_json_begin();
  v_json_i64("child", pid);
  v_json_tally();
  v_json_end();
  return 0;
}
