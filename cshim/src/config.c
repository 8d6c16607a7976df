/*
 * Configuration from MEMSIFT_* environment variables.
 *
 * Read by scanning `environ` directly: getenv may not be usable this early
 * and nothing here may allocate. A malformed value gets one line on stderr
 * and the default, never a failure of the target.
 */
#include "internal.h"

#include <string.h>
#include <unistd.h>

extern char **environ;

ms_config_t g_config = {
    .depth = 64,
    .ring_bytes = 16u << 20,
    .rss_interval_ns = 100u * 1000000u,
    .run_dir = NULL,
    .output = NULL,
    .python_frames = 1,
    .python_allocators = 1,
};

static size_t ms_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

static const char *ms_env(const char *name) {
    size_t len = ms_strlen(name);
    if (!environ) return NULL;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
    return NULL;
}

/* Parses a decimal in [min, max]; 0 on success, -1 when malformed. */
static int ms_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
    uint64_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        if (v > (max - (uint64_t)(*s - '0')) / 10) return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v < min) return -1;
    *out = v;
    return 0;
}

static uint64_t ms_env_number(const char *name, uint64_t min, uint64_t max, uint64_t fallback, const char *range) {
    const char *s = ms_env(name);
    uint64_t v;
    if (!s) return fallback;
    if (ms_parse_u64(s, min, max, &v) == 0) return v;
    ms_warn(name, "=", s, range);
    return fallback;
}

/* A path that a file name can still be appended to in the shim's 4096-byte
 * buffers: a longer one would be cut short there and name another file. */
static const char *ms_env_path(const char *name) {
    const char *s = ms_env(name);
    if (!s || !*s) return NULL;
    if (ms_strlen(s) > 3900) {
        ms_warn(name, " is longer than 3900 bytes; ignored", NULL, NULL);
        return NULL;
    }
    return s;
}

void ms_config_read(void) {
    g_config.depth = (uint32_t)ms_env_number("MEMSIFT_DEPTH", 1, MS_MAX_DEPTH, g_config.depth,
                                             " is not a whole number from 1 to 512; using 64");
    g_config.ring_bytes =
        ms_env_number("MEMSIFT_RING_MB", 1, 4096, g_config.ring_bytes >> 20, " is not a whole number from 1 to 4096; using 16") << 20;
    g_config.rss_interval_ns = ms_env_number("MEMSIFT_RSS_INTERVAL_MS", 0, 3600000, g_config.rss_interval_ns / 1000000,
                                             " is not a whole number from 0 to 3600000; using 100") *
                               1000000u;
    g_config.collector_pid = (int32_t)ms_env_number("MEMSIFT_COLLECTOR_PID", 0, 0x7fffffff, 0, " is not a PID; ignored");
    g_config.python_frames =
        (int)ms_env_number("MEMSIFT_PYTHON_FRAMES", 0, 1, 1, " is not 0 or 1; using 1 (Python frames on)");
    /* 0: CPython's PyMem_/PyObject_ allocators are not hooked (pymem.c);
     * `memsift run` then sets PYTHONMALLOC=malloc, as before the hooks, so
     * that each object is still a malloc call of its own. */
    g_config.python_allocators = (int)ms_env_number("MEMSIFT_PYTHON_ALLOCATORS", 0, 1, 1,
                                                    " is not 0 or 1; using 1 (CPython's allocators hooked)");
    /* memsift run sets PYTHONMALLOC=malloc for an interpreter whose
     * allocators cannot be hooked, and says so here; pymem.c takes it back
     * for one that can. */
    const char *fallback = ms_env("MEMSIFT_PYTHONMALLOC");
    const char *pythonmalloc = ms_env("PYTHONMALLOC");
    g_config.pythonmalloc_default =
        fallback && strcmp(fallback, "fallback") == 0 && pythonmalloc && strcmp(pythonmalloc, "malloc") == 0;
    g_config.sample_rate = ms_env_number("MEMSIFT_SAMPLE_RATE", 0, (uint64_t)1 << 40, 0,
                                         " is not a whole number of bytes up to 2^40; recording every event");
    g_config.sample_seed = ms_env_number("MEMSIFT_SAMPLE_SEED", 0, UINT64_MAX, 0, " is not a whole number; seeding from the clock");
    const char *native = ms_env("MEMSIFT_PYTHON_NATIVE");
    if (native && strcmp(native, "all") == 0)
        g_config.python_native_all = 1;
    else if (native && strcmp(native, "innermost") != 0)
        ms_warn("MEMSIFT_PYTHON_NATIVE=", native, " is not innermost or all; using innermost", NULL);
    g_config.run_dir = ms_env_path("MEMSIFT_RUN_DIR");
    g_config.output = ms_env_path("MEMSIFT_OUTPUT");
}
