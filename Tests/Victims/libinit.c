/*
 * A shared library that allocates in its constructor, as C++ libraries do
 * for their globals (libstdc++'s emergency exception pool, a global
 * std::string or std::map in any DSO). The loader runs this constructor
 * before the preloaded shim's own (the shim depends on fewer libraries), so
 * a tracer that only starts in its constructor misses the allocation and
 * later sees its free as a free of an unknown block.
 *
 * Built with -shared -fPIC as libmsinit.so and linked into libinit_main.
 */
#include <stdlib.h>

void *volatile libinit_block;

__attribute__((constructor)) static void libinit_start(void) {
  libinit_block = malloc(12345);
  if (!libinit_block) abort();
}
