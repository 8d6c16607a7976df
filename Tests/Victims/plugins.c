/*
 * Plugins loaded one after another, each dlclosed before the next is
 * dlopened, so that a later one may be mapped where an earlier one was.
 * Every plugin exports `unsigned long NAME(unsigned long n)` leaking n
 * blocks.
 *
 * usage: plugins PATH:SYMBOL:N...     for each argument in turn: dlopen
 *                                     PATH, call SYMBOL(N), dlclose
 */
#include "victim.h"

#include <dlfcn.h>

int main(int argc, char **argv) {
  v_json_begin();
  for (int i = 1; i < argc; i++) {
    char spec[1024];
    if (strlen(argv[i]) >= sizeof spec) v_die("argument too long");
    strcpy(spec, argv[i]);
    char *symbol = strchr(spec, ':');
    if (!symbol) v_die("usage: plugins PATH:SYMBOL:N...");
    *symbol++ = 0;
    char *count = strchr(symbol, ':');
    if (!count) v_die("usage: plugins PATH:SYMBOL:N...");
    *count++ = 0;
    void *handle = dlopen(spec, RTLD_NOW | RTLD_LOCAL);
    if (!handle) v_die("dlopen failed");
    unsigned long (*work)(unsigned long) = (unsigned long (*)(unsigned long))dlsym(handle, symbol);
    if (!work) v_die("dlsym failed");
    Dl_info info;
    if (!dladdr((void *)work, &info)) v_die("dladdr failed");
    unsigned long bytes = work(strtoul(count, NULL, 10));
    /* Where the plugin was mapped, so the test can tell whether two plugins
     * shared an address. */
    char key[32];
    snprintf(key, sizeof key, "base%d", i);
    v_json_u64(key, (unsigned long long)(uintptr_t)info.dli_fbase);
    snprintf(key, sizeof key, "bytes%d", i);
    v_json_u64(key, bytes);
    if (dlclose(handle) != 0) v_die("dlclose failed");
  }
  v_json_end();
  return 0;
}
