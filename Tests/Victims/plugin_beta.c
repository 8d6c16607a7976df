/*
 * A plugin for plugins.c: like plugin_alpha.c, but with work before the
 * malloc, so the call is made from another offset. Leaks n blocks of 222
 * bytes.
 */
#include <stdlib.h>

static void *volatile sink;
static volatile unsigned long padding;

__attribute__((visibility("default"))) unsigned long plugin_beta(unsigned long n) {
  for (unsigned long i = 0; i < n; i++) {
    padding += i;
    padding ^= 0x5a5a;
    padding += 3;
    char *p = malloc(222); /* @site:plugin_beta.malloc */
    if (!p) abort();
    p[0] = (char)i;
    sink = p;
  }
  return n * 222;
}
