/*
 * Calls every interposed allocation function, with known sizes and
 * alignments, and prints its own tally. Makes no allocation it does not
 * count (no stdio streams), so the trace must match the tally exactly.
 *
 * usage: functions
 */
#include "victim.h"

#include <errno.h>
#include <malloc.h>

static void check_aligned(void *p, size_t alignment) {
  if ((uintptr_t)p % alignment) v_die("block not aligned as asked");
}

int main(void) {
  static const size_t alignments[] = {16, 64, 4096, 65536};
  const size_t nalign = sizeof alignments / sizeof alignments[0];

  /* malloc: 5 sizes, all freed. */
  static const size_t sizes[] = {1, 16, 100, 4096, 1u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = v_alloc(V_MALLOC, malloc(sizes[i]), sizes[i]);
    p[0] = 1;
    v_free(p);
  }

  /* calloc: 3 shapes, all freed (each is zeroed). */
  static const size_t shapes[][2] = {{1, 1}, {10, 100}, {1000, 1000}};
  for (size_t i = 0; i < 3; i++) {
    unsigned char *p = v_alloc(V_CALLOC, calloc(shapes[i][0], shapes[i][1]), shapes[i][0] * shapes[i][1]);
    if (p[shapes[i][0] * shapes[i][1] - 1]) v_die("calloc block not zeroed");
    v_free(p);
  }

  /* realloc: realloc(NULL, 1), a chain growing 1 B -> 1 MiB by doubling
   * (20 steps), one shrink, then realloc(p, 0). */
  unsigned char *chain = v_realloc(NULL, 1);
  chain[0] = 0xAB;
  for (size_t size = 2; size <= (1u << 20); size *= 2) {
    chain = v_realloc(chain, size);
    if (chain[0] != 0xAB) v_die("realloc lost the contents");
  }
  chain = v_realloc(chain, 1000);
  chain = v_realloc(chain, 0); /* frees; glibc returns NULL */
  if (chain) v_die("realloc(p, 0) returned a block");

  /* reallocarray: from NULL, then grown; freed. */
  void *ra = reallocarray(NULL, 10, 8);
  v_realloc_outcome(V_REALLOCARRAY, 0, ra, 80);
  uintptr_t was = (uintptr_t)ra;
  void *rb = reallocarray(ra, 20, 8);
  v_realloc_outcome(V_REALLOCARRAY, was, rb, 160);
  v_free(rb);

  /* The aligned family, at every alignment. */
  for (size_t i = 0; i < nalign; i++) {
    size_t a = alignments[i];
    void *p = NULL;
    if (posix_memalign(&p, a, 100) != 0) v_die("posix_memalign failed");
    v_alloc(V_POSIX_MEMALIGN, p, 100);
    check_aligned(p, a);
    v_free(p);

    p = v_alloc(V_ALIGNED_ALLOC, aligned_alloc(a, 2 * a), 2 * a);
    check_aligned(p, a);
    v_free(p);

    p = v_alloc(V_MEMALIGN, memalign(a, 100), 100);
    check_aligned(p, a);
    v_free(p);
  }

  /* Page-aligned: valloc and pvalloc (the trace records the requested
   * size; pvalloc rounds up to whole pages underneath). */
  static const size_t page_sizes[] = {100, 5000};
  for (size_t i = 0; i < 2; i++) {
    void *p = v_alloc(V_VALLOC, valloc(page_sizes[i]), page_sizes[i]);
    check_aligned(p, 4096);
    v_free(p);
    p = v_alloc(V_PVALLOC, pvalloc(page_sizes[i]), page_sizes[i]);
    check_aligned(p, 4096);
    v_free(p);
  }

  /* free(NULL) is a no-op the shim does not record. */
  v_free(NULL);

  /* Leaks, one through each of three functions: 123 + 63 + 200 bytes. */
  v_alloc(V_MALLOC, malloc(123), 123);
  v_alloc(V_CALLOC, calloc(7, 9), 63);
  v_alloc(V_MEMALIGN, memalign(64, 200), 200);

  v_json_begin();
  v_json_tally();
  v_json_end();
  return 0;
}
