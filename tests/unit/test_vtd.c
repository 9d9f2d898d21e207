/* hv/vtd.c against a small model of a remapping unit's registers: the command sequences
 * (VT-d 10.4.4 GCMD/GSTS, 6.5 invalidation, 6.8 write buffer), the tables the unit walks
 * (a model DMA: root -> context -> second level), and fault recording (7.3). */
#include <stdlib.h>
#include <string.h>
#include "hv/vtd.h"
#include "test_util.h"

#define FRO 0x220 /* CAP.FRO = 0x22, as QEMU's */
#define IRO 0x200 /* ECAP.IRO = 0x20 */
#define NFR 4

struct model {
    uint8_t r[4096];
    uint32_t gsts;
    uint64_t rtaddr_latched;
    char ops[256];      /* the order of commands, e.g. "WBF SRTP CC IOTLB TE " */
    int errors;         /* GCMD writes that change more than one bit, invalidation before SRTP, ... */
    bool stuck_rtps;    /* never sets RTPS (a broken unit) */
    unsigned next_fault;
};

static struct model *M(struct vtd_unit *u) { return u->ctx; }
static void op(struct model *m, const char *s) { strcat(m->ops, s), strcat(m->ops, " "); }

static uint32_t m_rd32(struct vtd_unit *u, unsigned o)
{
    struct model *m = M(u);
    if (o == VTD_GSTS)
        return m->gsts;
    uint32_t v;
    memcpy(&v, m->r + o, 4);
    return v;
}
static uint64_t m_rd64(struct vtd_unit *u, unsigned o)
{
    uint64_t v;
    memcpy(&v, M(u)->r + o, 8);
    return v;
}
static void m_wr32(struct vtd_unit *u, unsigned o, uint32_t v)
{
    struct model *m = M(u);
    if (o == VTD_GCMD) {
        /* Exactly one command per write (10.4.4): the status with one bit flipped. */
        uint32_t keep = m->gsts & VTD_GSTS_ONESHOT_MASK, diff = v ^ keep;
        if (__builtin_popcount(diff) != 1)
            m->errors++, op(m, "BADGCMD");
        if (diff & VTD_GCMD_WBF)
            op(m, "WBF"); /* completes at once: WBFS stays clear */
        if (diff & VTD_GCMD_SRTP) {
            memcpy(&m->rtaddr_latched, m->r + VTD_RTADDR, 8);
            if (!m->stuck_rtps)
                m->gsts |= VTD_GCMD_SRTP;
            op(m, "SRTP");
        }
        if (diff & VTD_GCMD_TE) {
            if (!(m->gsts & VTD_GCMD_SRTP))
                m->errors++; /* translation on without a root table */
            m->gsts = (m->gsts & ~VTD_GCMD_TE) | (v & VTD_GCMD_TE);
            op(m, v & VTD_GCMD_TE ? "TE" : "TEOFF");
        }
        return;
    }
    if (o == VTD_FSTS) {
        uint32_t f;
        memcpy(&f, m->r + o, 4);
        f &= ~(v & VTD_FSTS_PFO);
        memcpy(m->r + o, &f, 4);
        return;
    }
    if (o >= FRO && o < FRO + 16 * NFR && (o - FRO) % 16 == 12) {
        uint32_t hi;
        memcpy(&hi, m->r + o, 4);
        hi &= ~(v & (1u << 31));
        memcpy(m->r + o, &hi, 4);
        bool any = false;
        for (unsigned i = 0; i < NFR; i++)
            any |= m->r[FRO + 16 * i + 15] >> 7;
        if (!any)
            m->r[VTD_FSTS] &= (uint8_t)~VTD_FSTS_PPF;
        return;
    }
    memcpy(m->r + o, &v, 4);
}
static void m_wr64(struct vtd_unit *u, unsigned o, uint64_t v)
{
    struct model *m = M(u);
    if (o == VTD_CCMD && (v & VTD_CCMD_ICC)) {
        if (!(m->gsts & VTD_GCMD_SRTP))
            m->errors++;
        op(m, (v >> 61 & 3) == 1 ? "CC" : "CC?");
        v &= ~VTD_CCMD_ICC;
        v |= (v >> 61 & 3) << 59; /* CAIG: done as asked */
    }
    if (o == IRO + 8 && (v & VTD_IOTLB_IVT)) {
        op(m, (v >> 60 & 3) == 1 ? "IOTLB" : "IOTLB?");
        v &= ~VTD_IOTLB_IVT;
    }
    memcpy(m->r + o, &v, 8);
}
static const struct vtd_regs model_regs = {m_rd32, m_rd64, m_wr32, m_wr64};

