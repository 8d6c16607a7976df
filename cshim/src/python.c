/*
 * Python frames in allocation stacks, with no change to the program: at
 * each allocation the shim reads the calling thread's chain of CPython
 * interpreter frames (3.11-3.13) and records, per frame, the code object and
 * the executing instruction. Each code object's name, file and line table go
 * to the trace once (a CODE record); the analyzer computes the lines.
 *
 * Why this is safe without the GIL: the thread reads only its own frame
 * chain, which no other thread changes, from inside a call to malloc (every
 * store the interpreter made before the call is complete). Every frame holds
 * its code object, which holds its strings, so all of it is alive. We call
 * nothing in the interpreter but two lock-free reads
 * (PyGILState_GetThisThreadState is pthread_getspecific; Py_IsFinalizing an
 * atomic load). Design and evidence: docs/python-frames.md.
 */
#include "internal.h"
#include "idtable.h"
#include "python_layout.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

#define LOAD_PTR(base, offset) (*(char *const *)((base) + (offset)))

#define MS_PY_NAME_MAX 4096u
#define MS_PY_LINETABLE_MAX 65536u

/* NULL: this process is not a Python we read (set once, then only read). */
static const ms_py_layout_t *g_py;
static int g_py_checked;
static void *(*g_this_thread_state)(void);
static int (*g_is_finalizing)(void);
static const void *g_code_type, *g_str_type, *g_bytes_type;
/* Whether a frame chain has been read and made sense: until then, one that
 * does not (a layout we got wrong) turns Python frames off with a warning. */
static int g_py_confirmed;
static ms_idtable_t g_codes;

/* dlsym without a trace: a failed lookup leaves an error string malloc'd
 * behind (untraced, we are inside the shim) that the program's next dl* call
 * would free (traced: a free of nothing), and that its dlerror() would
 * report. Two dlerror() calls deliver and then free it, here. */
static void *ms_lookup(const char *name) {
    void *p = dlsym(RTLD_DEFAULT, name);
    if (!p) {
        dlerror();
        dlerror();
    }
    return p;
}

static void ms_find_eval_loop(void);

void ms_python_detect(void) {
    if (ms_load_acquire(&g_py) || g_py_checked || !g_config.python_frames) return;
    void *this_thread_state = ms_lookup("PyGILState_GetThisThreadState");
    if (!this_thread_state) return; /* not a Python (yet: dlopen calls us again) */
    g_py_checked = 1;
    const unsigned long *version = ms_lookup("Py_Version");
    if (!version) {
        ms_warn("Python older than 3.11: its allocations are traced with native frames only", 0, 0, 0);
        return;
    }
    unsigned major = (unsigned)(*version >> 24) & 0xff, minor = (unsigned)(*version >> 16) & 0xff;
    const ms_py_layout_t *layout = ms_py_layout_for(major, minor);
    char v[32];
    size_t at = ms_append_u64(v, 0, sizeof v, major);
    at = ms_append(v, at, sizeof v, ".");
    ms_append_u64(v, at, sizeof v, minor);
    if (!layout) {
        ms_warn("Python ", v, " is not supported (3.11-3.13 are): its allocations are traced with native frames only",
                0);
        return;
    }
    g_this_thread_state = (void *(*)(void))this_thread_state;
    g_is_finalizing = (int (*)(void))ms_lookup("Py_IsFinalizing"); /* 3.13 */
    if (!g_is_finalizing) g_is_finalizing = (int (*)(void))ms_lookup("_Py_IsFinalizing");
    g_code_type = ms_lookup("PyCode_Type");
    g_str_type = ms_lookup("PyUnicode_Type");
    g_bytes_type = ms_lookup("PyBytes_Type");
    if (!g_is_finalizing || !g_code_type || !g_str_type || !g_bytes_type || ms_idtable_init(&g_codes, 18) != 0) {
        ms_warn("Python ", v, ": interpreter symbols missing, native frames only", 0);
        return;
    }
    if (!g_config.python_native_all) ms_find_eval_loop();
    ms_store_release(&g_py, layout);
    ms_store_release(&g_python_active, 1);
}

void ms_python_after_fork(void) {
    if (ms_load_acquire(&g_py)) ms_idtable_after_fork(&g_codes);
}

