/*
 * A plugin for dlopen.c, built with -shared -fPIC. Its allocations are
 * made from its own code, so their stacks point into a module that is
 * unloaded before the program ends.
 */
#include <stdlib.h>

/* Stores the compiler cannot drop: it may otherwise remove a malloc whose
 * block is never used, or a malloc/free pair. */
static void *volatile sink;

/* Allocates `n` blocks of 777 bytes and keeps them (a leak once the plugin
 * is unloaded). Returns the bytes allocated. */
__attribute__((visibility("default"))) unsigned long plugin_work(unsigned long n) {
  for (unsigned long i = 0; i < n; i++) {
    char *p = malloc(777);
    if (!p) abort();
    p[0] = (char)i;
    sink = p;
  }
  /* And one temporary block per call, allocated and freed here. */
  sink = malloc(5000);
  free(sink);
  return n * 777;
}
