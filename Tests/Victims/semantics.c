/*
 * Checks that the allocation functions behave as glibc documents, which is
 * what they must still do under the shim: results, errno, contents. Prints
 * every difference on stderr and exits 1 if there was one; on success
 * prints its tally (failed calls included as the report counts them) and
 * exits 0.
 *
 * usage: semantics
 */
#include "victim.h"

#include <errno.h>
#include <malloc.h>

static int failures;

static void fail(const char *what, long long got, long long want) {
  char line[256];
  int n = snprintf(line, sizeof line, "semantics: %s: got %lld, want %lld\n", what, got, want);
  if (write(2, line, (size_t)n) < 0) _exit(99);
  failures++;
}

#define EXPECT(what, got, want)                                  \
  do {                                                           \
    long long got_ = (long long)(got), want_ = (long long)(want); \
    if (got_ != want_) fail(what, got_, want_);                  \
  } while (0)

static int all_bytes(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

/* Read at run time, so the compiler neither folds nor warns about them. */
static volatile size_t size_max = SIZE_MAX;

int main(void) {
  /* malloc(SIZE_MAX) fails with ENOMEM, and is not recorded. */
  errno = 0;
  void *p = malloc(size_max);
  EXPECT("malloc(SIZE_MAX) result", p != NULL, 0);
  EXPECT("malloc(SIZE_MAX) errno", errno, ENOMEM);

  /* calloc whose n * size overflows fails with ENOMEM. */
  errno = 0;
  p = calloc(size_max / 2, 3);
  EXPECT("calloc overflow result", p != NULL, 0);
  EXPECT("calloc overflow errno", errno, ENOMEM);

  /* A failing realloc returns NULL and leaves the old block intact. */
  unsigned char *block = v_alloc(V_MALLOC, malloc(64), 64);
  memset(block, 0x5A, 64);
  errno = 0;
  void *q = realloc(block, size_max - 4096);
  v_realloc_outcome(V_REALLOC, (uintptr_t)block, q, size_max - 4096);
  EXPECT("failing realloc result", q != NULL, 0);
  EXPECT("failing realloc errno", errno, ENOMEM);
  EXPECT("failing realloc kept the contents", all_bytes(block, 64, 0x5A), 1);

  /* An overflowing reallocarray fails before touching the block (the shim
   * does not record it). */
  errno = 0;
  q = reallocarray(block, size_max / 2, 4);
  EXPECT("overflowing reallocarray result", q != NULL, 0);
  EXPECT("overflowing reallocarray errno", errno, ENOMEM);
  EXPECT("overflowing reallocarray kept the contents", all_bytes(block, 64, 0x5A), 1);
  /* The block is still usable: grow it for real. */
  block = v_realloc(block, 128);
  EXPECT("realloc after a failure kept the contents", all_bytes(block, 64, 0x5A), 1);
  v_free(block);

  /* posix_memalign with a bad alignment: EINVAL, errno and *out untouched. */
  void *out = (void *)0x1234;
  errno = EDOM;
  int rc = posix_memalign(&out, 24, 100);
  EXPECT("posix_memalign(24) result", rc, EINVAL);
  EXPECT("posix_memalign(24) errno", errno, EDOM);
  EXPECT("posix_memalign(24) out", (uintptr_t)out, 0x1234);
  rc = posix_memalign(&out, 4, 100); /* not a multiple of sizeof(void *) */
  EXPECT("posix_memalign(4) result", rc, EINVAL);
  EXPECT("posix_memalign(4) errno", errno, EDOM);

  /* posix_memalign that succeeds leaves errno alone too. */
  errno = EDOM;
  rc = posix_memalign(&out, 64, 100);
  EXPECT("posix_memalign(64) result", rc, 0);
  EXPECT("posix_memalign(64) errno", errno, EDOM);
  v_alloc(V_POSIX_MEMALIGN, out, 100);
  v_free(out);

  /* malloc(0) returns a unique block that can be freed. */
  void *zero1 = v_alloc(V_MALLOC, malloc(0), 0);
  void *zero2 = v_alloc(V_MALLOC, malloc(0), 0);
  EXPECT("malloc(0) blocks are distinct", zero1 != zero2, 1);
  v_free(zero1);
  v_free(zero2);

  /* free(NULL) does nothing and keeps errno. */
  errno = EDOM;
  free(NULL);
  EXPECT("free(NULL) errno", errno, EDOM);

  /* errno survives a successful malloc and free. */
  errno = EDOM;
  void *ok = v_alloc(V_MALLOC, malloc(1000), 1000);
  EXPECT("malloc errno", errno, EDOM);
  v_free(ok);
  EXPECT("free errno", errno, EDOM);

  /* calloc zeroes a block even where a freed dirty block was. */
  for (int i = 0; i < 4; i++) {
    unsigned char *dirty = v_alloc(V_MALLOC, malloc(256), 256);
    memset(dirty, 0xFF, 256);
    v_free(dirty);
    unsigned char *clean = v_alloc(V_CALLOC, calloc(16, 16), 256);
    EXPECT("calloc zeroed the block", all_bytes(clean, 256, 0), 1);
    v_free(clean);
  }

  /* malloc_usable_size covers the request. */
  unsigned char *sized = v_alloc(V_MALLOC, malloc(100), 100);
  EXPECT("malloc_usable_size >= 100", malloc_usable_size(sized) >= 100, 1);
  v_free(sized);

  /* realloc keeps contents when it moves a block. */
  unsigned char *moving = v_alloc(V_MALLOC, malloc(32), 32);
  memset(moving, 0x77, 32);
  unsigned char *blocker = v_alloc(V_MALLOC, malloc(32), 32); /* makes growing in place unlikely */
  moving = v_realloc(moving, 1u << 16);
  EXPECT("realloc moved the contents", all_bytes(moving, 32, 0x77), 1);
  v_free(moving);
  v_free(blocker);

  if (failures) return 1;
  v_json_begin();
  v_json_str("result", "ok");
  v_json_tally();
  v_json_end();
  return 0;
}
