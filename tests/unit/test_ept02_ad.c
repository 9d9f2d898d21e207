/*
 * Host tests for the accessed and dirty flags of L1's EPT (SDM 29.3.5) as EPT02 emulates
 * them (nested/ept02.c): the EPT12 walk sets A in each entry it uses and D in the leaf for a
 * write, only when the translation succeeds; EPT02 maps a clean page without write access,
 * so the first write faults back to hv. As tests/unit/test_ept02.c, "L1 memory" is one host
 * buffer (host addresses are L1-physical ones) and hv's EPT01 is a callback (identity).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ept12_l1mem.h"
#include "fake_vmcs.h"
#include "nested/caps.h"
#include "nested/ept02.h"
#include "nested/nested_int.h"
#include "tests/unit/test_util.h"
#include "vmx/vmx_bits.h"

#define ULL(x) ((unsigned long long)(x))
#define L1_PAGES L1_MEM_PAGES
#define PHYS 48
#define WB_LEAF (EPT_MT(MT_WB))
#define A EPT_ACCESSED
#define D EPT_DIRTY
#define AD (EPT_ACCESSED | EPT_DIRTY)

static uint64_t eptp12;

static void reset_l1(void)
{
    l1mem_reset();
    eptp12 = L1(0) | 0x5e; /* WB, 4-level, A/D */
}

/* The EPT12 entry for l2 at level (4 = PML4E .. 1 = PTE), or NULL where the walk stops. */
static uint64_t *e12(uint64_t l2, int level)
{
    uint64_t *t = (uint64_t *)(uintptr_t)L1(0);
    for (int l = 4; l > level; l--) {
        uint64_t x = t[(l2 >> (12 + 9 * (l - 1))) & 511];
        if (!(x & EPT_RWX) || (x & EPT_LARGE))
            return NULL;
        t = (uint64_t *)(uintptr_t)(x & EPT_ADDR_MASK);
    }
    return &t[(l2 >> (12 + 9 * (level - 1))) & 511];
}

/* Map l2 at level (1 = 4K, 2 = 2M) with leaf flags; tables RWX unless tflags. */
static uint64_t *map12(uint64_t l2, uint64_t target, int level, uint64_t flags, uint64_t tflags)
{
    uint64_t *t = (uint64_t *)(uintptr_t)L1(0);
    for (int l = 4; l > level; l--) {
        uint64_t *e = &t[(l2 >> (12 + 9 * (l - 1))) & 511];
        if (!*e)
            *e = L1(l1_next++) | (tflags ? tflags : EPT_RWX);
        t = (uint64_t *)(uintptr_t)(*e & EPT_ADDR_MASK);
    }
    uint64_t *leaf = &t[(l2 >> (12 + 9 * (level - 1))) & 511];
    *leaf = target | flags | (level > 1 ? EPT_LARGE : 0);
    return leaf;
}

/* The A/D bits of the EPT12 entries for l2, PML4E first: "A A A AD" ('-' for none). */
static const char *flags12(uint64_t l2)
{
    static char s[32];
    char *p = s;
    for (int l = 4; l >= 1; l--) {
        uint64_t *x = e12(l2, l);
        if (!x)
            break;
        if (p != s)
            *p++ = ' ';
        if (!(*x & AD))
            *p++ = '-';
        if (*x & A)
            *p++ = 'A';
        if (*x & D)
            *p++ = 'D';
        if (*x & EPT_LARGE)
            break;
    }
    *p = 0;
    return s;
}

static uint64_t ept02_entry(const struct ept02 *e, uint64_t l2)
{
    const uint64_t *t = e->pages[0];
    for (int l = 4; l > 1; l--) {
        uint64_t x = t[(l2 >> (12 + 9 * (l - 1))) & 511];
        if (!(x & EPT_RWX))
            return 0;
        t = (const uint64_t *)(uintptr_t)(x & EPT_ADDR_MASK);
    }
    return t[(l2 >> 12) & 511];
}

static unsigned flushes;
static void flush_ept(void) { flushes++; }

static struct ept02 *e02;
static const uint64_t CAPS = EPT_CAP_EXEC_ONLY | EPT_CAP_PWL4 | EPT_CAP_UC | EPT_CAP_WB | EPT_CAP_2M | EPT_CAP_1G |
                             EPT_CAP_AD;

static void fresh(void)
{
    e02 = hv_alloc_page();
    CHECK(ept02_init(e02, EPT02_MAX_PAGES, 4, CAPS, PHYS, l1mem_identity_page) == 0, "init");
    ept02_use(e02, eptp12);
    e02->flush = false;
}

