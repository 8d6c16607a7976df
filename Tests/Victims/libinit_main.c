/*
 * Frees the block libmsinit.so allocated in its constructor, allocates and
 * frees one of its own, and returns 0. Known by construction: 2 mallocs
 * (12345 and 678 bytes), 2 frees, nothing leaked.
 *
 * usage: libinit_main
 */
#include "victim.h"

extern void *volatile libinit_block;

int main(void) {
  free(libinit_block);
  free(v_keep(malloc(678)));
  v_json_begin();
  v_json_u64("malloc", 2);
  v_json_u64("free", 2);
  v_json_u64("bytes_allocated", 12345 + 678);
  v_json_end();
  return 0;
}
