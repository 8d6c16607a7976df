/*
 * The fast native unwinder (x86-64): the return addresses of the calling
 * thread, the same ones unw_backtrace gives, in about a quarter of its time.
 *
 * Each return address has an unwind rule, read once from the module's DWARF
 * call-frame information (.eh_frame, found through .eh_frame_hdr) and kept
 * in a lock-free cache shared by all threads: where the frame's CFA is
 * (RSP or RBP plus a constant; frame-pointer code is simply the RBP case)
 * and where the caller's RBP was saved. A walk is then two loads and a
 * cache hit per frame.
 *
 * Anything the fast path does not handle exactly as libunwind would (no
 * unwind information, a signal frame, a DWARF expression, a return address
 * not at CFA-8, an odd offset) is cached as "fall back", and that capture
 * is redone by unw_backtrace from the start: the fast path never produces
 * a stack libunwind would not have produced. Building with
 * MS_UNWIND_CHECK compares every fast walk with unw_backtrace.
 *
 * Runs inside malloc: no allocation (the cache is mmap'd), no locks of our
 * own; a cache miss calls dl_iterate_phdr, as libunwind's own misses do.
 */
#include "internal.h"
#include "guard.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#if defined(__x86_64__)

#include <link.h>
#include <string.h>

/* ---- the rule cache ---- */

/* One 64-bit word per entry, so a reader never sees half of another
 * thread's write: the return address in the low 47 bits (user-space code
 * addresses on x86-64), the rule in the high 17. 0 is an empty slot. */
#define MS_IP_BITS 47u
#define MS_IP_MASK ((1ull << MS_IP_BITS) - 1)
/* Rule bits: kind (2), saved-RBP slot (4), CFA offset / 8 (11). */
#define MS_RULE_RSP 1u     /* CFA = RSP + off */
#define MS_RULE_RBP 2u     /* CFA = RBP + off */
#define MS_RULE_SPECIAL 3u /* off 0: fall back to libunwind; off 1: outermost frame */
#define MS_RULE(kind, rbp_slot, off8) ((uint64_t)(kind) | (uint64_t)(rbp_slot) << 2 | (uint64_t)(off8) << 6)
#define MS_RULE_FALLBACK MS_RULE(MS_RULE_SPECIAL, 0, 0)
#define MS_RULE_LAST MS_RULE(MS_RULE_SPECIAL, 0, 1)
/* push %rbp; mov %rsp,%rbp: CFA = RBP + 16, caller's RBP at CFA - 16. */
#define MS_RULE_FRAME_POINTER MS_RULE(MS_RULE_RBP, 2, 2)
#define MS_RULE_KIND(r) ((unsigned)(r) & 3u)
#define MS_RULE_RBP_SLOT(r) ((unsigned)((r) >> 2) & 15u)
#define MS_RULE_OFF(r) ((uintptr_t)(((r) >> 6) & 2047u) * 8u)

#define MS_RULES_LOG2 16u
#define MS_RULE_PROBES 4u

typedef struct ms_rule_table_s {
    uint64_t *slots;
    uint32_t epoch; /* g_module_epoch the rules were read under */
} ms_rule_table_t;

/* Replaced (never freed) when a module is unloaded: its addresses may come
 * back with other code behind them. A thread still walking with the old
 * table finishes with rules that were right when it started; the old
 * mapping is deliberately leaked for that reason (dlclose is rare, and
 * only touched pages cost memory). */
static ms_rule_table_t *g_rules;
static ms_rule_table_t g_rule_tables[64];
static uint32_t g_rule_table_count;

static ms_rule_table_t *ms_rules(void) {
    ms_rule_table_t *t = ms_load_acquire(&g_rules);
    uint32_t epoch = ms_load_relaxed(&g_module_epoch);
    if (MS_LIKELY(t && t->epoch == epoch)) return t;
    /* Claim a descriptor; past 64 unload epochs, stop caching (every walk
     * falls back to libunwind). */
    uint32_t n = ms_fetch_add_relaxed(&g_rule_table_count, 1);
    if (n >= sizeof g_rule_tables / sizeof g_rule_tables[0]) return NULL;
    uint64_t *slots = ms_map_table(sizeof(uint64_t) << MS_RULES_LOG2);
    if (!slots) return NULL;
    ms_rule_table_t *fresh = &g_rule_tables[n];
    fresh->slots = slots;
    fresh->epoch = epoch;
    /* Whoever publishes last wins; a loser's table is simply unused. */
    ms_store_release(&g_rules, fresh);
    return fresh;
}