static enum ept02_result fault(uint64_t l2, uint64_t qual, struct ept02_fault *f)
{
    *f = (struct ept02_fault){.l2_gpa = l2, .qual = qual};
    return ept02_fault(e02, f);
}

/* ---- the accessed and dirty flags ---- */

static void test_clean_then_dirty(void)
{
    struct ept02_fault f;
    reset_l1();
    fresh();
    CHECK(e02->eptp == ((uint64_t)(uintptr_t)e02->pages[0] | 0x5e), "EPTP02 with A/D as EPTP12: %llx",
          ULL(e02->eptp));
    map12(0x1000, L1(20), 1, EPT_RWX | WB_LEAF, 0);
    map12(0x2000, L1(21), 1, EPT_RWX | WB_LEAF, 0);
    CHECK(!strcmp(flags12(0x1000), "- - - -"), "EPT12 clean: %s", flags12(0x1000));

    /* A read: accessed flags along the walk, no dirty flag; EPT02 without write access. */
    CHECK(fault(0x1008, 1, &f) == EPT02_FILLED, "read: filled");
    CHECK(!strcmp(flags12(0x1000), "A A A A"), "read: %s", flags12(0x1000));
    CHECK(ept02_entry(e02, 0x1000) == (L1(20) | EPT_R | EPT_X | WB_LEAF), "clean page read-only in EPT02: %llx",
          ULL(ept02_entry(e02, 0x1000)));
    CHECK(!strcmp(flags12(0x2000), "A A A -"), "the neighbour's PTE untouched: %s", flags12(0x2000));

    /* The first write faults on EPT02: dirty flag, write access. */
    CHECK(fault(0x1010, 2 | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE, &f) == EPT02_FILLED, "write: filled");
    CHECK(!strcmp(flags12(0x1000), "A A A AD"), "write: %s", flags12(0x1000));
    CHECK(ept02_entry(e02, 0x1000) == (L1(20) | EPT_RWX | WB_LEAF) && e02->flush,
          "dirty page writable, flushed: %llx", ULL(ept02_entry(e02, 0x1000)));

    /* A write first: both flags at once. */
    CHECK(fault(0x2000, 2, &f) == EPT02_FILLED && !strcmp(flags12(0x2000), "A A A AD") &&
          ept02_entry(e02, 0x2000) == (L1(21) | EPT_RWX | WB_LEAF), "write first: %s", flags12(0x2000));

    /* L1 cleared the flags (and invalidated): a fetch sets A again, D stays clear. */
    *e12(0x2000, 1) &= ~AD;
    *e12(0x2000, 2) &= ~AD;
    CHECK(ept02_invept(e02, 1, eptp12), "INVEPT single-context");
    CHECK(fault(0x2000, 4, &f) == EPT02_FILLED && !strcmp(flags12(0x2000), "A A A A") &&
          ept02_entry(e02, 0x2000) == (L1(21) | EPT_R | EPT_X | WB_LEAF), "fetch after clearing: %s %llx",
          flags12(0x2000), ULL(ept02_entry(e02, 0x2000)));

    /* A leaf L1 made dirty itself: a read gets write access at once. */
    map12(0x3000, L1(22), 1, EPT_RWX | WB_LEAF | D, 0);
    CHECK(fault(0x3000, 1, &f) == EPT02_FILLED && !strcmp(flags12(0x3000), "A A A AD") &&
          ept02_entry(e02, 0x3000) == (L1(22) | EPT_RWX | WB_LEAF), "dirty leaf: %s", flags12(0x3000));

    /* The paging-structure write of L2 (EPTP02 bit 6: the CPU reports it as a write, bit 8
     * clear): the page holding L2's page table becomes dirty. */
    map12(0x4000, L1(23), 1, EPT_R | EPT_W | WB_LEAF, 0);
    CHECK(fault(0x4000, 2 | EPT_QUAL_GLA_VALID, &f) == EPT02_FILLED && !strcmp(flags12(0x4000), "A A A AD"),
          "L2 page walk: %s", flags12(0x4000));
}

