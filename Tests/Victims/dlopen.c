/*
 * dlopen a plugin, call a function of it that allocates, dlclose it before
 * exiting. The loader allocates for dlopen/dlsym/dlclose on its own; a run
 * with N = 0 does exactly the same except the plugin's N blocks, so the
 * difference between two traces is the plugin's work.
 *
 * usage: dlopen PLUGIN N     the plugin leaks N blocks of 777 bytes, and
 *                            allocates and frees one of 5000 per call
 */
#include "victim.h"

#include <dlfcn.h>

int main(int argc, char **argv) {
  if (argc != 3) v_die("usage: dlopen PLUGIN N");
  unsigned long n = v_arg(argc, argv, 2, 0);
  void *handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!handle) v_die("dlopen failed");
  unsigned long (*work)(unsigned long) = (unsigned long (*)(unsigned long))dlsym(handle, "plugin_work");
  if (!work) v_die("dlsym failed");
  unsigned long bytes = work(n);
  if (dlclose(handle) != 0) v_die("dlclose failed");
  v_json_begin();
  v_json_str("plugin", argv[1]);
  v_json_u64("malloc", n + 1);
  v_json_u64("free", 1);
  v_json_u64("leaked_bytes", bytes);
  v_json_u64("leaked_allocations", n);
  v_json_u64("bytes_allocated", bytes + 5000);
  v_json_end();
  return 0;
}