static inline uint64_t ms_rule_slot(uint64_t ip) { return (ip * 0x9E3779B97F4A7C15ull) >> (64 - MS_RULES_LOG2); }

/* ---- reading DWARF call-frame information ---- */

#define DW_EH_PE_omit 0xff
#define DW_REG_RBP 6u
#define DW_REG_RSP 7u
#define DW_REG_RA 16u

typedef struct ms_reader_s {
    const uint8_t *p, *end;
    int bad;
} ms_reader_t;

static uint64_t ms_uleb(ms_reader_t *r) {
    uint64_t v = 0;
    unsigned shift = 0;
    while (r->p < r->end) {
        uint8_t b = *r->p++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t ms_sleb(ms_reader_t *r) {
    int64_t v = 0;
    unsigned shift = 0;
    while (r->p < r->end) {
        uint8_t b = *r->p++;
        if (shift < 64) v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
            return v;
        }
    }
    r->bad = 1;
    return 0;
}

static uint64_t ms_fixed(ms_reader_t *r, unsigned bytes) {
    if (r->bad || (size_t)(r->end - r->p) < bytes) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, bytes); /* little-endian */
    r->p += bytes;
    return v;
}

/* A pointer in DW_EH_PE encoding `enc`: absolute or pc-relative, the
 * formats compilers emit. Others (text/data/function-relative, aligned,
 * indirect) set bad: the caller falls back. */
static uint64_t ms_encoded(ms_reader_t *r, uint8_t enc) {
    const uint8_t *at = r->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00: v = ms_fixed(r, 8); break;                               /* absptr */
    case 0x01: v = ms_uleb(r); break;                                   /* uleb128 */
    case 0x02: v = ms_fixed(r, 2); break;                               /* udata2 */
    case 0x03: v = ms_fixed(r, 4); break;                               /* udata4 */
    case 0x04: v = ms_fixed(r, 8); break;                               /* udata8 */
    case 0x09: v = (uint64_t)ms_sleb(r); break;                         /* sleb128 */
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)ms_fixed(r, 2); break;   /* sdata2 */
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)ms_fixed(r, 4); break;   /* sdata4 */
    case 0x0c: v = ms_fixed(r, 8); break;                               /* sdata8 */
    default: r->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += (uint64_t)(uintptr_t)at; break; /* pcrel */
    default: r->bad = 1; return 0;
    }
    if (enc & 0x80) r->bad = 1; /* indirect */
    return v;
}

/* What a CFA program says about the registers the walk needs. */
enum { MS_REG_SAME = 0, MS_REG_OFFSET, MS_REG_UNDEFINED, MS_REG_OTHER };
typedef struct ms_reg_rule_s {
    uint8_t how;
    int64_t offset;
} ms_reg_rule_t;

typedef struct ms_cfa_state_s {
    uint64_t cfa_reg;
    int64_t cfa_off;
    int cfa_expr;
    ms_reg_rule_t rbp, rsp, ra;
} ms_cfa_state_t;

typedef struct ms_cie_s {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    int has_aug_data;
    int signal_frame;
    const uint8_t *insns, *insns_end;
} ms_cie_t;

static ms_reg_rule_t *ms_reg_of(ms_cfa_state_t *s, uint64_t reg, uint64_t ra_reg) {
    if (reg == DW_REG_RBP) return &s->rbp;
    if (reg == DW_REG_RSP) return &s->rsp;
    if (reg == ra_reg) return &s->ra;
    return NULL;
}

/* Runs a CFA program from `loc` up to and including the instructions at
 * location `pc`, except a DW_CFA_restore_state there: libunwind's reading
 * (its run_cfi_program, given the return address), which this must
 * reproduce exactly. `init`: the state after the CIE's program
 * (DW_CFA_restore), NULL while running it. Returns 0, or -1 for anything
 * not understood. */
