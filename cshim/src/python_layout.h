/*
 * Where CPython keeps what the shim reads: the calling thread's chain of
 * interpreter frames and, per frame, the code object and instruction.
 * Offsets are x86-64 and per minor version (every patch release of a minor
 * version shares them). `make test-python-layout` checks this table against
 * offsetof() in the headers of every interpreter on the machine; docs/
 * python-frames.md says where each field is in CPython's sources.
 */
#ifndef MEMSIFT_PYTHON_LAYOUT_H
#define MEMSIFT_PYTHON_LAYOUT_H

#include <stdint.h>

typedef struct ms_py_layout_s {
    uint8_t major, minor;
    /* PyThreadState -> innermost _PyInterpreterFrame: through tstate->cframe
     * (3.11, 3.12), or directly (tstate_cframe < 0: 3.13). */
    int16_t tstate_cframe;
    int16_t current_frame;
    /* _PyInterpreterFrame */
    int16_t frame_code;     /* f_code; 3.13 f_executable */
    int16_t frame_previous;
    int16_t frame_instr;    /* prev_instr (3.11, 3.12: the executing instruction); 3.13 instr_ptr */
    int16_t frame_owner;
    int16_t frame_is_entry; /* 3.11 only (-1: absent) */
    int8_t owner_cstack;    /* FRAME_OWNED_BY_CSTACK (-1: absent, 3.11) */
    int8_t owner_generator; /* FRAME_OWNED_BY_GENERATOR: never incomplete */
    /* PyCodeObject */
    int16_t code_firstlineno;
    int16_t code_filename;
    int16_t code_qualname;
    int16_t code_linetable;
    int16_t code_adaptive;  /* co_code_adaptive, where instructions start */
    int16_t code_firsttraceable; /* _co_firsttraceable (int): the frame is incomplete before it */
    /* str: data of a compact ASCII string, of a compact non-ASCII one */
    int16_t str_ascii_data;
    int16_t str_compact_data;
} ms_py_layout_t;

/* The same in every supported version: PyObject.ob_type, the length and
 * state of a str (kind in state bits 2-4, compact bit 5, ascii bit 6), and
 * bytes' ob_size and ob_sval. */
#define MS_PY_OB_TYPE 8
#define MS_PY_STR_LENGTH 16
#define MS_PY_STR_STATE 32
#define MS_PY_BYTES_SIZE 16
#define MS_PY_BYTES_DATA 32

static const ms_py_layout_t ms_py_layouts[] = {
    {.major = 3, .minor = 11, .tstate_cframe = 56, .current_frame = 8,
     .frame_code = 32, .frame_previous = 48, .frame_instr = 56, .frame_owner = 69, .frame_is_entry = 68,
     .owner_cstack = -1, .owner_generator = 1,
     .code_firstlineno = 72, .code_filename = 112, .code_qualname = 128, .code_linetable = 136,
     .code_adaptive = 184, .code_firsttraceable = 168, .str_ascii_data = 48, .str_compact_data = 72},
    {.major = 3, .minor = 12, .tstate_cframe = 56, .current_frame = 0,
     .frame_code = 0, .frame_previous = 8, .frame_instr = 56, .frame_owner = 70, .frame_is_entry = -1,
     .owner_cstack = 3, .owner_generator = 1,
     .code_firstlineno = 68, .code_filename = 112, .code_qualname = 128, .code_linetable = 136,
     .code_adaptive = 192, .code_firsttraceable = 176, .str_ascii_data = 40, .str_compact_data = 56},
    {.major = 3, .minor = 13, .tstate_cframe = -1, .current_frame = 72,
     .frame_code = 0, .frame_previous = 8, .frame_instr = 56, .frame_owner = 70, .frame_is_entry = -1,
     .owner_cstack = 3, .owner_generator = 1,
     .code_firstlineno = 68, .code_filename = 112, .code_qualname = 128, .code_linetable = 136,
     .code_adaptive = 200, .code_firsttraceable = 184, .str_ascii_data = 40, .str_compact_data = 56},
};

static inline const ms_py_layout_t *ms_py_layout_for(unsigned major, unsigned minor) {
    for (unsigned i = 0; i < sizeof ms_py_layouts / sizeof ms_py_layouts[0]; i++)
        if (ms_py_layouts[i].major == major && ms_py_layouts[i].minor == minor) return &ms_py_layouts[i];
    return 0;
}

#endif