/* QEMU-like: SAGAW 39+48, MGAW 48, 2M+1G pages, 4 records at 0x220, IRO 0x200, QI. */
static uint64_t cap_of(unsigned sagaw, unsigned mgaw, unsigned sllps, bool rwbf, bool cm)
{
    return (uint64_t)sagaw << 8 | (uint64_t)(mgaw - 1) << 16 | (uint64_t)(FRO / 16) << 24 | (uint64_t)sllps << 34 |
           (uint64_t)(NFR - 1) << 40 | (uint64_t)rwbf << 4 | (uint64_t)cm << 7;
}

static void unit_init(struct vtd_unit *u, struct model *m, uint64_t cap, uint32_t gsts)
{
    memset(u, 0, sizeof(*u));
    memset(m, 0, sizeof(*m));
    u->regs = &model_regs;
    u->ctx = m;
    u->poll_spins = 100;
    uint64_t ecap = (uint64_t)(IRO / 16) << 8 | 2;
    memcpy(m->r + VTD_VER, &(uint32_t){0x10}, 4);
    memcpy(m->r + VTD_CAP, &cap, 8);
    memcpy(m->r + VTD_ECAP, &ecap, 8);
    m->gsts = gsts;
}

static uint8_t pool[1024][4096] __attribute__((aligned(4096)));
static unsigned pool_used;
static void *alloc_page(void) { return pool_used < 1024 ? pool[pool_used++] : NULL; }

/* The model's DMA: walk root -> context -> second level as the unit would (3.4, 3.6). 0 = ok,
 * else the fault reason; records it like the unit (7.3). */
static unsigned model_dma(struct vtd_unit *u, uint16_t sid, uint64_t addr, bool write)
{
    struct model *m = M(u);
    unsigned fr = 0;
    const uint64_t *root = (const uint64_t *)(uintptr_t)(m->rtaddr_latched & ~0xfffull);
    if (!(m->gsts & VTD_GCMD_TE))
        return 0; /* translation off: DMA goes anywhere */
    uint64_t re = root[2 * (sid >> 8)];
    if (!(re & 1)) {
        fr = 1;
        goto fault;
    }
    const uint64_t *ctx = (const uint64_t *)(uintptr_t)(re & ~0xfffull);
    uint64_t lo = ctx[2 * (sid & 0xff)], hi = ctx[2 * (sid & 0xff) + 1];
    if (!(lo & 1)) {
        fr = 2;
        goto fault;
    }
    unsigned levels = (hi & 7) + 2;
    if ((hi >> 8 & 0xffff) == 0 && VTD_CAP_CM(u->cap)) {
        fr = 3; /* DID 0 reserved under caching mode */
        goto fault;
    }
    if (addr >> (12 + 9 * levels)) {
        fr = 4;
        goto fault;
    }
    uint64_t e = lo;
    for (unsigned l = levels; l >= 1; l--) {
        const uint64_t *t = (const uint64_t *)(uintptr_t)(e & 0xffffffffff000ull);
        e = t[(addr >> (12 + 9 * (l - 1))) & 511];
        if (!(e & (write ? 2 : 1))) {
            fr = write ? 5 : 6;
            goto fault;
        }
        if (l == 1 || (e & (1ull << 7))) {
            uint64_t sz = 1ull << (12 + 9 * (l - 1));
            if ((e & 0xffffffffff000ull & ~(sz - 1)) != (addr & ~(sz - 1)))
                return 99; /* not an identity leaf */
            return 0;
        }
    }
fault:;
    unsigned i = m->next_fault;
    uint8_t *rec = m->r + FRO + 16 * i;
    if (rec[15] >> 7) {
        m->r[VTD_FSTS] |= VTD_FSTS_PFO;
        return fr;
    }
    uint64_t rlo = addr & ~0xfffull, rhi = sid | (uint64_t)fr << 32 | (uint64_t)!write << 62 | 1ull << 63;
    memcpy(rec, &rlo, 8);
    memcpy(rec + 8, &rhi, 8);
    if (!(m->r[VTD_FSTS] & VTD_FSTS_PPF))
        m->r[VTD_FSTS + 1] = (uint8_t)i; /* FRI */
    m->r[VTD_FSTS] |= VTD_FSTS_PPF;
    m->next_fault = (i + 1) % NFR;
    return fr;
}

#define HV_BASE 0x7e00000ull
#define HV_END 0x8600000ull /* 8 MiB, as hv's region on a 256 MiB machine */

