/*
 * CPython's own allocators, traced where they are called: a hook on the
 * PyMem_ (PYMEM_DOMAIN_MEM) and PyObject_ (PYMEM_DOMAIN_OBJ) domains that
 * calls the allocator it replaced, as tracemalloc and memray's
 * --trace-python-allocators do. Every Python object is then an allocation
 * of its own while pymalloc keeps serving it: no need for
 * PYTHONMALLOC=malloc, which costs the program pymalloc's speed.
 *
 * Installed once, from inside a malloc call (interpose.c) made by a thread
 * that holds the GIL of an initialized interpreter that is not finalizing:
 * CPython's documentation allows a hook that wraps the current allocator to
 * be set at any time after initialization (gh-96997; tracemalloc.start()
 * does it at run time), and holding the GIL keeps every other thread out of
 * the two domains while their function tables change. PyMem_Get/
 * SetAllocator take no lock in 3.11; in 3.12 and 3.13 they take
 * _PyRuntime.allocators.mutex, which CPython never holds while allocating,
 * so a malloc call cannot be inside it.
 *
 * The RAW domain (PyMem_RawMalloc) is malloc itself and stays traced there.
 * The hooks call the previous allocator with the reentrancy guard set, so
 * what it asks of malloc (pymalloc's blocks over 512 bytes, everything under
 * PYTHONMALLOC=malloc) is not recorded a second time: each object is
 * recorded once, by the hook, whatever PYTHONMALLOC says.
 *
 * memsift run sets PYTHONMALLOC=malloc for interpreters we cannot hook
 * (older, newer, free-threaded, MEMSIFT_PYTHON_ALLOCATORS=0), marked as its
 * fallback; detection at start removes it from a process we hook, so that
 * one keeps pymalloc.
 *
 * Blocks allocated before the hooks were installed (objects made during
 * start-up) and freed after are recorded as frees of addresses the trace
 * never saw allocated: the analyzer counts them as unmatched frees.
 * Another hook installed before ours (tracemalloc started during start-up)
 * that is later removed takes ours with it: tracemalloc.stop() sets back the
 * allocators it found. Nothing tells us; from then on objects go untraced.
 *
 * Runs inside the program's allocation calls: must not allocate through a
 * hooked function outside the guard, take a lock, or call stdio.
 */
#include "hooks.h"

#include <errno.h>
#include <stdlib.h>

/* PyMemAllocatorEx (Include/cpython/pymem.h), the same in 3.11-3.13. */
typedef struct ms_py_allocator_s {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
} ms_py_allocator_t;

/* PyMemAllocatorDomain */
#define MS_PYMEM_DOMAIN_MEM 1
#define MS_PYMEM_DOMAIN_OBJ 2

/* The allocators our hooks replaced, MEM then OBJ: each hook's ctx is its
 * domain's slot here. Written once, before the hooks are set. */
static ms_py_allocator_t g_previous[2];

/* 1: a CPython whose allocators we hook is here and the hooks are not
 * installed yet (interpose.c's malloc then calls ms_pymem_install); 2:
 * being installed; 0: installed, or nothing to do. */
int g_pymem_pending;
static int g_pymem_checked;

static int (*g_is_initialized)(void);
static int (*g_is_finalizing)(void);
static void *(*g_attached_state)(void); /* the thread's state when it holds the GIL, else NULL */
static void *(*g_this_thread_state)(void);
static void (*g_get_allocator)(int domain, ms_py_allocator_t *out);
static void (*g_set_allocator)(int domain, ms_py_allocator_t *in);

void ms_pymem_detect(int at_start) {
    if (g_pymem_checked || !g_config.python_allocators) return;
    void *set = ms_lookup("PyMem_SetAllocator");
    if (!set) return; /* not a Python (yet: dlopen calls us again) */
    g_pymem_checked = 1;
    /* The versions python.c reads (3.11-3.13): older and newer ones keep
     * today's tracing, through malloc. Py_Version exists from 3.11 on. */
    const unsigned long *version = ms_lookup("Py_Version");
    if (!version) return;
    unsigned major = (unsigned)(*version >> 24) & 0xff, minor = (unsigned)(*version >> 16) & 0xff;
    if (major != 3 || minor < 11 || minor > 13) return;
    /* A free-threaded build (3.13t) has no GIL to keep other threads out
     * while the tables change; it exports the shared-refcount helpers. */
    if (ms_lookup("_Py_MergeZeroLocalRefcount")) return;
    g_is_initialized = (int (*)(void))ms_lookup("Py_IsInitialized");
    g_is_finalizing = (int (*)(void))ms_lookup("Py_IsFinalizing"); /* 3.13 */
    if (!g_is_finalizing) g_is_finalizing = (int (*)(void))ms_lookup("_Py_IsFinalizing");
    /* 3.13's name; 3.11 and 3.12 export the old one (3.13 only as a macro). */
    g_attached_state = (void *(*)(void))ms_lookup("PyThreadState_GetUnchecked");
    if (!g_attached_state) g_attached_state = (void *(*)(void))ms_lookup("_PyThreadState_UncheckedGet");
    g_this_thread_state = (void *(*)(void))ms_lookup("PyGILState_GetThisThreadState");
    g_get_allocator = (void (*)(int, ms_py_allocator_t *))ms_lookup("PyMem_GetAllocator");
    g_set_allocator = (void (*)(int, ms_py_allocator_t *))set;
    if (!g_is_initialized || !g_is_finalizing || !g_attached_state || !g_this_thread_state || !g_get_allocator) {
        ms_warn("Python: allocator symbols missing; its objects under pymalloc are not traced (set PYTHONMALLOC=malloc)",
                0, 0, 0);
        return;
    }
    /* PYTHONMALLOC=malloc put there by memsift run for an interpreter we
     * could not hook: this one we hook, so it keeps pymalloc. Only before
     * main, while one thread runs and CPython has not read its
     * environment yet; unsetenv only moves environ's pointers. */
    if (at_start && g_config.pythonmalloc_default) unsetenv("PYTHONMALLOC");
    ms_store_release(&g_pymem_pending, 1);
}

