/*
 * Stack capture and the stack table that deduplicates stacks.
 *
 * A stack is the native return addresses (unwind.c) and, in a CPython
 * process, the Python frames the thread is executing. Its key in the table
 * (idtable.h) hashes both; only a new stack pays for resolving its code
 * objects and writing its STACK record.
 */
#include "internal.h"
#include "guard.h"
#include "idtable.h"

#include <string.h>

#define MS_STACK_SLOTS_LOG2 20u
#define MS_SKIP_MAX 8u

static ms_idtable_t g_stacks;

int ms_stack_setup(void) {
    ms_libunwind_setup();
    return ms_idtable_init(&g_stacks, MS_STACK_SLOTS_LOG2);
}

static void ms_emit_stack(uint32_t id, void *const *frames, uint32_t depth, const ms_py_raw_frame_t *py,
                          uint32_t py_depth) {
    /* Code ids first: their CODE records go before the STACK that names them. */
    ms_py_frame_t resolved[MS_PY_MAX_DEPTH];
    for (uint32_t i = 0; i < py_depth; i++) {
        resolved[i].code = ms_python_code_id(&py[i]) | py[i].flags;
        resolved[i].instr = py[i].instr;
    }
    uint32_t size = (uint32_t)(sizeof(ms_stack_record_t) + (size_t)depth * 8u + (size_t)py_depth * sizeof(ms_py_frame_t));
    uint8_t *rec = ms_ring_reserve(&g_ring, size, MS_REC_STACK, 0);
    ms_stack_record_t *r = (ms_stack_record_t *)rec;
    r->id = id;
    r->depth = (uint16_t)depth;
    r->py_depth = (uint16_t)py_depth;
    memcpy(rec + sizeof *r, frames, (size_t)depth * 8u);
    memcpy(rec + sizeof *r + (size_t)depth * 8u, resolved, (size_t)py_depth * sizeof(ms_py_frame_t));
    ms_ring_commit(rec);
}

/* A new stack may hold addresses of a library loaded behind dlopen's back
 * (e.g. by libc itself): make sure its module is recorded. */
static void ms_check_modules(void *const *frames, uint32_t depth) {
    for (uint32_t i = 0; i < depth; i++) {
        if (!ms_objects_cover((uintptr_t)frames[i])) {
            ms_objects_scan();
            return;
        }
    }
}

/* The thread's recently interned stacks: a hot stack's id without a probe
 * of the shared table (a cache miss in 24 MiB on nearly every event). An
 * entry holds a published id, so it is the table's answer; it counts only
 * in the generation it was made in (a fork child announces its stacks
 * again through the table). */
#define MS_STACK_MEMO_SLOTS 64u
typedef struct ms_stack_memo_s {
    uint64_t h1, h2;
    uint32_t id, generation;
} ms_stack_memo_t;
static MS_TLS ms_stack_memo_t t_stack_memo[MS_STACK_MEMO_SLOTS];

static uint32_t ms_stack_intern(void *const *frames, uint32_t depth, const ms_py_raw_frame_t *py, uint32_t py_depth) {
    /* The module epoch is in the key: equal return addresses in a library
     * loaded after a dlclose make a different stack. */
    uint64_t epoch = ms_load_relaxed(&g_module_epoch);
    ms_hash_t h = ms_hash_start(depth ^ ((uint64_t)py_depth << 16) ^ (epoch << 32));
    ms_hash_words(&h, frames, depth);
    /* A Python frame is three whole words (code, identity, instr|flags),
     * hashed like the return addresses. */
    _Static_assert(sizeof(ms_py_raw_frame_t) == 3 * sizeof(uint64_t), "ms_py_raw_frame_t is three words");
    ms_hash_words(&h, py, 3u * py_depth);
    h = ms_hash_finish(h);
    uint32_t generation = ms_load_relaxed(&g_generation);
    /* Not for Python stacks: the executing instruction is part of them, so
     * they repeat too rarely for 64 entries, and a miss costs more than it
     * saves (perf annotate: 6% of ms_stack_capture on data_service.py). */
    ms_stack_memo_t *m = &t_stack_memo[h.h1 & (MS_STACK_MEMO_SLOTS - 1)];
    if (!py_depth && m->h1 == h.h1 && m->h2 == h.h2 && m->generation == generation) return m->id;
    int announce;
    uint32_t id = ms_idtable_intern(&g_stacks, h.h1, h.h2, &announce);
    if (id == 0) {
        ms_fetch_add_relaxed(&g_ring.header->stack_table_full, 1);
        return MS_STACK_UNKNOWN;
    }
    if (announce) {
        ms_check_modules(frames, depth);
        ms_emit_stack(id, frames, depth, py, py_depth);
    }
    if (!py_depth) *m = (ms_stack_memo_t){h.h1, h.h2, id, generation};
    return id;
}

