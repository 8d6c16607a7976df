/*
 * Three sites whose figures are known by construction, large enough for a
 * sample to estimate them (`memsift run --sample-rate`):
 *   leak_pages   leaks 4,000 blocks of 4,096 B        16,384,000 B
 *   leak_small   leaks 400,000 blocks of 64 B         25,600,000 B
 *   churn        200,000 x (512 B allocated, freed)  102,400,000 B allocated, 0 leaked
 * Each site is its own noinline function, so each is one stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *volatile sink;

__attribute__((noinline)) static void leak_pages(void) {
  for (int i = 0; i < 4000; i++) sink = malloc(4096);
}

__attribute__((noinline)) static void leak_small(void) {
  for (int i = 0; i < 400000; i++) sink = malloc(64);
}

__attribute__((noinline)) static void churn(void) {
  for (int i = 0; i < 200000; i++) {
    char *p = malloc(512);
    p[0] = (char)i;
    sink = p;
    free(p);
  }
}

int main(void) {
  leak_pages();
  churn();
  leak_small();
  char line[128];
  int n = snprintf(line, sizeof line, "{\"leaked\": %d, \"allocated\": %d}\n", 16384000 + 25600000,
                   16384000 + 25600000 + 102400000);
  ssize_t ignored = write(STDOUT_FILENO, line, (size_t)n);
  (void)ignored;
  return 0;
}
