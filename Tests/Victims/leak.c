/*
 * Leaks exactly N blocks of M bytes, with a temporary block of T bytes
 * allocated and freed on top of them, so that the peak is N*M + T.
 *
 * usage: leak N M [T]      (T defaults to 4096)
 */
#include "victim.h"

int main(int argc, char **argv) {
  unsigned long n = v_arg(argc, argv, 1, 10);
  unsigned long m = v_arg(argc, argv, 2, 100);
  unsigned long t = v_arg(argc, argv, 3, 4096);
  if (n > V_MAX_LIVE - 1) v_die("N too large");
  for (unsigned long i = 0; i < n; i++) {
    char *p = v_alloc(V_MALLOC, malloc(m), m);
    if (m) p[0] = (char)i;
  }
  if (t) {
    char *top = v_alloc(V_MALLOC, malloc(t), t);
    top[t - 1] = 1;
    v_free(top);
  }
  v_json_begin();
  v_json_tally();
  v_json_end();
  return 0;
}