static int ms_run_cfa(const ms_cie_t *cie, const uint8_t *p, const uint8_t *end, uint64_t loc, uint64_t pc,
                      ms_cfa_state_t *s, const ms_cfa_state_t *init) {
    ms_cfa_state_t stack[8];
    unsigned depth = 0;
    ms_reader_t r = {p, end, 0};
    while (r.p < r.end && !r.bad) {
        uint8_t op = *r.p++;
        uint64_t reg, delta = 0;
        int64_t off;
        ms_reg_rule_t *rule;
        switch (op >> 6) {
        case 1: delta = (op & 0x3f) * cie->code_align; goto advance;
        case 2:
            reg = op & 0x3f;
            off = (int64_t)ms_uleb(&r) * cie->data_align;
            if ((rule = ms_reg_of(s, reg, cie->ra_reg))) *rule = (ms_reg_rule_t){MS_REG_OFFSET, off};
            continue;
        case 3:
            reg = op & 0x3f;
            if ((rule = ms_reg_of(s, reg, cie->ra_reg))) {
                if (!init) return -1;
                *rule = *ms_reg_of((ms_cfa_state_t *)init, reg, cie->ra_reg);
            }
            continue;
        }
        switch (op) {
        case 0x00: continue; /* nop */
        case 0x01: {         /* set_loc */
            uint64_t to = ms_encoded(&r, cie->fde_enc);
            if (r.bad) return -1;
            loc = to;
            if (loc > pc) return 0;
            continue;
        }
        case 0x02: delta = ms_fixed(&r, 1) * cie->code_align; goto advance;
        case 0x03: delta = ms_fixed(&r, 2) * cie->code_align; goto advance;
        case 0x04: delta = ms_fixed(&r, 4) * cie->code_align; goto advance;
        case 0x05: /* offset_extended */
            reg = ms_uleb(&r);
            off = (int64_t)ms_uleb(&r) * cie->data_align;
            if ((rule = ms_reg_of(s, reg, cie->ra_reg))) *rule = (ms_reg_rule_t){MS_REG_OFFSET, off};
            continue;
        case 0x11: /* offset_extended_sf */
            reg = ms_uleb(&r);
            off = ms_sleb(&r) * cie->data_align;
            if ((rule = ms_reg_of(s, reg, cie->ra_reg))) *rule = (ms_reg_rule_t){MS_REG_OFFSET, off};
            continue;
        case 0x2f: /* GNU_negative_offset_extended */
            reg = ms_uleb(&r);
            off = -(int64_t)ms_uleb(&r) * cie->data_align;
            if ((rule = ms_reg_of(s, reg, cie->ra_reg))) *rule = (ms_reg_rule_t){MS_REG_OFFSET, off};
            continue;
        case 0x06: /* restore_extended */
            reg = ms_uleb(&r);
            if ((rule = ms_reg_of(s, reg, cie->ra_reg))) {
                if (!init) return -1;
                *rule = *ms_reg_of((ms_cfa_state_t *)init, reg, cie->ra_reg);
            }
            continue;
        case 0x07: /* undefined */
            if ((rule = ms_reg_of(s, ms_uleb(&r), cie->ra_reg))) *rule = (ms_reg_rule_t){MS_REG_UNDEFINED, 0};
            continue;
        case 0x08: /* same_value */
            if ((rule = ms_reg_of(s, ms_uleb(&r), cie->ra_reg))) *rule = (ms_reg_rule_t){MS_REG_SAME, 0};
            continue;
        case 0x09: /* register */
            reg = ms_uleb(&r);
            ms_uleb(&r);
            if ((rule = ms_reg_of(s, reg, cie->ra_reg))) *rule = (ms_reg_rule_t){MS_REG_OTHER, 0};
            continue;
        case 0x14: /* val_offset */
        case 0x15: /* val_offset_sf */
            reg = ms_uleb(&r);
            if (op == 0x14) ms_uleb(&r); else ms_sleb(&r);
            if ((rule = ms_reg_of(s, reg, cie->ra_reg))) *rule = (ms_reg_rule_t){MS_REG_OTHER, 0};
            continue;
        case 0x10: /* expression */
        case 0x16: /* val_expression */
            reg = ms_uleb(&r);
            delta = ms_uleb(&r);
            if (r.bad || delta > (uint64_t)(r.end - r.p)) return -1;
            r.p += delta;
            if ((rule = ms_reg_of(s, reg, cie->ra_reg))) *rule = (ms_reg_rule_t){MS_REG_OTHER, 0};
            continue;
        case 0x0a: /* remember_state */
            if (depth == sizeof stack / sizeof stack[0]) return -1;
            stack[depth++] = *s;
            continue;
        case 0x0b: /* restore_state: the CFA rule is restored too (as libunwind and libgcc do) */
            if (depth == 0) return -1;
            if (loc < pc) *s = stack[--depth];
            continue;
        case 0x0c: /* def_cfa */
            s->cfa_reg = ms_uleb(&r);
            s->cfa_off = (int64_t)ms_uleb(&r);
            s->cfa_expr = 0;
            continue;
        case 0x12: /* def_cfa_sf */
            s->cfa_reg = ms_uleb(&r);
            s->cfa_off = ms_sleb(&r) * cie->data_align;
            s->cfa_expr = 0;
            continue;
        case 0x0d: s->cfa_reg = ms_uleb(&r); continue;           /* def_cfa_register */
        case 0x0e: s->cfa_off = (int64_t)ms_uleb(&r); continue;  /* def_cfa_offset */
        case 0x13: s->cfa_off = ms_sleb(&r) * cie->data_align; continue; /* def_cfa_offset_sf */
        case 0x0f:                                                /* def_cfa_expression */
            delta = ms_uleb(&r);
            if (r.bad || delta > (uint64_t)(r.end - r.p)) return -1;
            r.p += delta;
            s->cfa_expr = 1;
            continue;
        case 0x2e: ms_uleb(&r); continue; /* GNU_args_size: only matters to landing pads */
        default: return -1;
        }
    advance:
        loc += delta;
        if (loc > pc) return 0;
    }
    return r.bad ? -1 : 0;
}

