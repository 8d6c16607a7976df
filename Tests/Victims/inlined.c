/*
 * malloc inside an always_inline function, inlined into a noinline one;
 * built with -O2. The report must show the inlined function as its own
 * frame (inlined, with the malloc's line) and then the function it was
 * inlined into (with the line of the inlined call).
 *
 * usage: inlined N     leaks N blocks of 64 bytes
 */
#include <stdlib.h>

void *volatile inlined_sink;

static inline __attribute__((always_inline)) char *make_block(unsigned long size) {
  char *p = malloc(size); /* @site:make_block.malloc */
  if (!p) abort();
  p[size - 1] = 1;
  return p;
}

__attribute__((noinline)) void fill(unsigned long n) {
  for (unsigned long i = 0; i < n; i++) {
    char *p = make_block(64); /* @site:fill.make_block */
    inlined_sink = p;
  }
}

int main(int argc, char **argv) {
  unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10;
  fill(n);
  inlined_sink = NULL;
  return 0;
}
