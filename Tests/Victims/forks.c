/*
 * fork and exec, with allocations known on each side.
 *
 * usage: forks SELF            the scenario below; SELF is this program's path
 *        forks target N M      (what the exec'd child runs) leaks N blocks of M bytes
 *        forks many K [N]      forks K children; child i allocates i+1 blocks
 *                              of 64 bytes (leaked), then N blocks of 32 bytes
 *                              it frees at once, waits until all are forked,
 *                              and calls exit(i); the parent reaps them all
 *                              and returns 0
 *
 * The scenario:
 *   1. the parent allocates 3 blocks of 1000 bytes (kept until the end);
 *   2. fork: the child allocates 5 blocks of 200 bytes, frees 2 of them,
 *      frees one of the parent's blocks (a free of a block its own trace never
 *      saw allocated), and calls exit(3);
 *   3. fork: the child allocates 2 blocks of 300 bytes (leaked), then
 *      execs SELF target 4 50;
 *   4. the parent waits for both, frees its 3 blocks and allocates one of
 *      77 bytes it leaks.
 * It prints the pids and the parent's tally (and the exec'd image prints its
 * own).
 */
#include "victim.h"

#include <sys/wait.h>

static int target(unsigned long n, unsigned long m) {
  for (unsigned long i = 0; i < n; i++) v_alloc(V_MALLOC, malloc(m), m);
  v_json_begin();
  v_json_str("role", "target");
  v_json_tally();
  v_json_end();
  return 0;
}

static int many(unsigned long k, unsigned long n) {
  pid_t pids[64];
  if (k > 64) v_die("too many children");
  /* The children allocate, then wait for the pipe to close, so that they
   * all exit at about the same time. */
  int go[2];
  if (pipe(go) != 0) v_die("pipe failed");
  for (unsigned long i = 0; i < k; i++) {
    pids[i] = fork();
    if (pids[i] < 0) v_die("fork failed");
    if (pids[i] == 0) {
      close(go[1]);
      for (unsigned long j = 0; j <= i; j++) v_keep(malloc(64));
      for (unsigned long j = 0; j < n; j++) free(v_keep(malloc(32)));
      char byte;
      while (read(go[0], &byte, 1) > 0) {
      }
      exit((int)i);
    }
  }
  close(go[0]);
  close(go[1]);
  v_json_begin();
  v_json_i64("pid", getpid());
  for (unsigned long i = 0; i < k; i++) {
    int status;
    if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) || WEXITSTATUS(status) != (int)i)
      v_die("a child did not exit as expected");
    char key[32];
    snprintf(key, sizeof key, "child%lu", i);
    v_json_i64(key, pids[i]);
  }
  v_json_end();
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "target") == 0) return target(v_arg(argc, argv, 2, 0), v_arg(argc, argv, 3, 0));
  if (argc >= 3 && strcmp(argv[1], "many") == 0) return many(v_arg(argc, argv, 2, 0), v_arg(argc, argv, 3, 0));
  if (argc != 2) v_die("usage: forks SELF | forks target N M | forks many K [N]");

  void *kept[3];
  for (int i = 0; i < 3; i++) kept[i] = v_alloc(V_MALLOC, malloc(1000), 1000);

  pid_t child = fork();
  if (child < 0) v_die("fork failed");
  if (child == 0) {
    /* The child's own tally starts empty, like its trace. */
    memset(&v_tally, 0, sizeof v_tally);
    void *mine[5];
    for (int i = 0; i < 5; i++) mine[i] = v_alloc(V_MALLOC, malloc(200), 200);
    v_free(mine[0]);
    v_free(mine[3]);
    free(kept[1]); /* inherited: unknown to the child's trace */
    exit(3);
  }

  pid_t execer = fork();
  if (execer < 0) v_die("fork failed");
  if (execer == 0) {
    v_keep(malloc(300));
    v_keep(malloc(300));
    execl(argv[1], argv[1], "target", "4", "50", (char *)NULL);
    v_die("exec failed");
  }

  int status;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 3)
    v_die("the first child did not exit(3)");
  if (waitpid(execer, &status, 0) != execer || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    v_die("the exec'd child did not exit(0)");
  for (int i = 0; i < 3; i++) v_free(kept[i]);
  v_alloc(V_MALLOC, malloc(77), 77);

  v_json_begin();
  v_json_str("role", "parent");
  v_json_i64("pid", getpid());
  v_json_i64("child", child);
  v_json_i64("execer", execer);
  v_json_tally();
  v_json_end();
  return 0;
}