static int ms_parse_cie(const uint8_t *cie_start, ms_cie_t *cie) {
    ms_reader_t r = {cie_start, cie_start + 4, 0};
    uint64_t len = ms_fixed(&r, 4);
    if (len == 0 || len == 0xffffffffu) return -1;
    r.end = r.p + len;
    if (ms_fixed(&r, 4) != 0) return -1; /* CIE id */
    uint64_t version = ms_fixed(&r, 1);
    if (version != 1 && version != 3) return -1;
    const char *aug = (const char *)r.p;
    while (r.p < r.end && *r.p) r.p++;
    if (r.p >= r.end) return -1;
    r.p++;
    cie->code_align = ms_uleb(&r);
    cie->data_align = ms_sleb(&r);
    cie->ra_reg = version == 1 ? ms_fixed(&r, 1) : ms_uleb(&r);
    cie->fde_enc = 0; /* absptr */
    cie->has_aug_data = 0;
    cie->signal_frame = 0;
    if (aug[0] == 'z') {
        cie->has_aug_data = 1;
        uint64_t aug_len = ms_uleb(&r);
        if (r.bad || aug_len > (uint64_t)(r.end - r.p)) return -1;
        const uint8_t *aug_end = r.p + aug_len;
        for (const char *a = aug + 1; *a; a++) {
            if (*a == 'R') {
                cie->fde_enc = (uint8_t)ms_fixed(&r, 1);
            } else if (*a == 'L') {
                ms_fixed(&r, 1);
            } else if (*a == 'P') {
                uint8_t enc = (uint8_t)ms_fixed(&r, 1);
                ms_reader_t skip = r;
                ms_encoded(&skip, enc & 0x7f); /* indirect personality: skip the pointer all the same */
                if (skip.bad) return -1;
                r.p = skip.p;
            } else if (*a == 'S') {
                cie->signal_frame = 1;
            } else {
                return -1;
            }
        }
        r.p = aug_end;
    } else if (aug[0] != 0) {
        return -1;
    }
    if (r.bad || cie->code_align == 0) return -1;
    cie->insns = r.p;
    cie->insns_end = r.end;
    return 0;
}

/* The FDE that covers pc, from a module's .eh_frame_hdr search table. */
static const uint8_t *ms_find_fde(const uint8_t *hdr, uint64_t pc) {
    if (hdr[0] != 1) return NULL;
    uint8_t ptr_enc = hdr[1], count_enc = hdr[2], table_enc = hdr[3];
    /* The search table gcc and lld write: 4-byte entries relative to hdr. */
    if (table_enc != 0x3b || count_enc == DW_EH_PE_omit || ptr_enc == DW_EH_PE_omit) return NULL;
    ms_reader_t r = {hdr + 4, hdr + 64, 0};
    ms_encoded(&r, ptr_enc);
    uint64_t count = ms_encoded(&r, count_enc);
    if (r.bad || count == 0) return NULL;
    const int32_t *table = (const int32_t *)r.p;
    int64_t rel = (int64_t)(pc - (uint64_t)(uintptr_t)hdr);
    uint64_t lo = 0, hi = count;
    if (rel < table[0]) return NULL;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (table[2 * mid] <= rel)
            lo = mid;
        else
            hi = mid;
    }
    return hdr + table[2 * lo + 1];
}