void ms_stack_after_fork(void) {
    ms_idtable_after_fork(&g_stacks);
    ms_libunwind_after_fork();
}

/* The raw return addresses (shim frames included), at most `max`, cut
 * after the first one in [stop_begin, stop_end). Not inlined: how many
 * shim frames a walk starts with is part of what the probes below mean. */
static __attribute__((noinline)) uint32_t ms_unwind(void **frames, uint32_t max, uintptr_t stop_begin,
                                                    uintptr_t stop_end) {
    int n = ms_backtrace_until(frames, (int)max, stop_begin, stop_end);
    return n > 0 ? (uint32_t)n : 0;
}

static inline int ms_is_shim(const void *ip) {
    return (uintptr_t)ip >= g_self_begin && (uintptr_t)ip < g_self_end;
}

/* Native frames, innermost first, without the shim's own (the hooks at the
 * top, our __libc_start_main wrapper near the bottom): at most `limit`, of
 * the `n` raw ones, moved to the front of `frames`. */
static uint32_t ms_keep_native(void **frames, uint32_t n, uint32_t limit) {
    uint32_t depth = 0;
    for (uint32_t i = 0; i < n && depth < limit; i++) {
        if (ms_is_shim(frames[i])) continue;
        frames[depth++] = frames[i];
    }
    return depth;
}

/* The shim's own frames above the caller's: the hook, the event writer,
 * the capture. */
#define MS_SHIM_FRAMES 3u

/* How deep under the innermost evaluation frame a Python allocation is
 * (allocator, object constructor, the bytecode's C helper): usually 2-9
 * frames. A stack is cut there when an unwind of `probe + MS_SHIM_FRAMES`
 * frames finds it among its first `probe` native ones, for the first probe
 * then the second; otherwise the stack is the whole native depth. One walk,
 * stopped at the first evaluation frame, answers every probe. */
static const uint32_t ms_py_probes[] = {6, 14};

uint32_t ms_stack_capture(void) {
    void *frames[MS_MAX_DEPTH + MS_SKIP_MAX];
    ms_py_raw_frame_t py[MS_PY_MAX_DEPTH];
    uint32_t py_depth = ms_python_walk(py, MS_PY_MAX_DEPTH);
    uint32_t full = g_config.depth + MS_SKIP_MAX, depth = 0;
    /* Above the innermost evaluation frame the Python frames say where we
     * are; the native frames there (the interpreter calling itself) are
     * the most costly part of the unwind and the least telling. */
    if (py_depth && g_python_eval_end) {
        uint32_t n = ms_unwind(frames, full, g_python_eval_begin, g_python_eval_end);
        uintptr_t last = n ? (uintptr_t)frames[n - 1] : 0;
        if (last >= g_python_eval_begin && last < g_python_eval_end) {
            uint32_t native_before = 0;
            for (uint32_t i = 0; i + 1 < n; i++) native_before += !ms_is_shim(frames[i]);
            for (uint32_t p = 0; p < 2 && !depth; p++) {
                uint32_t probe = ms_py_probes[p] < g_config.depth ? ms_py_probes[p] : g_config.depth;
                if (n - 1 < probe + MS_SHIM_FRAMES && native_before < probe) depth = ms_keep_native(frames, n, probe);
            }
            /* Deeper than the probes reach: the whole native stack. */
            if (!depth) depth = ms_keep_native(frames, ms_unwind(frames, full, 0, 0), g_config.depth);
        } else {
            depth = ms_keep_native(frames, n, g_config.depth);
        }
    } else {
        depth = ms_keep_native(frames, ms_unwind(frames, full, 0, 0), g_config.depth);
    }
#ifdef MS_UNWIND_CHECK
    /* The probes as separate walks, as they used to be made: same stack. */
    if (py_depth && g_python_eval_end) {
        void *probed[MS_MAX_DEPTH + MS_SKIP_MAX];
        uint32_t d = 0;
        for (uint32_t p = 0; !d && p < 2; p++) {
            uint32_t probe = ms_py_probes[p] < g_config.depth ? ms_py_probes[p] : g_config.depth;
            uint32_t n = ms_keep_native(probed, ms_unwind(probed, probe + MS_SHIM_FRAMES, 0, 0), probe);
            for (uint32_t i = 0; i < n && !d; i++)
                if ((uintptr_t)probed[i] >= g_python_eval_begin && (uintptr_t)probed[i] < g_python_eval_end) d = i + 1;
        }
        if (!d) d = ms_keep_native(probed, ms_unwind(probed, full, 0, 0), g_config.depth);
        if (d != depth || memcmp(probed, frames, d * sizeof(void *)) != 0) __builtin_trap();
    }
#endif
    return ms_stack_intern(frames, depth, py, py_depth);
}