/* Code objects that died. A code object's address, strings and line table
 * can all be reused by the next one (exec of a string: the same interned
 * "<string>" file name, a line table of the same size), so its fields alone
 * do not tell the two apart. Each address hashes to a generation here; the
 * free of an address a code object had (marked: the low bit) starts a new
 * generation, which is part of the code's identity. Code objects are not
 * GC-tracked, so free() gets exactly their address; under pymalloc small
 * ones never reach free() (memsift run sets PYTHONMALLOC=malloc). Two
 * addresses sharing a slot only cost a spurious new generation. */
#define MS_CODE_GEN_BITS 16
static uint32_t g_code_generations[1u << MS_CODE_GEN_BITS];
int g_python_active;

static inline uint32_t *ms_code_generation(const void *p) {
    return &g_code_generations[ms_address_hash((uintptr_t)p, MS_CODE_GEN_BITS)];
}

void ms_python_freed(const void *p) {
    uint32_t *slot = ms_code_generation(p);
    uint32_t v = ms_load_relaxed(slot);
    if (v & 1) ms_cas_acq_rel(slot, &v, v + 1);
}

/* What tells this code object from any other that had its address. Not
 * avalanched: it only feeds the stack and code keys, which are. */
static inline uint64_t ms_code_identity(const ms_py_layout_t *L, const char *co) {
    uint32_t *slot = ms_code_generation(co);
    uint32_t v = ms_load_relaxed(slot);
    if (MS_UNLIKELY(!(v & 1)) && ms_cas_acq_rel(slot, &v, v | 1)) v |= 1;
    return (uintptr_t)LOAD_PTR(co, L->code_qualname) * 0x9E3779B97F4A7C15ull ^
           (uintptr_t)LOAD_PTR(co, L->code_filename) * 0xC2B2AE3D27D4EB4Full ^
           (uintptr_t)LOAD_PTR(co, L->code_linetable) * 0x165667B19E3779F9ull ^
           ((uint64_t)(v >> 1) << 32 | (uint32_t) * (const int32_t *)(co + L->code_firstlineno));
}

/* The evaluation loop's code: a native frame there is where the Python
 * frames are (stack.c stops unwinding at the first one). */
uintptr_t g_python_eval_begin, g_python_eval_end;