typedef struct ms_find_hdr_s {
    uintptr_t pc;
    const uint8_t *hdr;
    int found;
} ms_find_hdr_t;

static int ms_find_hdr_cb(struct dl_phdr_info *info, size_t size, void *ctx) {
    (void)size;
    ms_find_hdr_t *f = ctx;
    const uint8_t *hdr = NULL;
    int covers = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uintptr_t b = info->dlpi_addr + ph->p_vaddr;
            if (f->pc >= b && f->pc < b + ph->p_memsz) covers = 1;
        } else if (ph->p_type == PT_GNU_EH_FRAME) {
            hdr = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        }
    }
    if (!covers) return 0;
    f->found = 1;
    f->hdr = hdr;
    return 1;
}

/* The rule for return address `ra`, as libunwind reads it: the FDE that
 * covers the call instruction (ra - 1), its program run up to ra. */
static uint64_t ms_compute_rule(uint64_t ra) {
    uint64_t pc = ra - 1;
    ms_find_hdr_t f = {(uintptr_t)pc, NULL, 0};
    dl_iterate_phdr(ms_find_hdr_cb, &f);
    if (!f.found || !f.hdr) return MS_RULE_FALLBACK;
    const uint8_t *fde = ms_find_fde(f.hdr, pc);
    if (!fde) return MS_RULE_FALLBACK;
    ms_reader_t r = {fde, fde + 8, 0};
    uint64_t len = ms_fixed(&r, 4);
    if (len == 0 || len == 0xffffffffu) return MS_RULE_FALLBACK;
    const uint8_t *fde_end = fde + 4 + len;
    const uint8_t *cie_field = r.p;
    uint32_t cie_off = (uint32_t)ms_fixed(&r, 4);
    if (cie_off == 0) return MS_RULE_FALLBACK; /* a CIE, not an FDE */
    ms_cie_t cie;
    if (ms_parse_cie(cie_field - cie_off, &cie) != 0 || cie.signal_frame) return MS_RULE_FALLBACK;
    r.end = fde_end;
    uint64_t begin = ms_encoded(&r, cie.fde_enc);
    uint64_t range = ms_encoded(&r, cie.fde_enc & 0x0f);
    if (r.bad || pc < begin || pc >= begin + range) return MS_RULE_FALLBACK;
    if (cie.has_aug_data) {
        uint64_t aug_len = ms_uleb(&r);
        if (r.bad || aug_len > (uint64_t)(r.end - r.p)) return MS_RULE_FALLBACK;
        r.p += aug_len;
    }
    /* Before the CIE's program: CFA undefined, RBP and RA "same value". */
    ms_cfa_state_t init = {(uint64_t)-1, 0, 0, {MS_REG_SAME, 0}, {MS_REG_SAME, 0}, {MS_REG_SAME, 0}};
    if (ms_run_cfa(&cie, cie.insns, cie.insns_end, 0, UINT64_MAX, &init, NULL) != 0) return MS_RULE_FALLBACK;
    ms_cfa_state_t s = init;
    if (ms_run_cfa(&cie, r.p, fde_end, begin, ra, &s, &init) != 0) return MS_RULE_FALLBACK;

    /* libunwind ends the walk at a frame whose return address is undefined. */
    if (s.ra.how == MS_REG_UNDEFINED) return MS_RULE_LAST;
    /* The layout the walk assumes: return address at CFA-8, and RSP not
     * restored from anywhere (the CFA is the caller's RSP). */
    if (s.cfa_expr || cie.ra_reg != DW_REG_RA || s.ra.how != MS_REG_OFFSET || s.ra.offset != -8 ||
        s.rsp.how != MS_REG_SAME)
        return MS_RULE_FALLBACK;
    unsigned kind;
    if (s.cfa_reg == DW_REG_RSP)
        kind = MS_RULE_RSP;
    else if (s.cfa_reg == DW_REG_RBP)
        kind = MS_RULE_RBP;
    else
        return MS_RULE_FALLBACK;
    if (s.cfa_off < 8 || s.cfa_off % 8 != 0 || s.cfa_off / 8 > 2047) return MS_RULE_FALLBACK;
    unsigned rbp_slot = 0;
    if (s.rbp.how == MS_REG_OFFSET) {
        if (s.rbp.offset >= 0 || s.rbp.offset % 8 != 0 || -s.rbp.offset / 8 > 15) return MS_RULE_FALLBACK;
        rbp_slot = (unsigned)(-s.rbp.offset / 8);
    } else if (s.rbp.how != MS_REG_SAME) {
        return MS_RULE_FALLBACK;
    }
    return MS_RULE(kind, rbp_slot, (uint64_t)s.cfa_off / 8);
}