static void test_no_flags(void)
{
    struct ept02_fault f;
    reset_l1();
    /* Violations and misconfigurations set nothing, not even in the upper entries. */
    fresh();
    map12(0x1000, L1(20), 1, EPT_R | WB_LEAF, 0);
    CHECK(fault(0x1000, 2 | EPT_QUAL_GLA_VALID, &f) == EPT02_VIOLATION &&
          f.qual12 == (2 | EPT_QUAL_GLA_VALID | EPT_R << 3), "write to R-only: %llx", ULL(f.qual12));
    CHECK(!strcmp(flags12(0x1000), "- - - -"), "violation: %s", flags12(0x1000));
    CHECK(fault(0x5000, 1, &f) == EPT02_VIOLATION && !strcmp(flags12(0x5000), "- - - -"),
          "not-present PTE: %s", flags12(0x5000));
    *map12(0x6000, L1(21), 1, EPT_R, 0) |= EPT_MT(7);
    CHECK(fault(0x6000, 1, &f) == EPT02_MISCONFIG && !strcmp(flags12(0x6000), "- - - -"), "misconfig: %s",
          flags12(0x6000));

    /* Without EPTP12 bit 6: no flags, and a clean page is writable at once (as before). */
    eptp12 &= ~EPTP_AD;
    ept02_use(e02, eptp12);
    CHECK(e02->nused == 1, "A/D enable changed: EPT02 cleared");
    CHECK(!(e02->eptp & EPTP_AD), "EPTP02 without A/D: %llx", ULL(e02->eptp));
    map12(0x7000, L1(22), 1, EPT_RWX | WB_LEAF, 0);
    CHECK(fault(0x7000, 1, &f) == EPT02_FILLED && !strcmp(flags12(0x7000), "- - - -") &&
          ept02_entry(e02, 0x7000) == (L1(22) | EPT_RWX | WB_LEAF), "no A/D: %s %llx", flags12(0x7000),
          ULL(ept02_entry(e02, 0x7000)));
    eptp12 |= EPTP_AD;
    ept02_use(e02, eptp12);
    CHECK(e02->nused == 1 && (e02->eptp & EPTP_AD), "A/D enabled again: cleared, EPTP02 bit 6");
}

static void test_large(void)
{
    struct ept02_fault f;
    reset_l1();
    fresh();
    /* A 2 MiB leaf: A in PML4E and PDPTE, A and D in the PDE. */
    map12(0x40200000, L1(8) & ~0x1fffffull, 2, EPT_RWX | WB_LEAF, 0);
    CHECK(fault(0x40203000, 1, &f) == EPT02_FILLED && !strcmp(flags12(0x40200000), "A A A") &&
          !(ept02_entry(e02, 0x40203000) & EPT_W), "2 MiB read: %s", flags12(0x40200000));
    CHECK(fault(0x403fe000, 2, &f) == EPT02_FILLED && !strcmp(flags12(0x40200000), "A A AD") &&
          (ept02_entry(e02, 0x403fe000) & EPT_W), "2 MiB write: %s", flags12(0x40200000));
    /* The other 4 KiB of that page, read: the leaf is dirty now, so writable at once. */
    CHECK(fault(0x40203000, 1, &f) == EPT02_FILLED && (ept02_entry(e02, 0x40203000) & EPT_W),
          "dirty 2 MiB page: writable");
    /* The CPU's own A/D bits in an EPT02 leaf are no change of the leaf: no flush. */
    *f.leaf |= AD;
    e02->flush = false;
    CHECK(fault(0x40203000, 1, &f) == EPT02_FILLED && !e02->flush, "refill over the CPU's A/D: no flush");
}

/* ---- the capability and the EPTP check ---- */

static void test_caps_ad(void)
{
    struct vmx_msrs hw = {
        .basic = 0x00d810000000002bull, .pinbased = 0x0000007f00000016ull, .procbased = 0xfff9fffe04006172ull,
        .exit = 0x01ffffff00036dfbull, .entry = 0x0003ffff000011fbull, .procbased2 = 0x02177fff00000000ull,
        .ept_vpid = 0x00000f0106334141ull, .misc = 0x300481e5ull, .cr0_fixed0 = 0x80000021,
        .cr0_fixed1 = 0xffffffff, .cr4_fixed0 = 0x2000, .cr4_fixed1 = 0x3767ff,
    };
    struct nested_caps c;
    nested_caps_init(&c, &hw);
    CHECK(c.ept_vpid & EPT_CAP_AD, "A/D offered where the CPU has it: %llx", ULL(c.ept_vpid));
    CHECK(!nested_eptp_problem(&c, 0x5000 | 0x5e, PHYS), "EPTP bit 6 accepted");
    hw.ept_vpid &= ~EPT_CAP_AD;
    nested_caps_init(&c, &hw);
    CHECK(!(c.ept_vpid & EPT_CAP_AD), "not without the CPU's: %llx", ULL(c.ept_vpid));
    const char *why = nested_eptp_problem(&c, 0x5000 | 0x5e, PHYS);
    CHECK(why && strstr(why, "bit 6"), "EPTP bit 6 refused: %s", why ? why : "accepted");
}

