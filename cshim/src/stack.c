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

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>

#define MS_STACK_SLOTS_LOG2 20u
#define MS_SKIP_MAX 8u

static ms_idtable_t g_stacks;

int ms_stack_setup(void) {
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
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

static uint32_t ms_stack_intern(void *const *frames, uint32_t depth, const ms_py_raw_frame_t *py, uint32_t py_depth) {
    /* The module epoch is in the key: equal return addresses in a library
     * loaded after a dlclose make a different stack. */
    uint64_t epoch = ms_load_relaxed(&g_module_epoch);
    ms_hash_t h = ms_hash_start(depth ^ ((uint64_t)py_depth << 16) ^ (epoch << 32));
    ms_hash_words(&h, frames, depth);
    for (uint32_t i = 0; i < py_depth; i++) {
        ms_hash_add(&h, (uint64_t)(uintptr_t)py[i].code ^ py[i].identity);
        ms_hash_add(&h, (uint64_t)(uint32_t)py[i].instr | ((uint64_t)py[i].flags << 32));
    }
    h = ms_hash_finish(h);
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
    return id;
}

void ms_stack_after_fork(void) { ms_idtable_after_fork(&g_stacks); }

/* Native frames, innermost first, without the shim's own (the hooks at the
 * top, our __libc_start_main wrapper near the bottom): at most `limit`,
 * from an unwind of at most `limit + extra` frames. */
static uint32_t ms_unwind(void **frames, uint32_t limit, uint32_t extra) {
    int n = ms_backtrace(frames, (int)(limit + extra));
    uint32_t depth = 0;
    for (int i = 0; i < n && depth < limit; i++) {
        uintptr_t ip = (uintptr_t)frames[i];
        if (ip >= g_self_begin && ip < g_self_end) continue;
        frames[depth++] = frames[i];
    }
    return depth;
}

/* The shim's own frames above the caller's: the hook, the event writer,
 * the capture. */
#define MS_SHIM_FRAMES 3u

/* How deep under the innermost evaluation frame a Python allocation is
 * (allocator, object constructor, the bytecode's C helper): usually 2-9
 * frames. unw_backtrace walks as many frames as it is asked for, so the
 * unwind is tried short, then longer, before the whole depth. */
static const uint32_t ms_py_probes[] = {6, 14};

uint32_t ms_stack_capture(void) {
    void *frames[MS_MAX_DEPTH + MS_SKIP_MAX];
    ms_py_raw_frame_t py[MS_PY_MAX_DEPTH];
    uint32_t py_depth = ms_python_walk(py, MS_PY_MAX_DEPTH);
    uint32_t depth = 0;
    /* Above the innermost evaluation frame the Python frames say where we
     * are; the native frames there (the interpreter calling itself) are
     * the most costly part of the unwind and the least telling. */
    for (uint32_t p = 0; py_depth && g_python_eval_end && !depth && p < 2; p++) {
        uint32_t probe = ms_py_probes[p] < g_config.depth ? ms_py_probes[p] : g_config.depth;
        uint32_t n = ms_unwind(frames, probe, MS_SHIM_FRAMES);
        for (uint32_t i = 0; i < n && !depth; i++) {
            uintptr_t ip = (uintptr_t)frames[i];
            if (ip >= g_python_eval_begin && ip < g_python_eval_end) depth = i + 1;
        }
    }
    if (depth == 0) depth = ms_unwind(frames, g_config.depth, MS_SKIP_MAX);
    return ms_stack_intern(frames, depth, py, py_depth);
}