static uint64_t ms_rule_for(ms_rule_table_t *t, uint64_t ra) {
    uint64_t home = ms_rule_slot(ra);
    for (uint32_t i = 0; i < MS_RULE_PROBES; i++) {
        uint64_t e = ms_load_relaxed(&t->slots[(home + i) & ((1u << MS_RULES_LOG2) - 1)]);
        if (MS_LIKELY((e & MS_IP_MASK) == ra)) return e >> MS_IP_BITS;
        if (e == 0) break;
    }
    uint64_t rule = ms_compute_rule(ra);
    uint64_t entry = ra | rule << MS_IP_BITS;
    /* An empty slot among the probes, else the home slot is replaced. Two
     * threads computing the same rule write the same word. */
    for (uint32_t i = 0; i < MS_RULE_PROBES; i++) {
        uint64_t *slot = &t->slots[(home + i) & ((1u << MS_RULES_LOG2) - 1)];
        uint64_t expected = 0;
        if (ms_cas_acq_rel(slot, &expected, entry) || (expected & MS_IP_MASK) == ra) return rule;
    }
    ms_store_relaxed(&t->slots[home], entry);
    return rule;
}

/* A per-thread memo in front of the shared table, indexed by where the
 * frame is on the stack: the part of the stack a new capture shares with
 * the previous ones (the outer frames, and callers of hot allocation paths)
 * finds its rules in a few consecutive, recently used cache lines of the
 * thread's own, instead of one cold line of the shared table per frame. In
 * code without frame pointers the rule is on the walk's critical path (the
 * CFA offset), so this is most of what a frame costs there. An entry is the
 * shared table's word (return address and rule); a mismatch goes to the
 * table. Emptied when the shared table is replaced (module unloaded). */
#define MS_MEMO_SLOTS 512u
static MS_TLS uint64_t t_memo[MS_MEMO_SLOTS];
static MS_TLS ms_rule_table_t *t_memo_table;

static inline uint64_t ms_memo_rule(ms_rule_table_t *t, uintptr_t sp, uint64_t ra) {
    uint64_t *m = &t_memo[(sp >> 3) & (MS_MEMO_SLOTS - 1)];
    uint64_t e = *m;
    if (MS_LIKELY((e & MS_IP_MASK) == ra)) return e >> MS_IP_BITS;
    uint64_t rule = ms_rule_for(t, ra);
    /* Frame-pointer rules are not kept: their walk does not wait for the
     * rule (see ms_fast_backtrace), and in deep, varying frame-pointer
     * stacks the memo would mostly be rewritten. */
    if (rule != MS_RULE_FRAME_POINTER) *m = ra | rule << MS_IP_BITS;
    return rule;
}

/* Frames larger than this end the walk as bogus (with rules right for the
 * code, only a frame that big would, and then libunwind reads the same). */
#define MS_MAX_FRAME (1u << 20)

