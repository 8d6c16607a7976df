/*
 * A plugin for plugins.c (-shared -fPIC): plugin_alpha leaks n blocks of
 * 111 bytes. plugin_beta.c does the same from a different offset;
 * plugin_gamma.c from the very same offset (its code is this file's with
 * other names and sizes).
 */
#include <stdlib.h>

static void *volatile sink;

__attribute__((visibility("default"))) unsigned long plugin_alpha(unsigned long n) {
  for (unsigned long i = 0; i < n; i++) {
    char *p = malloc(111); /* @site:plugin_alpha.malloc */
    if (!p) abort();
    p[0] = (char)i;
    sink = p;
  }
  return n * 111;
}
