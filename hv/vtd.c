/* DMA-remapping unit driver (VT-d spec 3.4 legacy-mode tables, 6.5 register-based
 * invalidation, 7.3 primary fault logging, 10.4 registers). */
#include "vtd.h"
#include <stddef.h>
#include <string.h>
#include "../lib/log.h"

#define PG 4096ull
#define SL_R 1ull
#define SL_W 2ull
#define SL_PS (1ull << 7)
#define HV_DID 1 /* domain 0 is reserved when CAP.CM = 1 (6.1) */
#define LOG_MAX 64 /* fault lines per unit; later faults are counted only */

static uint32_t rd32(struct vtd_unit *u, unsigned o) { return u->regs->rd32(u, o); }
static uint64_t rd64(struct vtd_unit *u, unsigned o) { return u->regs->rd64(u, o); }
static void wr32(struct vtd_unit *u, unsigned o, uint32_t v) { u->regs->wr32(u, o, v); }
static void wr64(struct vtd_unit *u, unsigned o, uint64_t v) { u->regs->wr64(u, o, v); }

unsigned vtd_levels(const struct vtd_unit *u)
{
    unsigned sagaw = VTD_CAP_SAGAW(u->cap);
    return sagaw & 4 ? 4 : sagaw & 2 ? 3 : 0; /* bit 2: 48-bit 4-level, bit 1: 39-bit 3-level */
}

unsigned vtd_width(const struct vtd_unit *u)
{
    unsigned w = vtd_levels(u) == 4 ? 48 : 39, m = VTD_CAP_MGAW(u->cap);
    return m < w ? m : w;
}

const char *vtd_probe(struct vtd_unit *u)
{
    if (!u->poll_spins)
        u->poll_spins = 10000000;
    u->ver = rd32(u, VTD_VER);
    u->cap = rd64(u, VTD_CAP);
    u->ecap = rd64(u, VTD_ECAP);
    uint32_t gsts = rd32(u, VTD_GSTS);
    if (u->cap == 0 || u->cap == ~0ull)
        return "no registers at its base (CAP reads 0 or all ones)";
    if (gsts & VTD_GCMD_TE)
        return "translation already enabled by the firmware (pre-boot DMA protection): left as it is";
    /* Register-based invalidation must not be used while queued invalidation is on (6.5). */
    if (gsts & VTD_GCMD_QIE)
        return "queued invalidation already enabled by the firmware: left as it is";
    if (gsts & VTD_GCMD_IRE)
        return "interrupt remapping already enabled by the firmware: left as it is";
    if (!vtd_levels(u))
        return "no 3- or 4-level second-level tables (CAP.SAGAW)";
    u->levels = vtd_levels(u);
    return NULL;
}

/* Polls until (reg & mask) == want; 0, or -1 after poll_spins reads. */
static int poll32(struct vtd_unit *u, unsigned off, uint32_t mask, uint32_t want)
{
    for (unsigned i = 0; i < u->poll_spins; i++) {
        if ((rd32(u, off) & mask) == want)
            return 0;
        __builtin_ia32_pause();
    }
    return -1;
}

static int poll64(struct vtd_unit *u, unsigned off, uint64_t mask, uint64_t want)
{
    for (unsigned i = 0; i < u->poll_spins; i++) {
        if ((rd64(u, off) & mask) == want)
            return 0;
        __builtin_ia32_pause();
    }
    return -1;
}

/* One command: GSTS with the one-shot status bits masked, plus or minus this bit (10.4.4:
 * GCMD holds no state of its own, so every other enabled feature must be written back). */
static int gcmd(struct vtd_unit *u, uint32_t bit, bool set, uint32_t status_bit, bool status_want)
{
    uint32_t v = rd32(u, VTD_GSTS) & VTD_GSTS_ONESHOT_MASK;
    wr32(u, VTD_GCMD, set ? v | bit : v & ~bit);
    return poll32(u, VTD_GSTS, status_bit, status_want ? status_bit : 0);
}