/* The walk. Returns the number of addresses, or -1: redo with libunwind. */
static __attribute__((noinline)) int ms_fast_backtrace(void **out, int max, uintptr_t stop_begin, uintptr_t stop_end) {
    ms_rule_table_t *t = ms_rules();
    if (!t) return -1;
    if (MS_UNLIKELY(t_memo_table != t)) {
        memset(t_memo, 0, sizeof t_memo);
        t_memo_table = t;
    }
    /* Our own frame has a frame pointer (-fno-omit-frame-pointer). */
    const uintptr_t *fp = __builtin_frame_address(0);
    uintptr_t rbp = fp[0], ra = fp[1], sp = (uintptr_t)(fp + 2);
    int n = 0;
    if (max <= 0) return 0;
    /* `ra` is in ms_backtrace_until, which is not reported (see there):
     * the first address recorded is its return address. */
    while (n < max) {
        if (ra > MS_IP_MASK) return -1;
        uint64_t rule = ms_memo_rule(t, sp, ra);
        if (MS_LIKELY(rule == MS_RULE_FRAME_POINTER)) {
            /* The common frame-pointer frame, as its own branch: predicted
             * taken, the CPU reads the next frame from RBP while the rule's
             * cache line is still on its way, and the walk is a chain of
             * stack reads instead of a chain of table misses. */
            if (MS_UNLIKELY(rbp < sp || rbp - sp > MS_MAX_FRAME)) return -1;
            const uintptr_t *frame = (const uintptr_t *)rbp;
            sp = rbp + 16;
            ra = frame[1];
            rbp = frame[0];
        } else {
            unsigned kind = MS_RULE_KIND(rule);
            if (MS_UNLIKELY(kind == MS_RULE_SPECIAL)) {
                if (rule == MS_RULE_LAST) break;
                return -1;
            }
            uintptr_t base = kind == MS_RULE_RSP ? sp : rbp;
            /* A frame pointer below the stack pointer, or a CFA that does not
             * move up the stack by a sane amount: not a frame we can trust. */
            if (MS_UNLIKELY(base < sp || base - sp > MS_MAX_FRAME)) return -1;
            uintptr_t cfa = base + MS_RULE_OFF(rule);
            unsigned slot = MS_RULE_RBP_SLOT(rule);
            if (slot) rbp = *(const uintptr_t *)(cfa - 8u * slot);
            ra = *(const uintptr_t *)(cfa - 8);
            sp = cfa;
        }
        if (ra < 0x4000) break;
        out[n++] = (void *)ra;
        if (MS_UNLIKELY(ra - stop_begin < stop_end - stop_begin)) break;
    }
    return n;
}

/* The first n addresses unw_backtrace gives, cut after the first one in
 * [stop_begin, stop_end) (no cut when the range is empty). */
static int ms_cut_at(void **out, int n, uintptr_t stop_begin, uintptr_t stop_end) {
    for (int i = 0; i < n; i++)
        if ((uintptr_t)out[i] - stop_begin < stop_end - stop_begin) return i + 1;
    return n;
}

/* unw_backtrace from here, without its first address (this function):
 * what it would give called where ms_backtrace_until is called. */
static int ms_unw_backtrace_caller(void **out, int max) {
    void *all[MS_MAX_DEPTH + 16];
    if (max > (int)(sizeof all / sizeof all[0]) - 1) max = (int)(sizeof all / sizeof all[0]) - 1;
    ms_libunwind_enter();
    int n = unw_backtrace(all, max + 1);
    ms_libunwind_leave();
    if (n <= 1) return 0;
    memcpy(out, all + 1, (size_t)(n - 1) * sizeof(void *));
    return n - 1;
}

/* The addresses start with the caller's return address, as unw_backtrace
 * called by the caller would have them: how many of the shim's frames a
 * walk starts with is part of what stack.c's Python probes mean, and they
 * were set for unw_backtrace called from ms_unwind. */
int ms_backtrace_until(void **out, int max, uintptr_t stop_begin, uintptr_t stop_end) {
    int n = ms_fast_backtrace(out, max, stop_begin, stop_end);
#ifdef MS_UNWIND_CHECK
    if (n >= 0) {
        void *check[MS_MAX_DEPTH + 16];
        int m = ms_cut_at(check, ms_unw_backtrace_caller(check, max), stop_begin, stop_end);
        if (m != n || memcmp(check, out, (size_t)n * sizeof(void *)) != 0) __builtin_trap();
    }
#endif
    if (MS_LIKELY(n >= 0)) return n;
    return ms_cut_at(out, ms_unw_backtrace_caller(out, max), stop_begin, stop_end);
}

#else

int ms_backtrace_until(void **out, int max, uintptr_t stop_begin, uintptr_t stop_end) {
    void *all[MS_MAX_DEPTH + 16];
    if (max > (int)(sizeof all / sizeof all[0]) - 1) max = (int)(sizeof all / sizeof all[0]) - 1;
    ms_libunwind_enter();
    int n = unw_backtrace(all, max + 1); /* without this function's own address */
    ms_libunwind_leave();
    for (int i = 1; i < n; i++) {
        out[i - 1] = all[i];
        if ((uintptr_t)all[i] - stop_begin < stop_end - stop_begin) return i;
    }
    return n > 0 ? n - 1 : 0;
}

#endif
