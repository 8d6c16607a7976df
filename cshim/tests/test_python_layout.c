/*
 * Checks the shim's table of CPython offsets (src/python_layout.h) against
 * the headers of one interpreter: built by `make test-python-layout` once
 * per interpreter found, with that interpreter's include directory.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "internal/pycore_code.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_runtime.h"

#include "../src/python_layout.h"

static int failures;

static void check(const char *field, long shim, long cpython) {
    if (shim == cpython) return;
    printf("  %s: the shim has %ld, CPython %s has %ld\n", field, shim, PY_VERSION, cpython);
    failures++;
}

#define CHECK(field, expected) check(#field, (long)layout->field, (long)(expected))

int main(void) {
    const ms_py_layout_t *layout = ms_py_layout_for(PY_MAJOR_VERSION, PY_MINOR_VERSION);
    if (!layout) {
        printf("FAIL python %s: no layout in src/python_layout.h\n", PY_VERSION);
        return 1;
    }
#if PY_VERSION_HEX < 0x030D0000
    CHECK(tstate_cframe, offsetof(PyThreadState, cframe));
    CHECK(current_frame, offsetof(_PyCFrame, current_frame));
#else
    CHECK(tstate_cframe, -1);
    CHECK(current_frame, offsetof(PyThreadState, current_frame));
#endif
#if PY_VERSION_HEX < 0x030D0000
    CHECK(frame_code, offsetof(_PyInterpreterFrame, f_code));
    CHECK(frame_instr, offsetof(_PyInterpreterFrame, prev_instr));
#else
    CHECK(frame_code, offsetof(_PyInterpreterFrame, f_executable));
    CHECK(frame_instr, offsetof(_PyInterpreterFrame, instr_ptr));
#endif
#if PY_VERSION_HEX < 0x030C0000
    CHECK(frame_is_entry, offsetof(_PyInterpreterFrame, is_entry));
    CHECK(owner_cstack, -1);
#else
    CHECK(frame_is_entry, -1);
    CHECK(owner_cstack, FRAME_OWNED_BY_CSTACK);
#endif
    CHECK(frame_previous, offsetof(_PyInterpreterFrame, previous));
    CHECK(frame_owner, offsetof(_PyInterpreterFrame, owner));
    CHECK(owner_generator, FRAME_OWNED_BY_GENERATOR);
    CHECK(code_firstlineno, offsetof(PyCodeObject, co_firstlineno));
    CHECK(code_filename, offsetof(PyCodeObject, co_filename));
    CHECK(code_qualname, offsetof(PyCodeObject, co_qualname));
    CHECK(code_linetable, offsetof(PyCodeObject, co_linetable));
    CHECK(code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
    CHECK(code_firsttraceable, offsetof(PyCodeObject, _co_firsttraceable));
    CHECK(str_ascii_data, sizeof(PyASCIIObject));
    CHECK(str_compact_data, sizeof(PyCompactUnicodeObject));
    check("MS_PY_OB_TYPE", MS_PY_OB_TYPE, offsetof(PyObject, ob_type));
    check("MS_PY_STR_LENGTH", MS_PY_STR_LENGTH, offsetof(PyASCIIObject, length));
    check("MS_PY_STR_STATE", MS_PY_STR_STATE, offsetof(PyASCIIObject, state));
    check("MS_PY_BYTES_SIZE", MS_PY_BYTES_SIZE, offsetof(PyVarObject, ob_size));
    check("MS_PY_BYTES_DATA", MS_PY_BYTES_DATA, offsetof(PyBytesObject, ob_sval));
    /* The str state bits the shim decodes: kind in bits 2-4, compact 5, ascii 6. */
    PyASCIIObject s;
    unsigned bits;
    memset(&s, 0, sizeof s);
    s.state.kind = 7;
    s.state.compact = 1;
    s.state.ascii = 1;
    memcpy(&bits, &s.state, sizeof bits);
    check("str state bits", 0x7c, (long)bits);
    printf("%s python %s: %s\n", failures ? "FAIL" : "ok", PY_VERSION, failures ? "layout differs" : "layout matches");
    return failures != 0;
}
