/*
 * Loaded-object tracking: every module's path, load bias, PT_LOAD segments
 * and build-id is recorded at start and whenever the set changes (dlopen,
 * dlclose, or an address no known module covers), so symbolization works
 * offline and after dlclose.
 *
 * The known set is a fixed table: the strings and program headers it points
 * to belong to the loader and stay valid while the module is loaded, which
 * lets a fork child re-announce everything without calling into the loader.
 * Scans are serialized by a try-flag, never a lock: a thread that finds a
 * scan running skips its own (the running scan records the same change).
 */
#include "internal.h"
#include "guard.h"

#include <elf.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#define MS_MAX_MODULES 4096u

typedef struct ms_module_s {
    uintptr_t base;
    const char *name; /* the loader's string */
    const ElfW(Phdr) * phdr;
    uint16_t phnum;
    uintptr_t begin, end; /* covered addresses */
    int seen;             /* scan mark */
} ms_module_t;

static ms_module_t g_modules[MS_MAX_MODULES];
static uint32_t g_module_count;
static int g_scan_busy;
uint32_t g_module_epoch;

static char g_exe_path[4096];

static const char *ms_module_path(const char *name) {
    if (name && *name) return name;
    /* The executable has an empty name in the loader's list. */
    if (!g_exe_path[0]) {
        ssize_t n = readlink("/proc/self/exe", g_exe_path, sizeof g_exe_path - 1);
        g_exe_path[n > 0 ? n : 0] = 0;
    }
    return g_exe_path;
}

static void ms_find_build_id(const ms_module_t *m, const uint8_t **id, uint32_t *len) {
    *id = NULL;
    *len = 0;
    for (uint16_t i = 0; i < m->phnum; i++) {
        if (m->phdr[i].p_type != PT_NOTE) continue;
        const uint8_t *p = (const uint8_t *)(m->base + m->phdr[i].p_vaddr);
        const uint8_t *end = p + m->phdr[i].p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)p;
            const uint8_t *name = p + sizeof *note;
            const uint8_t *desc = name + ((note->n_namesz + 3u) & ~3u);
            if (desc + note->n_descsz > end) break;
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                *id = desc;
                *len = note->n_descsz;
                return;
            }
            p = desc + ((note->n_descsz + 3u) & ~3u);
        }
    }
}

static void ms_emit_module(const ms_module_t *m) {
    const char *path = ms_module_path(m->name);
    uint32_t path_len = (uint32_t)strlen(path);
    const uint8_t *build_id;
    uint32_t build_id_len;
    ms_find_build_id(m, &build_id, &build_id_len);
    uint32_t segments = 0;
    for (uint16_t i = 0; i < m->phnum; i++) segments += m->phdr[i].p_type == PT_LOAD;
    uint32_t size =
        MS_ALIGN8((uint32_t)sizeof(ms_module_record_t) + segments * (uint32_t)sizeof(ms_segment_t) + build_id_len + path_len);
    uint8_t *rec = ms_ring_reserve(&g_ring, size, MS_REC_MODULE_LOAD, 0);
    ms_module_record_t *r = (ms_module_record_t *)rec;
    r->time_ns = ms_now_ns();
    r->base = m->base;
    r->segment_count = segments;
    r->build_id_len = build_id_len;
    r->path_len = path_len;
    r->reserved = 0;
    uint8_t *out = rec + sizeof *r;
    for (uint16_t i = 0; i < m->phnum; i++) {
        if (m->phdr[i].p_type != PT_LOAD) continue;
        ms_segment_t seg = {m->phdr[i].p_vaddr, m->phdr[i].p_memsz, m->phdr[i].p_flags, 0};
        memcpy(out, &seg, sizeof seg);
        out += sizeof seg;
    }
    memcpy(out, build_id, build_id_len);
    out += build_id_len;
    memcpy(out, path, path_len);
    out += path_len;
    memset(out, 0, (size_t)(rec + size - out));
    ms_ring_commit(rec);
}

static void ms_emit_unload(uintptr_t base) {
    ms_module_unload_record_t *r =
        (ms_module_unload_record_t *)ms_ring_reserve(&g_ring, sizeof *r, MS_REC_MODULE_UNLOAD, 0);
    r->time_ns = ms_now_ns();
    r->base = base;
    ms_ring_commit((uint8_t *)r);
}

static int ms_scan_one(struct dl_phdr_info *info, size_t size, void *ctx) {
    (void)size;
    (void)ctx;
    for (uint32_t i = 0; i < g_module_count; i++) {
        if (g_modules[i].base == info->dlpi_addr && g_modules[i].phdr == info->dlpi_phdr) {
            g_modules[i].seen = 1;
            return 0;
        }
    }
    ms_module_t m = {info->dlpi_addr, info->dlpi_name, info->dlpi_phdr, info->dlpi_phnum, UINTPTR_MAX, 0, 1};
    for (uint16_t i = 0; i < m.phnum; i++) {
        if (m.phdr[i].p_type != PT_LOAD) continue;
        uintptr_t b = m.base + m.phdr[i].p_vaddr, e = b + m.phdr[i].p_memsz;
        if (b < m.begin) m.begin = b;
        if (e > m.end) m.end = e;
    }
    ms_emit_module(&m);
    /* Past the table's size, modules are still recorded, just not tracked. */
    if (g_module_count < MS_MAX_MODULES) g_modules[g_module_count++] = m;
    return 0;
}

void ms_objects_scan(void) {
    int expected = 0;
    if (!ms_cas_acq_rel(&g_scan_busy, &expected, 1)) return;
    for (uint32_t i = 0; i < g_module_count; i++) g_modules[i].seen = 0;
    dl_iterate_phdr(ms_scan_one, NULL);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < g_module_count; i++) {
        if (g_modules[i].seen)
            g_modules[kept++] = g_modules[i];
        else {
            ms_emit_unload(g_modules[i].base);
            /* The addresses of the unloaded module may come back with other
             * code behind them: stacks interned from now on get new ids. */
            ms_fetch_add_relaxed(&g_module_epoch, 1);
        }
    }
    g_module_count = kept;
    ms_store_release(&g_scan_busy, 0);
}

void ms_objects_reemit(void) {
    for (uint32_t i = 0; i < g_module_count; i++) ms_emit_module(&g_modules[i]);
}

int ms_objects_cover(uintptr_t addr) {
    /* Read without the flag: a racing scan at worst makes us scan again. */
    uint32_t n = ms_load_acquire(&g_module_count);
    for (uint32_t i = 0; i < n; i++)
        if (addr >= g_modules[i].begin && addr < g_modules[i].end) return 1;
    return 0;
}

void ms_objects_after_fork(void) {
    /* A scan another thread was running at fork time does not exist in the
     * child: the flag it held is released here. */
    g_scan_busy = 0;
    ms_objects_reemit();
}