/* ---- page-modification logging ---- */

static uint64_t *pml;  /* L1's PML page */
static enum ept02_result pfault(uint64_t l2, uint64_t qual, uint16_t *index, struct ept02_fault *f)
{
    *f = (struct ept02_fault){.l2_gpa = l2, .qual = qual, .pml = true, .pml_address = (uint64_t)(uintptr_t)pml,
                              .pml_index = *index};
    enum ept02_result r = ept02_fault(e02, f);
    *index = f->pml_index;
    return r;
}

static void test_pml(void)
{
    struct ept02_fault f;
    uint16_t index = 511;
    reset_l1();
    fresh();
    pml = (uint64_t *)(uintptr_t)L1(L1_PAGES - 1);
    for (int i = 0; i < 512; i++)
        pml[i] = 0x5a5a;
    for (int i = 0; i < 4; i++)
        map12(0x10000 + 0x1000 * i, L1(20 + i), 1, EPT_RWX | WB_LEAF, 0);

    /* A read sets accessed flags only: nothing logged. A write logs its page, 4 KiB aligned. */
    CHECK(pfault(0x10008, 1, &index, &f) == EPT02_FILLED && index == 511 && pml[511] == 0x5a5a, "read: no entry");
    CHECK(pfault(0x10ff8, 2, &index, &f) == EPT02_FILLED && index == 510 && pml[511] == 0x10000,
          "write: logged at 511 (%llx), index %u", ULL(pml[511]), index);
    CHECK(pfault(0x10010, 2, &index, &f) == EPT02_FILLED && index == 510, "dirty already: nothing logged");

    /* Index 0, then full: the entry at 0, index 0xffff; the next flag to set is a PML-full
     * exit that sets nothing and fills nothing. */
    index = 0;
    CHECK(pfault(0x11000, 2, &index, &f) == EPT02_FILLED && index == 0xffff && pml[0] == 0x11000,
          "index 0: logged (%llx), index %x", ULL(pml[0]), index);
    CHECK(pfault(0x12000, 2 | EPT_QUAL_NMI_UNBLOCK | EPT_QUAL_GLA_VALID, &index, &f) == EPT02_PML_FULL &&
          f.qual12 == EPT_QUAL_NMI_UNBLOCK && index == 0xffff, "full: exit 62, qual %llx", ULL(f.qual12));
    CHECK(!strcmp(flags12(0x12000), "A A A -") && ept02_entry(e02, 0x12000) == 0 && pml[1] == 0x5a5a,
          "full: no flag set, no fill: %s", flags12(0x12000));
    CHECK(pfault(0x13000, 1, &index, &f) == EPT02_PML_FULL, "full: a read needing an accessed flag too");
    /* No flag to set: no log entry needed, no exit (29.3.6: only a flag update examines it). */
    CHECK(pfault(0x10020, 1, &index, &f) == EPT02_FILLED && pfault(0x11000, 2, &index, &f) == EPT02_FILLED,
          "full, flags already set: filled");
    /* L1 empties the log: the write is done and logged. */
    index = 511;
    CHECK(pfault(0x12000, 2, &index, &f) == EPT02_FILLED && index == 510 && pml[511] == 0x12000 &&
          !strcmp(flags12(0x12000), "A A A AD"), "log emptied: %s, index %u", flags12(0x12000), index);
    /* Index 512 is outside 0..511 too. */
    index = 512;
    CHECK(pfault(0x13000, 2, &index, &f) == EPT02_PML_FULL && index == 512, "index 512: full");
    /* A violation is no PML event, even with the log full. */
    map12(0x14000, L1(24), 1, EPT_R | WB_LEAF, 0);
    CHECK(pfault(0x14000, 2, &index, &f) == EPT02_VIOLATION, "violation before PML-full");
    /* A PML address outside L1's RAM: nothing written, the index still counts down. */
    index = 3;
    f = (struct ept02_fault){.l2_gpa = 0x13000, .qual = 2, .pml = true, .pml_address = 1ull << 40, .pml_index = 3};
    CHECK(ept02_fault(e02, &f) == EPT02_FILLED && f.pml_index == 2, "PML page not RAM: index %u", f.pml_index);

    /* Without EPTP12 bit 6 no flags and so no log and no PML-full exit (29.3.6). */
    eptp12 &= ~EPTP_AD;
    ept02_use(e02, eptp12);
    map12(0x15000, L1(25), 1, EPT_RWX | WB_LEAF, 0);
    index = 0xffff;
    CHECK(pfault(0x15000, 2, &index, &f) == EPT02_FILLED && index == 0xffff && !strcmp(flags12(0x15000), "A A A -"),
          "no A/D: PML does nothing");
    eptp12 |= EPTP_AD;
}