/* ---- second-level tables ---- */

struct build {
    struct vtd_tables *t;
    unsigned sllps;
    void *(*alloc)(void);
};

static uint64_t *new_table(struct build *b)
{
    uint64_t *p = b->alloc();
    if (!p || ((uintptr_t)p & (PG - 1)))
        return NULL;
    memset(p, 0, PG);
    b->t->pages++;
    return p;
}

/* Fills the table at `level` (1 = PTs) that maps from base. */
static int fill(struct build *b, uint64_t *table, unsigned level, uint64_t base)
{
    struct vtd_tables *t = b->t;
    uint64_t size = 1ull << (12 + 9 * (level - 1));
    for (unsigned i = 0; i < 512; i++) {
        uint64_t a = base + i * size, e = a + size;
        if (a >= t->limit)
            break;
        bool touches_hv = a < t->hv_end && t->hv_base < e;
        bool fits = e <= t->limit;
        bool leaf_ok = level == 1 || (level == 2 && (b->sllps & 1)) || (level == 3 && (b->sllps & 2));
        if (level == 1 && touches_hv)
            continue; /* not present: no device reads or writes hv's page */
        if (!touches_hv && fits && leaf_ok) {
            table[i] = a | SL_R | SL_W | (level > 1 ? SL_PS : 0);
            level == 3 ? t->leaves_1g++ : level == 2 ? t->leaves_2m++ : t->leaves_4k++;
            continue;
        }
        if (level == 1)
            continue;
        uint64_t *sub = new_table(b);
        if (!sub)
            return -1;
        table[i] = (uint64_t)(uintptr_t)sub | SL_R | SL_W; /* a walk ANDs R/W down the levels */
        if (fill(b, sub, level - 1, a))
            return -1;
    }
    return 0;
}

int vtd_build_tables(struct vtd_tables *t, unsigned sllps, void *(*alloc_page)(void))
{
    struct build b = {t, sllps, alloc_page};
    t->pages = t->leaves_1g = t->leaves_2m = t->leaves_4k = 0;
    t->hv_base &= ~(PG - 1);
    t->hv_end = (t->hv_end + PG - 1) & ~(PG - 1);
    uint64_t *top = new_table(&b);
    if (!top || (t->levels != 3 && t->levels != 4))
        return -1;
    t->root_pt = (uint64_t)(uintptr_t)top;
    return fill(&b, top, t->levels, 0);
}

/* ---- enabling ---- */

const char *vtd_enable(struct vtd_unit *u, const struct vtd_tables *t, void *(*alloc_page)(void))
{
    if (t->levels != u->levels)
        return "tables of another depth";
    u->root = alloc_page();
    u->context = alloc_page();
    if (!u->root || !u->context)
        return "out of memory for its root and context tables";
    memset(u->root, 0, PG);
    memset(u->context, 0, PG);
    /* Every device of every bus: one domain, the identity tables (9.3 context entry:
     * TT = 00 untranslated requests only, AW = levels - 2, FPD clear so faults are recorded). */
    for (unsigned i = 0; i < 256; i++) {
        u->context[2 * i] = t->root_pt | 1;
        u->context[2 * i + 1] = (uint64_t)(t->levels - 2) | (uint64_t)HV_DID << 8;
        u->root[2 * i] = (uint64_t)(uintptr_t)u->context | 1; /* 9.1 root entry: P, CTP */
        u->root[2 * i + 1] = 0;
    }
    /* Table writes must reach memory before the unit walks them (6.8). */
    if (VTD_CAP_RWBF(u->cap) && gcmd(u, VTD_GCMD_WBF, true, VTD_GCMD_WBF, false))
        return "write-buffer flush did not complete";
    wr64(u, VTD_RTADDR, (uint64_t)(uintptr_t)u->root); /* TTM = 00: legacy mode */
    if (gcmd(u, VTD_GCMD_SRTP, true, VTD_GCMD_SRTP, true))
        return "root table pointer not latched (GSTS.RTPS)";
    /* Nothing cached may survive (with CAP.CM even not-present entries are cached, 6.1). */
    wr64(u, VTD_CCMD, VTD_CCMD_ICC | VTD_CCMD_GLOBAL);
    if (poll64(u, VTD_CCMD, VTD_CCMD_ICC, 0))
        return "context-cache invalidation did not complete";
    unsigned iotlb = VTD_ECAP_IRO(u->ecap) + 8;
    wr64(u, iotlb, VTD_IOTLB_IVT | VTD_IOTLB_GLOBAL | VTD_IOTLB_DR | VTD_IOTLB_DW);
    if (poll64(u, iotlb, VTD_IOTLB_IVT, 0))
        return "IOTLB invalidation did not complete";
    vtd_poll_faults(u, 0, 0); /* older faults (the firmware's) are not this setup's */
    if (gcmd(u, VTD_GCMD_TE, true, VTD_GCMD_TE, true))
        return "translation did not turn on (GSTS.TES)";
    u->on = true;
    u->faults = u->faults_hv = 0;
    return NULL;
}

