/*
 * Allocation sites at known lines, for the symbolized report. The lines
 * the tests look for carry a marker comment `@site:NAME`; the tests read
 * this file to find their numbers, so editing it moves nothing by hand.
 *
 * usage: sites N
 *   leak_blocks leaks N blocks of 48 bytes; leaf() allocates for two
 *   callers: keep_from_a keeps 3 blocks of 100 bytes (leaked), churn_from_b
 *   frees 5 blocks of 1000 bytes right away (temporary). Nothing else
 *   allocates: the peak is N*48 + 300 + 1000.
 */
#include <stdlib.h>

/* Stores the compiler cannot drop. */
void *volatile sites_sink;

__attribute__((noinline)) void leak_blocks(unsigned long n) {
  for (unsigned long i = 0; i < n; i++) {
    char *p = malloc(48); /* @site:leak_blocks.malloc */
    if (!p) abort();
    p[0] = (char)i;
    sites_sink = p;
  }
}

__attribute__((noinline)) char *leaf(unsigned long size) {
  char *p = malloc(size); /* @site:leaf.malloc */
  if (!p) abort();
  p[0] = 1;
  sites_sink = p;
  return p;
}

__attribute__((noinline)) void keep_from_a(unsigned long n) {
  for (unsigned long i = 0; i < n; i++) sites_sink = leaf(100); /* @site:keep_from_a.leaf */
}

__attribute__((noinline)) void churn_from_b(unsigned long n) {
  for (unsigned long i = 0; i < n; i++) free(leaf(1000)); /* @site:churn_from_b.leaf */
}

int main(int argc, char **argv) {
  unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10;
  leak_blocks(n); /* @site:main.leak_blocks */
  keep_from_a(3);
  churn_from_b(5);
  sites_sink = NULL;
  return 0;
}