/* The VMCS side: vmcs12's PML index, exit 62 for L1. */
static void test_pml_exit(void)
{
    static struct vmcs12 v12;
    static struct nested_caps caps;
    static struct regcache rc;
    static struct nested_state ns;
    static struct nested_vcpu nv;
    uint64_t q12 = 0;
    reset_l1();
    fake_vmcs_reset();
    const struct vmx_msrs hw = {.procbased = 0xfff9fffe04006172ull, .procbased2 = 0x02177fff00000000ull,
                                .ept_vpid = 0x00000f0106334141ull};
    nested_caps_init(&caps, &hw);
    CHECK(nested_allowed1(caps.procbased2) & SECONDARY_PML, "PML offered with EPT A/D");
    struct vmx_msrs no_ad = hw;
    no_ad.ept_vpid &= ~EPT_CAP_AD;
    struct nested_caps c2;
    nested_caps_init(&c2, &no_ad);
    CHECK(!(nested_allowed1(c2.procbased2) & SECONDARY_PML), "no PML without EPT A/D");
    regcache_init(&rc, true);
    memset(&v12, 0, sizeof(v12));
    ns = (struct nested_state){.cache = &v12, .ept12 = true};
    nv = (struct nested_vcpu){.rc = &rc, .n = &ns, .caps = &caps, .hw = &hw, .phys_bits = PHYS,
                              .l1_page = l1mem_identity_page, .flush_ept = flush_ept};
    vmcs12_set_eptp(&v12, eptp12);
    vmcs12_set(&v12, CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_ACTIVATE_SECONDARY);
    vmcs12_set(&v12, SECONDARY_VM_EXEC_CONTROL, SECONDARY_EPT | SECONDARY_PML);
    pml = (uint64_t *)(uintptr_t)L1(L1_PAGES - 1);
    vmcs12_set(&v12, PML_ADDRESS, (uint64_t)(uintptr_t)pml);
    vmcs12_set(&v12, GUEST_PML_INDEX, 0);
    CHECK(nested_ept02_enter(&nv) == 0 && (ns.ept02->eptp & EPTP_AD), "enter: EPTP02 with A/D");
    map12(0x1000, L1(20), 1, EPT_RWX | WB_LEAF, 0);
    map12(0x2000, L1(21), 1, EPT_RWX | WB_LEAF, 0);
    fake_vmcs_set(GUEST_PHYSICAL_ADDRESS, 0x1234);
    fake_vmcs_set(EXIT_QUALIFICATION, 2);
    regcache_reset(&rc);
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12) == 0 && pml[0] == 0x1000 &&
          vmcs12_get(&v12, GUEST_PML_INDEX) == 0xffff, "logged at 0, vmcs12 index %llx",
          ULL(vmcs12_get(&v12, GUEST_PML_INDEX)));
    fake_vmcs_set(GUEST_PHYSICAL_ADDRESS, 0x2000);
    fake_vmcs_set(EXIT_QUALIFICATION, 2 | EPT_QUAL_NMI_UNBLOCK);
    regcache_reset(&rc);
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12) == EXIT_REASON_PML_FULL &&
          q12 == EPT_QUAL_NMI_UNBLOCK && vmcs12_get(&v12, GUEST_PML_INDEX) == 0xffff, "PML-full exit for L1: %llx",
          ULL(q12));
    /* Without "enable PML" in vmcs12: no log, no exit. */
    vmcs12_set(&v12, SECONDARY_VM_EXEC_CONTROL, SECONDARY_EPT);
    regcache_reset(&rc);
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12) == 0 && !strcmp(flags12(0x2000), "A A A AD"),
          "no PML: dirty flag set");
}

int main(void)
{
    l1mem_init();
    test_clean_then_dirty();
    test_no_flags();
    test_large();
    test_caps_ad();
    test_pml();
    test_pml_exit();
    l1mem_free();
    return test_summary();
}