const char *vtd_disable(struct vtd_unit *u)
{
    if (gcmd(u, VTD_GCMD_TE, false, VTD_GCMD_TE, false))
        return "translation did not turn off (GSTS.TES)";
    u->on = false;
    return NULL;
}

/* ---- faults ---- */

const char *vtd_fault_reason(unsigned fr)
{
    static const char *const r[] = {
        "?", "root entry not present", "context entry not present", "invalid context entry",
        "address beyond the address width", "write to a page not writable", "read of a page not readable",
        "second-level entry address invalid", "root table address invalid", "context table pointer invalid",
        "reserved bit in root entry", "reserved bit in context entry", "reserved bit in second-level entry",
        "translation type blocked",
    };
    return fr < sizeof(r) / sizeof(r[0]) ? r[fr] : "other";
}

unsigned vtd_poll_faults(struct vtd_unit *u, uint64_t hv_base, uint64_t hv_end)
{
    uint32_t fsts = rd32(u, VTD_FSTS);
    unsigned n = 0, nfr = VTD_CAP_NFR(u->cap), fro = VTD_CAP_FRO(u->cap);
    /* 7.3.1: from FSTS.FRI on, each record with F set, until one without. */
    for (unsigned k = 0, i = (fsts >> 8) & 0xff; (fsts & VTD_FSTS_PPF) && k < nfr; k++, i = (i + 1) % nfr) {
        uint64_t hi = rd64(u, fro + 16 * i + 8);
        if (!(hi >> 63))
            break;
        uint64_t addr = rd64(u, fro + 16 * i) & ~(PG - 1);
        wr32(u, fro + 16 * i + 12, 1u << 31); /* F is write-1-to-clear */
        n++;
        if (!hv_end) /* faults from before hv's setup: cleared, not counted */
            continue;
        unsigned sid = hi & 0xffff, fr = (hi >> 32) & 0xff;
        bool read = (hi >> 62) & 1, in_hv = addr >= hv_base && addr < hv_end;
        u->faults++;
        u->faults_hv += in_hv;
        if (u->logged++ < LOG_MAX)
            log_warn("dma: device %02x:%02x.%u %s %sat 0x%llx blocked (unit %u, fault reason 0x%x: %s)", sid >> 8,
                     (sid >> 3) & 31, sid & 7, read ? "read" : "write", in_hv ? (read ? "of hv memory " : "to hv memory ")
                     : "", (unsigned long long)addr, u->index, fr, vtd_fault_reason(fr));
        else if (u->logged == LOG_MAX + 1)
            log_warn("dma: unit %u: more faults: counted, not logged", u->index);
    }
    if (fsts & VTD_FSTS_PFO) {
        if (hv_end)
            log_warn("dma: unit %u: fault records overflowed: some faults were not recorded", u->index);
        wr32(u, VTD_FSTS, VTD_FSTS_PFO);
    }
    return n;
}