static void tables(struct vtd_tables *t, unsigned levels, uint64_t limit, unsigned sllps)
{
    memset(t, 0, sizeof(*t));
    t->levels = levels;
    t->limit = limit;
    t->hv_base = HV_BASE;
    t->hv_end = HV_END;
    CHECK(vtd_build_tables(t, sllps, alloc_page) == 0, "tables built (levels %u sllps %u)", levels, sllps);
}

static void enable_and_translate(unsigned levels, unsigned sllps)
{
    struct vtd_unit u;
    struct model m;
    struct vtd_tables t;
    unit_init(&u, &m, cap_of(levels == 4 ? 6 : 2, 48, sllps, false, false), 0);
    CHECK(vtd_probe(&u) == NULL && u.levels == levels, "probe: usable, %u levels", u.levels);
    tables(&t, levels, 8ull << 30, sllps);
    const char *why = vtd_enable(&u, &t, alloc_page);
    CHECK(why == NULL, "enabled (%s)", why ? why : "");
    CHECK(!strcmp(m.ops, "SRTP CC IOTLB TE "), "sequence: root table, context cache, IOTLB, TE: '%s'", m.ops);
    CHECK(m.errors == 0 && (m.gsts & (VTD_GCMD_TE | VTD_GCMD_SRTP)) == (VTD_GCMD_TE | VTD_GCMD_SRTP) && u.on,
          "one command per GCMD write; GSTS TES and RTPS (errors %d gsts 0x%x)", m.errors, m.gsts);
    CHECK(m.rtaddr_latched == (uint64_t)(uintptr_t)u.root, "RTADDR is the root table, legacy mode");
    uint64_t iotlb;
    memcpy(&iotlb, m.r + IRO + 8, 8);
    CHECK((iotlb & (VTD_IOTLB_DR | VTD_IOTLB_DW)) == (VTD_IOTLB_DR | VTD_IOTLB_DW), "IOTLB flush drains reads/writes");
    if (sllps & 2)
        CHECK(t.leaves_1g >= 6 && t.pages < 12, "1 GiB leaves: %u, %u pages", t.leaves_1g, t.pages);
    else
        CHECK(t.leaves_1g == 0 && t.leaves_2m >= 4 * 512 - 8, "2 MiB leaves only: %u", t.leaves_2m);

    static const uint64_t ok[] = {0, 0x9f000, 0x100000, HV_BASE - 1, HV_END, 0xfed00000, 0xfee00000,
                                  (4ull << 30) + 0x1234, (8ull << 30) - 8};
    for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK(model_dma(&u, 0x00fa, ok[i], true) == 0, "%u levels: write to 0x%llx passes", levels,
              (unsigned long long)ok[i]);
        CHECK(model_dma(&u, 0x0300, ok[i], false) == 0, "%u levels: read of 0x%llx passes", levels,
              (unsigned long long)ok[i]);
    }
    CHECK(model_dma(&u, 0x00fa, HV_BASE, true) == 5, "write to hv's first page blocked");
    CHECK(model_dma(&u, 0x00fa, HV_END - 1, false) == 6, "read of hv's last byte blocked");
    CHECK(model_dma(&u, 0x1008, HV_BASE + 0x345678, true) == 5, "bus 0x10 too");
    CHECK(model_dma(&u, 0x00fa, 8ull << 30, true) == 5, "beyond the limit: not mapped");

    test_log_clear();
    CHECK(vtd_poll_faults(&u, HV_BASE, HV_END) == 4, "4 faults read");
    CHECK(test_log_contains("hv: WARN: dma: device 00:1f.2 write to hv memory at 0x7e00000 blocked (unit 0, fault "
                            "reason 0x5: write to a page not writable)"),
          "the AHCI controller's write logged: %s", test_log_text());
    CHECK(test_log_contains("device 00:1f.2 read of hv memory at 0x85ff000 blocked"), "the read logged");
    CHECK(test_log_contains("device 10:01.0 write to hv memory at 0x8145000"), "bus 0x10 device logged");
    CHECK(test_log_contains("device 00:1f.2 write at 0x200000000 blocked"), "outside hv: no 'hv memory'");
    CHECK(u.faults == 4 && u.faults_hv == 3, "counted: %llu, %llu on hv", (unsigned long long)u.faults,
          (unsigned long long)u.faults_hv);
    CHECK(!(m.r[VTD_FSTS] & VTD_FSTS_PPF), "records cleared: PPF 0");
    test_log_clear();
    CHECK(vtd_poll_faults(&u, HV_BASE, HV_END) == 0 && !test_log_contains("dma:"), "nothing twice");
    /* Wrap-around: FRI at the last record. */
    CHECK(model_dma(&u, 0x00fa, HV_BASE, true) == 5 && model_dma(&u, 0x00fa, HV_BASE + 4096, true) == 5,
          "two more faults");
    CHECK(vtd_poll_faults(&u, HV_BASE, HV_END) == 2, "read across the end of the records");
    /* Overflow: 5 faults, 4 records. */
    for (int i = 0; i < 5; i++)
        model_dma(&u, 0x00fa, HV_BASE, true);
    test_log_clear();
    CHECK(vtd_poll_faults(&u, HV_BASE, HV_END) == 4 && test_log_contains("overflowed"), "overflow logged");
    CHECK(!(m.r[VTD_FSTS] & VTD_FSTS_PFO), "PFO cleared");

    CHECK(vtd_disable(&u) == NULL && !(m.gsts & VTD_GCMD_TE) && m.errors == 0, "disabled with one command");
    CHECK(model_dma(&u, 0x00fa, HV_BASE, true) == 0, "translation off: the DMA goes through (the model is honest)");
}

