/*
 * A plugin for plugins.c: plugin_alpha.c with other names and sizes, so its
 * malloc is called from the same offset as plugin_alpha's (same code, same
 * layout). Leaks n blocks of 333 bytes.
 */
#include <stdlib.h>

static void *volatile sink;

__attribute__((visibility("default"))) unsigned long plugin_gamma(unsigned long n) {
  for (unsigned long i = 0; i < n; i++) {
    char *p = malloc(333); /* @site:plugin_gamma.malloc */
    if (!p) abort();
    p[0] = (char)i;
    sink = p;
  }
  return n * 333;
}