static void ms_find_eval_loop(void) {
    void *eval = ms_lookup("_PyEval_EvalFrameDefault");
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (!eval || !dladdr1(eval, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || sym->st_size == 0) return;
    g_python_eval_begin = (uintptr_t)eval;
    g_python_eval_end = (uintptr_t)eval + sym->st_size;
}

uint32_t ms_python_walk(ms_py_raw_frame_t *out, uint32_t max) {
    const ms_py_layout_t *L = ms_load_acquire(&g_py);
    if (!L) return 0;
    /* NULL: a thread that never ran Python, or before initialization / after
     * finalization. Once finalizing, other threads' states may be freed
     * under them (daemon threads), so nobody reads from then on. */
    const char *ts = g_this_thread_state();
    if (!ts || g_is_finalizing()) return 0;
    const char *f = ts;
    if (L->tstate_cframe >= 0 && !(f = LOAD_PTR(ts, L->tstate_cframe))) return 0;
    f = LOAD_PTR(f, L->current_frame);
    uint32_t n = 0;
    for (; f && n < max; f = LOAD_PTR(f, L->frame_previous)) {
        uint8_t owner = *(const uint8_t *)(f + L->frame_owner);
        if ((int8_t)owner == L->owner_cstack) {
            /* The entry frame of a C call of the evaluation loop: the frame
             * inside it was the first that call ran. */
            if (n) out[n - 1].flags |= MS_PY_FRAME_ENTRY;
            continue;
        }
        const char *co = LOAD_PTR(f, L->frame_code);
        if (!co || LOAD_PTR(co, MS_PY_OB_TYPE) != (const char *)g_code_type) {
            if (!g_py_confirmed) {
                ms_store_release(&g_py, NULL);
                ms_warn("Python frames do not look as expected: native frames only from here on", 0, 0, 0);
                return 0;
            }
            break;
        }
        const char *instr = LOAD_PTR(f, L->frame_instr);
        out[n].code = co;
        out[n].identity = ms_code_identity(L, co);
        out[n].instr = (int32_t)((instr - (co + L->code_adaptive)) / 2);
        out[n].flags = 0;
        if (L->frame_is_entry >= 0 && *(const uint8_t *)(f + L->frame_is_entry)) out[n].flags |= MS_PY_FRAME_ENTRY;
        /* CPython's _PyFrame_IsIncomplete */
        if ((int8_t)owner != L->owner_generator && out[n].instr < *(const int32_t *)(co + L->code_firsttraceable))
            out[n].flags |= MS_PY_FRAME_INCOMPLETE;
        n++;
    }
    if (n && !g_py_confirmed) g_py_confirmed = 1;
    return n;
}

/* A compact str's characters as stored (kind 1, 2 or 4 bytes each); other
 * strings (not compact: never a code object's name in practice) read empty. */
static void ms_py_string(const ms_py_layout_t *L, const char *s, const char **data, uint32_t *len, uint8_t *kind,
                         uint8_t *flags) {
    *data = 0;
    *len = 0;
    *kind = 1;
    if (!s || LOAD_PTR(s, MS_PY_OB_TYPE) != (const char *)g_str_type) return;
    uint32_t state = *(const uint32_t *)(s + MS_PY_STR_STATE);
    uint64_t length = *(const uint64_t *)(s + MS_PY_STR_LENGTH);
    uint8_t k = (uint8_t)((state >> 2) & 7);
    if (!(state & 32) || (k != 1 && k != 2 && k != 4)) return;
    *data = s + ((state & 64) ? L->str_ascii_data : L->str_compact_data);
    *kind = k;
    uint64_t bytes = length * k;
    if (bytes > MS_PY_NAME_MAX) {
        bytes = MS_PY_NAME_MAX / k * k;
        *flags |= MS_CODE_TRUNCATED;
    }
    *len = (uint32_t)bytes;
}

static void ms_emit_code(const ms_py_layout_t *L, uint32_t id, const char *co) {
    uint8_t flags = 0;
    const char *name, *file;
    uint32_t name_len, file_len;
    uint8_t name_kind, file_kind;
    ms_py_string(L, LOAD_PTR(co, L->code_qualname), &name, &name_len, &name_kind, &flags);
    ms_py_string(L, LOAD_PTR(co, L->code_filename), &file, &file_len, &file_kind, &flags);
    const char *table = LOAD_PTR(co, L->code_linetable);
    uint32_t table_len = 0;
    if (table && LOAD_PTR(table, MS_PY_OB_TYPE) == (const char *)g_bytes_type) {
        uint64_t size = *(const uint64_t *)(table + MS_PY_BYTES_SIZE);
        if (size > MS_PY_LINETABLE_MAX) {
            size = MS_PY_LINETABLE_MAX;
            flags |= MS_CODE_TRUNCATED;
        }
        table_len = (uint32_t)size;
    }
    uint32_t size = MS_ALIGN8((uint32_t)sizeof(ms_code_record_t) + name_len + file_len + table_len);
    uint8_t *rec = ms_ring_reserve(&g_ring, size, MS_REC_CODE, 0);
    ms_code_record_t *r = (ms_code_record_t *)rec;
    r->address = (uintptr_t)co;
    r->id = id;
    r->first_line = *(const int32_t *)(co + L->code_firstlineno);
    r->name_len = name_len;
    r->file_len = file_len;
    r->linetable_len = table_len;
    r->name_kind = name_kind;
    r->file_kind = file_kind;
    r->flags = flags;
    r->reserved = 0;
    uint8_t *p = rec + sizeof *r;
    if (name_len) memcpy(p, name, name_len);
    if (file_len) memcpy(p + name_len, file, file_len);
    if (table_len) memcpy(p + name_len + file_len, table + MS_PY_BYTES_DATA, table_len);
    ms_ring_commit(rec);
}

uint32_t ms_python_code_id(const ms_py_raw_frame_t *frame) {
    const ms_py_layout_t *L = ms_load_acquire(&g_py);
    if (!L) return MS_CODE_UNKNOWN;
    ms_hash_t h = ms_hash_start(0x7079);
    ms_hash_add(&h, (uintptr_t)frame->code);
    ms_hash_add(&h, frame->identity);
    h = ms_hash_finish(h);
    int announce;
    uint32_t id = ms_idtable_intern(&g_codes, h.h1, h.h2, &announce);
    if (id > MS_PY_CODE_MASK) return MS_CODE_UNKNOWN;
    if (announce) ms_emit_code(L, id, frame->code);
    return id;
}