int main(void)
{
    test_log_capture();
    struct vtd_unit u;
    struct model m;
    struct vtd_tables t;

    enable_and_translate(4, 3); /* QEMU with aw-bits=48: 2M and 1G leaves */
    enable_and_translate(3, 1); /* aw-bits=39, 2M leaves only */

    /* Write-buffer flushing first when CAP.RWBF; caching mode: a nonzero domain id. */
    unit_init(&u, &m, cap_of(4, 39, 3, true, true), 0);
    CHECK(vtd_probe(&u) == NULL && vtd_width(&u) == 39, "4 levels but MGAW 39: width %u", vtd_width(&u));
    tables(&t, 4, 4ull << 30, 3);
    CHECK(vtd_enable(&u, &t, alloc_page) == NULL && !strcmp(m.ops, "WBF SRTP CC IOTLB TE "), "RWBF: '%s'", m.ops);
    CHECK(model_dma(&u, 0x00fa, 0x100000, true) == 0, "CM=1: DID is not 0, the DMA passes");

    /* Units hv leaves alone, each with why; no command written. */
    static const struct { uint32_t gsts; uint64_t cap; const char *why; } bad[] = {
        {VTD_GCMD_TE | VTD_GCMD_SRTP, 0, "already enabled"},
        {VTD_GCMD_QIE, 0, "queued invalidation"},
        {VTD_GCMD_IRE, 0, "interrupt remapping"},
        {0, 1, "SAGAW"},     /* only 2-level (30-bit) */
        {0, 2, "no registers"}, /* CAP reads 0 */
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t cap = bad[i].cap == 1 ? cap_of(1, 39, 1, 0, 0) : bad[i].cap == 2 ? 0 : cap_of(6, 48, 3, 0, 0);
        unit_init(&u, &m, cap, bad[i].gsts);
        const char *why = vtd_probe(&u);
        CHECK(why && strstr(why, bad[i].why), "refused: '%s', want '%s'", why ? why : "(usable)", bad[i].why);
        CHECK(m.ops[0] == 0, "nothing written: '%s'", m.ops);
    }

    /* A unit that never latches the root table: bounded wait, no TE. */
    unit_init(&u, &m, cap_of(6, 48, 3, 0, 0), 0);
    m.stuck_rtps = true;
    CHECK(vtd_probe(&u) == NULL, "probe ok");
    tables(&t, 4, 4ull << 30, 3);
    const char *why = vtd_enable(&u, &t, alloc_page);
    CHECK(why && strstr(why, "RTPS") && !(m.gsts & VTD_GCMD_TE) && !u.on, "stuck RTPS: '%s', TE never set",
          why ? why : "");

    /* Faults left by the firmware: cleared at enable, never counted. */
    unit_init(&u, &m, cap_of(6, 48, 3, 0, 0), 0);
    vtd_probe(&u);
    m.r[FRO + 15] = 0x80;
    m.r[VTD_FSTS] = VTD_FSTS_PPF;
    test_log_clear();
    CHECK(vtd_enable(&u, &t, alloc_page) == NULL && u.faults == 0 && !test_log_contains("dma:") &&
              !(m.r[FRO + 15] & 0x80),
          "old fault cleared silently");

    /* Without 2 MiB leaves the identity map costs one PT per 2 MiB: the allocator's limit shows. */
    memset(&t, 0, sizeof(t));
    t.levels = 3, t.limit = 256ull << 20, t.hv_base = HV_BASE, t.hv_end = HV_END;
    int rc = vtd_build_tables(&t, 0, alloc_page);
    CHECK(rc == 0 && t.leaves_4k == 65536 - 2048 && t.leaves_2m == 0 && t.pages == 2 + 128,
          "4 KiB leaves only: %u leaves, %u pages", t.leaves_4k, t.pages);
    return test_summary();
}
