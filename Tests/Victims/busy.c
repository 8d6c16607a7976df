/*
 * Allocates and frees N blocks of 64 bytes (enough to fill the ring many
 * times over), then writes "finished" on stdout. Used to show that a target
 * whose collector was killed goes on to the end instead of waiting forever.
 */
#include "victim.h"

int main(int argc, char **argv) {
  unsigned long n = v_arg(argc, argv, 1, 30000000);
  for (unsigned long i = 0; i < n; i++) free(v_keep(malloc(64)));
  ssize_t ignored = write(STDOUT_FILENO, "finished\n", 9);
  (void)ignored;
  return 0;
}
