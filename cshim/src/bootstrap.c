/*
 * Finding the real allocator, and serving the calls that arrive before we
 * have found it.
 *
 * dlsym(RTLD_NEXT, ...) itself calls calloc/malloc, which land back in our
 * hooks while g_real is still empty. Those calls are served from a static
 * bump arena. Arena blocks are deliberately never reclaimed: a handful of
 * small blocks, and free() recognizes and ignores them.
 */
#include "internal.h"
#include "guard.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

ms_real_t g_real;
int g_real_ready;

enum { MS_UNRESOLVED = 0, MS_RESOLVING = 1, MS_RESOLVED = 2 };
static int g_resolve_state;

/* Whoever resolves sets this, so its own re-entrant calls take the arena. */
static MS_TLS int t_resolving;

int ms_resolve(void) {
    if (MS_LIKELY(ms_load_acquire(&g_real_ready))) return 1;
    if (t_resolving) return 0;
    int expected = MS_UNRESOLVED;
    if (ms_cas_acq_rel(&g_resolve_state, &expected, MS_RESOLVING)) {
        t_resolving = 1;
#define MS_RESOLVE(name) g_real.name = (__typeof__(g_real.name))dlsym(RTLD_NEXT, #name)
        MS_RESOLVE(malloc);
        MS_RESOLVE(free);
        MS_RESOLVE(calloc);
        MS_RESOLVE(realloc);
        MS_RESOLVE(reallocarray);
        MS_RESOLVE(posix_memalign);
        MS_RESOLVE(aligned_alloc);
        MS_RESOLVE(memalign);
        MS_RESOLVE(valloc);
        MS_RESOLVE(pvalloc);
        MS_RESOLVE(malloc_usable_size);
#undef MS_RESOLVE
        t_resolving = 0;
        if (!g_real.malloc || !g_real.free || !g_real.calloc || !g_real.realloc) {
            ms_warn("cannot find the real malloc (dlsym RTLD_NEXT failed)", NULL, NULL, NULL);
            __builtin_trap();
        }
        ms_store_release(&g_real_ready, 1);
        ms_store_release(&g_resolve_state, MS_RESOLVED);
        return 1;
    }
    /* Another thread is resolving: it takes a few microseconds. */
    while (!ms_load_acquire(&g_real_ready)) ms_cpu_relax();
    return 1;
}

/* ---- the arena ---- */

#define MS_ARENA_HEADER 16u

_Alignas(4096) unsigned char g_arena[MS_ARENA_SIZE];
static size_t g_arena_used;

size_t ms_arena_size(const void *p) {
    size_t size;
    memcpy(&size, (const unsigned char *)p - MS_ARENA_HEADER, sizeof size);
    return size;
}

void *ms_arena_alloc(size_t size, size_t alignment) {
    if (alignment < MS_ARENA_HEADER) alignment = MS_ARENA_HEADER;
    /* Lock-free bump: the block's size sits in the 16 bytes before it. */
    for (;;) {
        size_t used = ms_load_relaxed(&g_arena_used);
        size_t start = (used + MS_ARENA_HEADER + alignment - 1) & ~(alignment - 1);
        if (size > MS_ARENA_SIZE || start + size > MS_ARENA_SIZE) {
            errno = ENOMEM;
            return NULL;
        }
        size_t end = start + ((size + 15u) & ~(size_t)15u);
        if (ms_cas_acq_rel(&g_arena_used, &used, end)) {
            memcpy(g_arena + start - MS_ARENA_HEADER, &size, sizeof size);
            return g_arena + start;
        }
    }
}
