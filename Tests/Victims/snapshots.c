/*
 * Labels three moments with memsift_snapshot (looked up with dlsym, so the
 * program runs without memsift too), then says "ready" and waits for a line
 * on stdin, so a test can label the next moment from outside:
 *   a: nothing allocated yet
 *   b: 10 blocks of 1000 bytes live          (+10,000 B, +10 blocks)
 *   c: 5 of them freed                        (-5,000 B, -5 blocks)
 *   (wait on stdin)
 *   then 10 blocks of 50 bytes, leaked
 */
#include "victim.h"

#include <dlfcn.h>

int main(void) {
  void (*snapshot)(const char *) = (void (*)(const char *))dlsym(RTLD_DEFAULT, "memsift_snapshot");
  if (!snapshot) v_die("memsift_snapshot not found: run under memsift");
  void *blocks[10];
  snapshot("a");
  for (int i = 0; i < 10; i++) blocks[i] = v_alloc(V_MALLOC, malloc(1000), 1000);
  snapshot("b");
  for (int i = 0; i < 5; i++) v_free(blocks[i]);
  snapshot("c");
  ssize_t ignored = write(STDOUT_FILENO, "ready\n", 6);
  char line[64];
  ignored = read(STDIN_FILENO, line, sizeof line);
  (void)ignored;
  for (int i = 0; i < 10; i++) v_alloc(V_MALLOC, malloc(50), 50);
  v_json_begin();
  v_json_tally();
  v_json_end();
  return 0;
}