/* The hooks. Each calls the previous allocator with the guard set (see the
 * top of the file); the guard also makes a call from inside the shim (none
 * today) go straight through. Recorded with the same function codes as
 * malloc, calloc, realloc and free: the sizes are what the program asked
 * for, as tracemalloc records them. */

static void *ms_pymem_malloc(void *ctx, size_t size) {
    const ms_py_allocator_t *prev = ctx;
    if (t_in_shim) return prev->malloc(prev->ctx, size);
    t_in_shim = 1;
    void *p = prev->malloc(prev->ctx, size);
    t_in_shim = 0;
    ms_after_alloc(MS_FN_MALLOC, p, size);
    return p;
}

static void *ms_pymem_calloc(void *ctx, size_t nelem, size_t elsize) {
    const ms_py_allocator_t *prev = ctx;
    if (t_in_shim) return prev->calloc(prev->ctx, nelem, elsize);
    t_in_shim = 1;
    void *p = prev->calloc(prev->ctx, nelem, elsize);
    t_in_shim = 0;
    /* CPython checked nelem * elsize for overflow before calling us. */
    ms_after_alloc(MS_FN_CALLOC, p, (uint64_t)nelem * elsize);
    return p;
}

/* The free is recorded before the previous allocator releases the block
 * (contract 3: the address cannot be handed out again before its free). */
static void ms_pymem_free(void *ctx, void *p) {
    const ms_py_allocator_t *prev = ctx;
    if (t_in_shim || !p) {
        prev->free(prev->ctx, p);
        return;
    }
    /* With sampling, the free of a block that cannot be sampled is not
     * recorded: the hook's cost is then a byte of the filter. */
    int record = !(g_sample_filter && !ms_sample_maybe(p)) && ms_should_trace();
    t_in_shim = 1;
    if (record) {
        int saved = errno;
        ms_record_free(p);
        errno = saved;
    }
    /* Small code objects live in pymalloc's pools: only here does their
     * death reach python.c (which looks at the block's type first, and
     * leaves errno alone). */
    if (MS_UNLIKELY(g_python_active)) ms_python_freed(p);
    prev->free(prev->ctx, p);
    t_in_shim = 0;
}

/* realloc takes its place in the order before the call and again after it,
 * as interpose.c's does; unlike there, the guard covers the call too (what
 * pymalloc asks of malloc to move a block must not be recorded). */
static void *ms_pymem_realloc(void *ctx, void *p, size_t size) {
    const ms_py_allocator_t *prev = ctx;
    if (t_in_shim) return prev->realloc(prev->ctx, p, size);
    int record = ms_should_trace();
    int saved = errno;
    t_in_shim = 1;
    if (record) {
        ms_record_realloc_begin(MS_FN_REALLOC, p, size);
        errno = saved;
    }
    void *q = prev->realloc(prev->ctx, p, size);
    if (record) {
        saved = errno;
        ms_record_realloc_done(p, q);
        errno = saved;
    }
    t_in_shim = 0;
    return q;
}

void ms_pymem_install(void) {
    if (t_in_shim || g_pymem_pending != 1) return;
    /* Only a thread holding the GIL of a running interpreter: its state is
     * attached (PyThreadState_GetUnchecked, NULL when it does not hold the
     * GIL) and is this OS thread's own. Not before initialization is over
     * (PyMem_SetAllocator would be choosing the allocator, not wrapping
     * it) nor once finalization has begun. Each check is a load; none
     * allocates or locks. */
    if (!g_is_initialized() || g_is_finalizing()) return;
    void *attached = g_attached_state();
    if (!attached || attached != g_this_thread_state()) return;
    int expected = 1;
    if (!ms_cas_acq_rel(&g_pymem_pending, &expected, 2)) return;
    int saved = errno;
    t_in_shim = 1;
    static const int domains[2] = {MS_PYMEM_DOMAIN_MEM, MS_PYMEM_DOMAIN_OBJ};
    for (int i = 0; i < 2; i++) {
        g_get_allocator(domains[i], &g_previous[i]);
        ms_py_allocator_t hook = {&g_previous[i], ms_pymem_malloc, ms_pymem_calloc, ms_pymem_realloc, ms_pymem_free};
        g_set_allocator(domains[i], &hook);
    }
    ms_store_release(&g_pymem_pending, 0);
    t_in_shim = 0;
    errno = saved;
}
