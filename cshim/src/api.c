/*
 * The API programs can call: memsift_snapshot (declared in memsift.h).
 */
#include "internal.h"
#include "guard.h"

#include <string.h>

MEMSIFT_EXPORT void memsift_snapshot(const char *label) {
    if (!label || !g_tracing || t_in_shim) return;
    if (!*g_trace_owner && !ms_adopt_after_fork()) return;
    t_in_shim = 1;
    /* A fresh RSS sample, so the label shows the RSS of its own moment. */
    ms_record_rss(ms_now_ns());
    size_t len = strnlen(label, MS_SNAPSHOT_LABEL_MAX);
    uint32_t size = MS_ALIGN8((uint32_t)(sizeof(ms_snapshot_record_t) + len));
    uint8_t *rec = ms_ring_reserve(&g_ring, size, MS_REC_SNAPSHOT, 0);
    ms_snapshot_record_t *r = (ms_snapshot_record_t *)rec;
    r->time_ns = ms_now_ns();
    r->label_len = (uint32_t)len;
    r->source = MS_SNAPSHOT_PROGRAM;
    memcpy(rec + sizeof *r, label, len);
    memset(rec + sizeof *r + len, 0, size - sizeof *r - len);
    ms_ring_commit(rec);
    t_in_shim = 0;
}
