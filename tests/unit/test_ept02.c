/*
 * Host tests for nested/ept02.c (EPT02: L1's EPT12 composed with hv's EPT01) and its VMCS
 * side nested/ept02_exit.c, plus the feature-dependent vmcs12 field (EPT_POINTER).
 * "L1 memory" is one host buffer: host addresses are L1-physical addresses, and EPT12's
 * tables are built in it. hv's EPT01 is a callback: identity, except one hidden page
 * (hv's memory: the zero page, no W) and an "above EPT01" range it does not map.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fake_vmcs.h"
#include "nested/ept02.h"
#include "nested/nested_int.h"
#include "tests/unit/test_util.h"
#include "vmx/vmx_bits.h"

#define ULL(x) ((unsigned long long)(x))
#define L1_PAGES 64
#define PHYS 48 /* host heap addresses stand in for L1-physical ones */
#define WB_LEAF (EPT_MT(MT_WB))
#define HV_ATTRS (EPT_MT(MT_WB) | EPT_IGNORE_PAT)
#define GiB (1ull << 30)
#define MiB (1ull << 20)

static uint8_t *l1;          /* L1's memory: EPT12 tables and data pages */
static unsigned l1_next;     /* next free page of it for EPT12 tables */
static uint64_t eptp12;
static uint64_t hidden_pa;   /* an L1 page that is hv's memory */
static uint64_t zero_pa = 0x7770000; /* hv's zero page, as EPT01 names it */
#define UNBACKED_BASE (1ull << 40) /* EPT01 maps nothing in [2^40, 2^41) */
#define MMIO_PA 0xfee00000ull      /* an L1 page whose writes hv emulates (its xAPIC page) */

static uint64_t L1(unsigned page) { return (uint64_t)(uintptr_t)(l1 + 4096ull * page); }

bool hv_gpa_is_ram(uint64_t gpa, uint64_t len)
{
    return gpa >= L1(0) && len <= 4096ull * L1_PAGES && gpa - L1(0) <= 4096ull * L1_PAGES - len;
}

static void *allocated[256];
static unsigned nallocated;
static int alloc_budget = -1; /* -1: unlimited */
void *hv_alloc_page(void)
{
    if (alloc_budget == 0 || nallocated == 256)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    void *p = aligned_alloc(4096, 4096);
    memset(p, 0, 4096);
    return allocated[nallocated++] = p;
}

static int l1_page(uint64_t gpa, uint64_t *host, uint64_t *max)
{
    if (gpa >= UNBACKED_BASE && gpa < 2 * UNBACKED_BASE)
        return -1;
    if (gpa == hidden_pa) {
        *host = zero_pa;
        *max = EPT_R | EPT_X;
        return 0;
    }
    if (gpa == MMIO_PA) { /* hv's xAPIC page: EPT01 read/execute, writes emulated */
        *host = gpa;
        *max = EPT_R | EPT_X;
        return EPT02_L1_MMIO;
    }
    *host = gpa;
    *max = EPT_RWX;
    return 0;
}

static unsigned flushes;
static void flush_ept(void) { flushes++; }

/* ---- EPT12 construction ---- */

static void reset_l1(void)
{
    memset(l1, 0, 4096ull * L1_PAGES);
    l1_next = 1;
    eptp12 = L1(0) | 0x1e; /* WB, 4-level */
    hidden_pa = L1(L1_PAGES - 1);
}

/* Map l2 at level (1 = 4K, 2 = 2M, 3 = 1G) with leaf flags; tables RWX unless tflags. */
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

/* EPT02's leaf for l2, or 0 if no table leads there. */
static uint64_t ept02_entry(const struct ept02 *e, uint64_t l2)
{
    const uint64_t *t = e->pages[0];
    for (int l = 4; l > 1; l--) {
        uint64_t x = t[(l2 >> (12 + 9 * (l - 1))) & 511];
        if (!(x & EPT_RWX))
            return 0;
        if ((x & 0xf8) != 0)
            return ~0ull; /* a non-leaf with bits 7:3 set: EPT02 itself misconfigured */
        t = (const uint64_t *)(uintptr_t)(x & EPT_ADDR_MASK);
    }
    return t[(l2 >> 12) & 511];
}

static struct ept02 *e02;
static const uint64_t CAPS = EPT_CAP_EXEC_ONLY | EPT_CAP_PWL4 | EPT_CAP_UC | EPT_CAP_WB | EPT_CAP_2M | EPT_CAP_1G;

static void fresh(unsigned max_pages, uint64_t caps)
{
    e02 = hv_alloc_page();
    CHECK(ept02_init(e02, max_pages, 4, caps, PHYS, l1_page) == 0, "init");
    ept02_use(e02, eptp12);
    e02->flush = false;
}

/* For CHECK messages: their arguments may be evaluated before the condition. */
static uint64_t lv(const struct ept02_fault *f) { return f->leaf ? *f->leaf : 0; }

static enum ept02_result fault(uint64_t l2, uint64_t qual, struct ept02_fault *f)
{
    *f = (struct ept02_fault){.l2_gpa = l2, .qual = qual};
    return ept02_fault(e02, f);
}

/* ---- the pure part ---- */

static void test_fill(void)
{
    struct ept02_fault f;
    reset_l1();
    fresh(EPT02_MAX_PAGES, CAPS);
    CHECK(e02->eptp == ((uint64_t)(uintptr_t)e02->pages[0] | 0x1e), "EPT02 EPTP %llx", ULL(e02->eptp));
    uint64_t data = L1(40);
    map12(0x1000, data, 1, EPT_RWX | WB_LEAF, 0);
    CHECK(fault(0x1234, 1, &f) == EPT02_FILLED, "RW page: filled");
    CHECK(f.l1_gpa == data + 0x234 && f.leaf && *f.leaf == (data | EPT_RWX | WB_LEAF), "leaf %llx",
          ULL(lv(&f)));
    CHECK(ept02_entry(e02, 0x1000) == (data | EPT_RWX | WB_LEAF), "walk of EPT02 finds it");
    CHECK(ept02_entry(e02, 0x2000) == 0, "neighbour not mapped");
    CHECK(!e02->flush, "a new leaf needs no INVEPT");

    /* Permissions are AND-ed over the walk; UC with ignore-PAT kept as EPT12 has it. */
    map12(0x40000000, L1(41), 1, EPT_RWX | EPT_MT(MT_UC) | EPT_IGNORE_PAT, EPT_R | EPT_X);
    enum ept02_result r = fault(0x40000000, 4, &f);
    CHECK(r == EPT02_FILLED && *f.leaf == (L1(41) | EPT_R | EPT_X | EPT_IGNORE_PAT), "R|X tables, UC+IPAT leaf: %d %llx",
          r, ULL(lv(&f)));
    CHECK(fault(0x40000008, 2, &f) == EPT02_VIOLATION && f.qual12 == (2 | (EPT_R | EPT_X) << 3),
          "write through R|X tables: qual %llx", ULL(f.qual12));

    /* EPT12 changed without INVEPT (more access, another page): refilled, flushed. */
    map12(0x1000, L1(42), 1, EPT_RWX | WB_LEAF, 0);
    CHECK(fault(0x1000, 2, &f) == EPT02_FILLED && *f.leaf == (L1(42) | EPT_RWX | WB_LEAF) && e02->flush,
          "remapped leaf: %llx, flush %d", ULL(lv(&f)), e02->flush);
    e02->flush = false;
    CHECK(fault(0x1000, 2, &f) == EPT02_FILLED && !e02->flush, "same leaf again: no flush");
    CHECK(e02->fills == 4 && e02->reflected == 1, "counters %llu %llu", ULL(e02->fills), ULL(e02->reflected));
}

static void test_violations(void)
{
    struct ept02_fault f;
    reset_l1();
    fresh(EPT02_MAX_PAGES, CAPS);
    map12(0x5000, L1(40), 1, EPT_R | WB_LEAF, 0);
    /* write, GLA valid, linear access, NMI unblocking, advanced-info junk in 11:9 and 6:3 */
    uint64_t q = 2 | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE | EPT_QUAL_NMI_UNBLOCK | 0xe00 | 0x78;
    CHECK(fault(0x5000, q, &f) == EPT02_VIOLATION, "write to R-only");
    CHECK(f.qual12 == (2 | 1 << 3 | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE | EPT_QUAL_NMI_UNBLOCK),
          "R-only qual %llx", ULL(f.qual12));
    CHECK(fault(0x5000, 4, &f) == EPT02_VIOLATION && f.qual12 == (4 | 1 << 3), "fetch from R-only %llx",
          ULL(f.qual12));
    CHECK(fault(0x5000, 1, &f) == EPT02_FILLED && *f.leaf == (L1(40) | EPT_R | WB_LEAF), "read from R-only");

    CHECK(fault(0x6000, 1 | EPT_QUAL_GLA_VALID, &f) == EPT02_VIOLATION && f.qual12 == (1 | EPT_QUAL_GLA_VALID),
          "PTE not present: qual %llx", ULL(f.qual12));
    CHECK(fault(0x8000000000ull, 2, &f) == EPT02_VIOLATION && f.qual12 == 2, "PML4E not present: %llx",
          ULL(f.qual12));
    CHECK(ept02_entry(e02, 0x6000) == 0, "nothing installed for a violation");

    /* EPT12 tables outside L1's RAM read as not present. */
    ept02_use(e02, (1ull << 32) | 0x1e);
    CHECK(fault(0x5000, 1, &f) == EPT02_VIOLATION && f.qual12 == 1, "EPT12 root outside RAM");
    ept02_use(e02, eptp12);
    /* A PDE pointing outside RAM: not present there. */
    map12(0x40200000, L1(40), 1, EPT_RWX, 0);
    uint64_t *pd = (uint64_t *)(uintptr_t)(((uint64_t *)(uintptr_t)(((uint64_t *)(uintptr_t)L1(0))[0] &
                                                                       EPT_ADDR_MASK))[1] & EPT_ADDR_MASK);
    pd[1] = 0x100000000ull | EPT_RWX;
    CHECK(fault(0x40200000, 1, &f) == EPT02_VIOLATION && f.qual12 == 1, "EPT12 table outside RAM");

    /* Execute-only: allowed by the caps, a fetch fills X only, a read is refused with X. */
    map12(0xa000, L1(43), 1, EPT_X | WB_LEAF, 0);
    CHECK(fault(0xa000, 4, &f) == EPT02_FILLED && *f.leaf == (L1(43) | EPT_X | WB_LEAF), "execute-only fetch");
    CHECK(fault(0xa000, 1, &f) == EPT02_VIOLATION && f.qual12 == (1 | EPT_X << 3), "execute-only read %llx",
          ULL(f.qual12));
}

static void test_large_pages(void)
{
    struct ept02_fault f;
    reset_l1();
    fresh(EPT02_MAX_PAGES, CAPS);
    map12(0x200000, 0x40000000, 2, EPT_RWX | WB_LEAF, 0);
    CHECK(fault(0x200000 + 0x12345, 2, &f) == EPT02_FILLED && f.l1_gpa == 0x40012345 &&
          *f.leaf == (0x40012000 | EPT_RWX | WB_LEAF), "2 MiB page: %llx", ULL(lv(&f)));
    CHECK(ept02_entry(e02, 0x212000) == (0x40012000 | EPT_RWX | WB_LEAF), "as a 4 KiB leaf in EPT02");
    map12(3 * GiB, 5 * GiB, 3, EPT_R | EPT_X | EPT_MT(MT_UC), 0);
    CHECK(fault(3 * GiB + 0x3456789, 4, &f) == EPT02_FILLED && f.l1_gpa == 5 * GiB + 0x3456789 &&
          *f.leaf == ((5 * GiB + 0x3456000) | EPT_R | EPT_X), "1 GiB page: %llx", ULL(lv(&f)));
    CHECK(fault(3 * GiB + 0x1000, 2, &f) == EPT02_VIOLATION && f.qual12 == (2 | 5 << 3), "1 GiB R|X, write");
}

static void test_misconfig(void)
{
    struct ept02_fault f;
    reset_l1();
    fresh(EPT02_MAX_PAGES, CAPS & ~EPT_CAP_EXEC_ONLY);
    uint64_t *pte = map12(0x1000, L1(40), 1, EPT_W | WB_LEAF, 0);
    CHECK(fault(0x1000, 1, &f) == EPT02_MISCONFIG, "PTE W without R");
    *pte = L1(40) | EPT_W | EPT_X | WB_LEAF;
    CHECK(fault(0x1000, 4, &f) == EPT02_MISCONFIG, "PTE W|X without R");
    *pte = L1(40) | EPT_X | WB_LEAF;
    CHECK(fault(0x1000, 4, &f) == EPT02_MISCONFIG, "execute-only, not advertised");
    for (unsigned mt = 0; mt < 8; mt++) {
        *pte = L1(40) | EPT_RWX | EPT_MT(mt);
        bool bad = mt == 2 || mt == 3 || mt == 7;
        CHECK(fault(0x1000, 1, &f) == (bad ? EPT02_MISCONFIG : EPT02_FILLED), "leaf memory type %u", mt);
    }
    *pte = L1(40) | EPT_RWX | WB_LEAF | (1ull << PHYS);
    CHECK(fault(0x1000, 1, &f) == EPT02_MISCONFIG, "leaf address beyond MAXPHYADDR");
    *pte = L1(40) | EPT_RWX | WB_LEAF | 0xf00 | (1ull << 63) | (0x7ffull << 52);
    CHECK(fault(0x1000, 1, &f) == EPT02_FILLED, "ignored bits (A/D 9:8, 11:10, 63:52)");
    /* The misconfiguration wins over a write the upper levels would refuse. */
    *pte = L1(40) | EPT_W;
    uint64_t *pml4e = (uint64_t *)(uintptr_t)L1(0);
    *pml4e = (*pml4e & ~EPT_RWX) | EPT_R;
    CHECK(fault(0x1000, 2, &f) == EPT02_MISCONFIG, "misconfiguration below a read-only PML4E");
    *pml4e |= EPT_RWX;
    *pte = L1(40) | EPT_RWX | WB_LEAF;
    /* Non-leaf entries: bits 7:3 reserved, W without R. */
    *pml4e |= 1ull << 7;
    CHECK(fault(0x1000, 1, &f) == EPT02_MISCONFIG, "PML4E bit 7");
    *pml4e &= ~(1ull << 7);
    *pml4e |= EPT_MT(MT_WB);
    CHECK(fault(0x1000, 1, &f) == EPT02_MISCONFIG, "PML4E bits 5:3");
    *pml4e &= ~EPT_MT_MASK;
    uint64_t *pdpte = (uint64_t *)(uintptr_t)(*pml4e & EPT_ADDR_MASK);
    *pdpte = (*pdpte & ~EPT_RWX) | EPT_W;
    CHECK(fault(0x1000, 1, &f) == EPT02_MISCONFIG, "PDPTE W without R");
    *pdpte |= EPT_RWX;
    *pdpte |= EPT_IGNORE_PAT;
    CHECK(fault(0x1000, 1, &f) == EPT02_MISCONFIG, "PDPTE bit 6 (non-leaf)");
    *pdpte &= ~EPT_IGNORE_PAT;
    CHECK(fault(0x1000, 1, &f) == EPT02_FILLED, "repaired");
    /* Large-page reserved bits; large pages the caps lack. */
    uint64_t *pde2m = map12(0x40000000, 0x80000000, 2, EPT_RWX | WB_LEAF, 0);
    *pde2m |= 1ull << 12;
    CHECK(fault(0x40000000, 1, &f) == EPT02_MISCONFIG, "2 MiB page bit 12");
    uint64_t *pdpte1g = map12(0x80000000, 0x80000000, 3, EPT_RWX | WB_LEAF, 0);
    *pdpte1g |= 1ull << 29;
    CHECK(fault(0x80000000, 1, &f) == EPT02_MISCONFIG, "1 GiB page bit 29");
    *pdpte1g &= ~(1ull << 29);
    *pde2m &= ~(1ull << 12);
    e02->ept_caps &= ~(EPT_CAP_2M | EPT_CAP_1G);
    CHECK(fault(0x40000000, 1, &f) == EPT02_MISCONFIG, "2 MiB page without 2M support");
    CHECK(fault(0x80000000, 1, &f) == EPT02_MISCONFIG, "1 GiB page without 1G support");
    e02->ept_caps |= EPT_CAP_2M | EPT_CAP_1G;
    CHECK(fault(0x80000000, 1, &f) == EPT02_FILLED, "1 GiB page with support");
    /* A not-present entry with reserved bits is just not present. */
    *pte = L1(40) | EPT_MT(2) | 0xf0;
    CHECK(fault(0x1000, 1, &f) == EPT02_VIOLATION && f.qual12 == 1, "not present beats reserved bits");
}

static void test_hidden(void)
{
    struct ept02_fault f;
    reset_l1();
    fresh(EPT02_MAX_PAGES, CAPS);
    map12(0x3000, hidden_pa, 1, EPT_RWX | WB_LEAF, 0);
    CHECK(fault(0x3000, 1, &f) == EPT02_FILLED && *f.leaf == (zero_pa | EPT_R | EPT_X | HV_ATTRS),
          "hidden page: zero page, R|X, WB+IPAT: %llx", ULL(lv(&f)));
    CHECK(fault(0x3008, 2, &f) == EPT02_HIDDEN_WRITE && !(*f.leaf & EPT_W) && (*f.leaf & EPT_ADDR_MASK) == zero_pa,
          "write to hidden page: no W in EPT02: %llx", ULL(lv(&f)));
    uint64_t *leaf = f.leaf, ro = *leaf;
    e02->flush = false;
    CHECK(ept02_step_begin(e02, leaf) == 0 && (*leaf & EPT_ADDR_MASK) == (uint64_t)(uintptr_t)e02->scratch[0] &&
          (*leaf & EPT_W) && e02->flush && ept02_step_pending(e02), "step: scratch page, writable");
    CHECK(ept02_step_begin(e02, leaf) == 0, "same leaf, same slot");
    e02->scratch[0][8] = 0x55; /* what the instruction wrote */
    map12(0x4000, hidden_pa, 1, EPT_R | EPT_W | WB_LEAF, 0);
    CHECK(fault(0x4000, 2, &f) == EPT02_HIDDEN_WRITE && ept02_step_begin(e02, f.leaf) == 1,
          "second page of the same write: slot 1");
    for (int i = 2; i < EPT02_STEPS; i++) /* a string instruction's or XSAVE's further pages */
        CHECK(ept02_step_begin(e02, (uint64_t *)e02->pages[0] + 100 + i) == i, "page %d: slot %d", i, i);
    CHECK(ept02_step_begin(e02, (uint64_t *)e02->pages[0] + 7) == -1, "slots full");
    e02->flush = false;
    ept02_step_end(e02);
    CHECK(*leaf == ro && !(*f.leaf & EPT_W) && e02->flush && !ept02_step_pending(e02), "read-only again");
    CHECK(e02->scratch[0][8] == 0, "scratch wiped");
    CHECK(e02->hidden_writes == EPT02_STEPS, "hidden writes %llu", ULL(e02->hidden_writes));
    /* R-only in EPT12: a write is L1's violation, not a dropped write. */
    map12(0x7000, hidden_pa, 1, EPT_R | WB_LEAF, 0);
    CHECK(fault(0x7000, 2, &f) == EPT02_VIOLATION && f.qual12 == (2 | 1 << 3), "hidden, EPT12 R-only");
    /* Where EPT01 maps nothing. */
    map12(0x8000, UNBACKED_BASE, 1, EPT_RWX | WB_LEAF, 0);
    CHECK(fault(0x8000, 1 | EPT_QUAL_GLA_VALID, &f) == EPT02_UNBACKED && f.qual12 == (1 | EPT_QUAL_GLA_VALID) &&
          f.l1_gpa == UNBACKED_BASE, "unbacked: %llx", ULL(f.qual12));
    /* Clearing drops a step in flight (its leaf went with its table) and wipes its page. */
    CHECK(fault(0x3000, 2, &f) == EPT02_HIDDEN_WRITE && ept02_step_begin(e02, f.leaf) == 0, "step again");
    e02->scratch[0][0] = 1;
    ept02_clear(e02);
    CHECK(!ept02_step_pending(e02) && e02->scratch[0][0] == 0, "clear ends steps");
}

/* hv's xAPIC page through EPT12: reads reach the page (EPT12's memory type, not hv's), a write
 * is hv's to emulate with the L1 address, never a writable leaf nor a dropped write. */
static void test_mmio(void)
{
    struct ept02_fault f;
    reset_l1();
    fresh(EPT02_MAX_PAGES, CAPS);
    map12(0x5000, MMIO_PA, 1, EPT_RWX | EPT_MT(MT_UC), 0);
    CHECK(fault(0x5030, 1, &f) == EPT02_FILLED && *f.leaf == (MMIO_PA | EPT_R | EPT_X | EPT_MT(MT_UC)),
          "read: the page, R|X, EPT12's UC: %llx", ULL(lv(&f)));
    enum ept02_result r = fault(0x5300, 2 | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE, &f);
    CHECK(r == EPT02_MMIO_WRITE && f.l1_gpa == MMIO_PA + 0x300 && f.leaf && !(*f.leaf & EPT_W) &&
              (*f.leaf & EPT_ADDR_MASK) == MMIO_PA,
          "write: result %d, L1 0x%llx, leaf %llx", r, ULL(f.l1_gpa), ULL(lv(&f)));
    CHECK(e02->hidden_writes == 0 && !ept02_step_pending(e02), "not a dropped write");
    /* EPT12 read-only there: L1's violation as before. */
    map12(0x6000, MMIO_PA, 1, EPT_R | EPT_MT(MT_UC), 0);
    CHECK(fault(0x6300, 2, &f) == EPT02_VIOLATION, "EPT12 R-only: L1's EPT violation");
}

static void test_pool(void)
{
    struct ept02_fault f;
    reset_l1();
    fresh(5, CAPS); /* root + 4 tables: one GiB region's 3 tables, then no room for another */
    map12(0x1000, L1(40), 1, EPT_RWX | WB_LEAF, 0);
    map12(GiB + 0x1000, L1(41), 1, EPT_RWX | WB_LEAF, 0);
    map12(0x201000, L1(42), 1, EPT_RWX | WB_LEAF, 0);
    CHECK(fault(0x1000, 1, &f) == EPT02_FILLED && e02->nused == 4, "first: 3 tables (%u)", e02->nused);
    CHECK(fault(0x201000, 1, &f) == EPT02_FILLED && e02->nused == 5 && e02->clears == 1, "second: a PT (%u)",
          e02->nused);
    e02->flush = false;
    CHECK(fault(GiB + 0x1000, 1, &f) == EPT02_FILLED && e02->clears == 2 && e02->flush, "pool full: cleared");
    CHECK(ept02_entry(e02, 0x1000) == 0 && ept02_entry(e02, 0x201000) == 0, "old translations gone");
    CHECK(ept02_entry(e02, GiB + 0x1000) == (L1(41) | EPT_RWX | WB_LEAF) && e02->nused == 4, "new one there");
    CHECK(e02->npages == 5, "pool stays at its maximum (%u)", e02->npages);
    CHECK(fault(0x1000, 1, &f) == EPT02_FILLED && ept02_entry(e02, 0x1000) == (L1(40) | EPT_RWX | WB_LEAF),
          "refilled");
    /* Growth stops where hv's allocator does. */
    reset_l1();
    fresh(EPT02_MAX_PAGES, CAPS);
    alloc_budget = 0;
    for (unsigned i = 0; i < 3; i++)
        map12(i * GiB + 0x1000, L1(40), 1, EPT_RWX | WB_LEAF, 0);
    CHECK(fault(0x1000, 1, &f) == EPT02_FILLED && fault(GiB + 0x1000, 1, &f) == EPT02_FILLED &&
          e02->clears == 2 && e02->npages == 4, "allocator empty: starts over within 4 pages");
    alloc_budget = -1;
    /* Set-up out of memory: -1, and a retry later completes it. */
    struct ept02 *e = hv_alloc_page();
    alloc_budget = 2;
    CHECK(ept02_init(e, 8, 6, CAPS, PHYS, l1_page) == -1 && e->npages == 0, "init without memory");
    alloc_budget = -1;
    CHECK(ept02_init(e, 8, 6, CAPS, PHYS, l1_page) == 0 && e->npages == 6 && e->scratch[1], "init retried");
    CHECK(ept02_init(e, 8, 3, CAPS, PHYS, l1_page) == 0 && e->npages == 6, "idempotent");
}

static void test_invalidation(void)
{
    struct ept02_fault f;
    reset_l1();
    fresh(EPT02_MAX_PAGES, CAPS);
    map12(0x1000, L1(40), 1, EPT_RWX | WB_LEAF, 0);
    struct ept02 *e = e02;
    fault(0x1000, 1, &f);
    uint64_t clears = e->clears;
    e->flush = false;
    CHECK(!ept02_invept(e, 1, L1(5) | 0x1e) && e->clears == clears && !e->flush, "single-context, other EPTP");
    CHECK(ept02_entry(e, 0x1000) != 0, "still there");
    CHECK(ept02_invept(e, 1, L1(0) | 0x18) && e->clears == clears + 1 && e->flush, "single-context, same root");
    CHECK(ept02_entry(e, 0x1000) == 0 && e->nused == 1, "cleared");
    fault(0x1000, 1, &f);
    CHECK(ept02_invept(e, 2, 0) && ept02_entry(e, 0x1000) == 0, "all-context");
    fault(0x1000, 1, &f);
    ept02_use(e, L1(0) | 0x18); /* same root, UC walks */
    CHECK(ept02_entry(e, 0x1000) != 0, "same EPT12 root: kept");
    ept02_use(e, L1(1) | 0x1e);
    CHECK(ept02_entry(e, 0x1000) == 0 && e->eptp12 == (L1(1) | 0x1e), "another EPT12: cleared");
    struct ept02 *n = hv_alloc_page();
    CHECK(ept02_init(n, 8, 4, CAPS, PHYS, l1_page) == 0 && !ept02_invept(n, 2, 0), "nothing shadowed yet");
}

/* ---- the VMCS side (nested/ept02_exit.c) on a fake VMCS ---- */

static struct vmx_msrs hw = {
    .basic = 0x00d810000000002bull, .pinbased = 0x0000007f00000016ull, .procbased = 0xfff9fffe04006172ull,
    .exit = 0x01ffffff00036dfbull, .entry = 0x0003ffff000011fbull, .procbased2 = 0x02177fff00000000ull,
    .ept_vpid = 0x00000f0106334141ull, .misc = 0x300481e5ull, .cr0_fixed0 = 0x80000021, .cr0_fixed1 = 0xffffffff,
    .cr4_fixed0 = 0x2000, .cr4_fixed1 = 0x3767ff,
};
static struct nested_caps caps;
static struct regcache rc;
static struct nested_state ns;
static struct nested_vcpu nv;

static unsigned mmio_calls;
static uint64_t mmio_gpa, mmio_qual;
static void mmio_write(struct nested_vcpu *n, uint64_t l1_gpa, uint64_t qual)
{
    mmio_calls++;
    mmio_gpa = l1_gpa;
    mmio_qual = qual;
}

static void exit_setup(uint32_t reason, uint64_t gpa, uint64_t qual)
{
    fake_vmcs_set(VM_EXIT_REASON, reason);
    fake_vmcs_set(GUEST_PHYSICAL_ADDRESS, gpa);
    fake_vmcs_set(EXIT_QUALIFICATION, qual);
    fake_vmcs_set(IDT_VECTORING_INFO_FIELD, 0);
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, 0);
    regcache_reset(&rc);
}

static void test_vmcs_side(void)
{
    uint64_t q12 = 0;
    reset_l1();
    fake_vmcs_reset();
    nested_caps_init(&caps, &hw);
    regcache_init(&rc, true);
    static struct vmcs12 v12;
    memset(&v12, 0, sizeof(v12));
    ns = (struct nested_state){.cache = &v12, .ept12 = true};
    nv = (struct nested_vcpu){.rc = &rc, .n = &ns, .caps = &caps, .hw = &hw, .phys_bits = PHYS,
                              .l1_page = l1_page, .flush_ept = flush_ept};
    vmcs12_set_eptp(&v12, eptp12);
    flushes = 0;
    CHECK(nested_ept02_enter(&nv) == 0 && ns.ept02 && ns.ept02->eptp12 == eptp12 && flushes == 1,
          "enter: EPT02 set up, flushed (%u)", flushes);
    CHECK(nested_ept02_enter(&nv) == 0 && flushes == 1, "same EPTP again: no flush");
    struct ept02 *e = ns.ept02;
    map12(0x1000, L1(40), 1, EPT_RWX | WB_LEAF, 0);
    map12(0x2000, hidden_pa, 1, EPT_RWX | WB_LEAF, 0);
    map12(0x3000, L1(41), 1, EPT_R | WB_LEAF, 0);

    /* A fill during event delivery: the event is delivered again. */
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x1000, 2);
    fake_vmcs_set(IDT_VECTORING_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | 14);
    fake_vmcs_set(IDT_VECTORING_ERROR_CODE, 6);
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, 3);
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12) == 0, "fill: L2 retries");
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == (INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION |
                                                      INTR_INFO_DELIVER_CODE | 14) &&
          fake_vmcs_get(VM_ENTRY_EXCEPTION_ERROR_CODE) == 6 && fake_vmcs_get(VM_ENTRY_INSTRUCTION_LEN) == 3,
          "#PF re-injected");
    /* A fill after an IRET that unblocked NMIs: blocking back. */
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x1000, 1 | EPT_QUAL_NMI_UNBLOCK);
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, 0);
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12) == 0, "fill after IRET: L2 retries");
    regcache_flush(nv.rc); /* through the register cache, like every guest register */
    CHECK(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO) == GUEST_INTR_NMI, "NMI blocking restored");

    /* A write to hv's memory: one MTF step onto the scratch page. */
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x2000, 2);
    fake_vmcs_set(CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_HLT_EXITING);
    flushes = 0;
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12) == 0, "hidden write: L2 retries");
    uint64_t leaf = ept02_entry(e, 0x2000);
    CHECK((leaf & EPT_ADDR_MASK) == (uint64_t)(uintptr_t)e->scratch[0] && (leaf & EPT_W) && flushes == 1 &&
          (fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_MONITOR_TRAP_FLAG) && e->mtf,
          "scratch mapped writable, MTF on: %llx", ULL(leaf));
    e->scratch[0][0] = 0xaa;
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x1000, 1); /* the instruction's other page: step goes on */
    CHECK(!nested_ept02_before_exit(&nv, EXIT_REASON_EPT_VIOLATION) && e->mtf && ept02_step_pending(e),
          "EPT violation during the step");
    exit_setup(EXIT_REASON_MONITOR_TRAP_FLAG, 0, 0);
    CHECK(nested_ept02_before_exit(&nv, EXIT_REASON_MONITOR_TRAP_FLAG), "the step's MTF exit is hv's");
    CHECK(ept02_entry(e, 0x2000) == (zero_pa | EPT_R | EPT_X | HV_ATTRS) && e->scratch[0][0] == 0 && !e->mtf &&
          fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) == CPU_BASED_HLT_EXITING && flushes == 2,
          "zero page back, scratch wiped, MTF off");
    CHECK(!nested_ept02_before_exit(&nv, EXIT_REASON_MONITOR_TRAP_FLAG), "no step: MTF is L1's");

    /* L1 asked for MTF itself: the step ends, the MTF exit goes to L1, MTF stays on. */
    vmcs12_set(&v12, CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_MONITOR_TRAP_FLAG);
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x2000, 2);
    fake_vmcs_set(CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_MONITOR_TRAP_FLAG);
    nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12);
    CHECK(!nested_ept02_before_exit(&nv, EXIT_REASON_MONITOR_TRAP_FLAG) &&
          (fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_MONITOR_TRAP_FLAG) && !ept02_step_pending(e),
          "L1's MTF");
    /* L2's store to hv's xAPIC page goes to hv's emulation with the L1 address. */
    vmcs12_set(&v12, CPU_BASED_VM_EXEC_CONTROL, 0);
    map12(0x9000, MMIO_PA, 1, EPT_RWX | EPT_MT(MT_UC), 0);
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x9300, 2 | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE);
    nv.l1_mmio_write = mmio_write;
    mmio_calls = 0;
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12) == 0 && mmio_calls == 1 &&
              mmio_gpa == MMIO_PA + 0x300 && mmio_qual == (2 | EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE),
          "xAPIC write: hv's emulation (%u calls, L1 0x%llx)", mmio_calls, ULL(mmio_gpa));
    CHECK(!(ept02_entry(e, 0x9000) & EPT_W), "EPT02 leaf not writable: %llx", ULL(ept02_entry(e, 0x9000)));
    nv.l1_mmio_write = NULL; /* no emulation: never the page, L1's EPT violation */
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x9300, 2);
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12) == EXIT_REASON_EPT_VIOLATION, "no emulation");
    vmcs12_set(&v12, CPU_BASED_VM_EXEC_CONTROL, 0);
    /* Another exit during a step (an interrupt): the step ends there too. */
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x2000, 2);
    nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12);
    CHECK(!nested_ept02_before_exit(&nv, EXIT_REASON_EXTERNAL_INTERRUPT) && !ept02_step_pending(e) && !e->mtf,
          "external interrupt ends the step");

    /* Reflections: the reason and L1's qualification; a step never survives into L1. */
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x2000, 2);
    nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12);
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x3000, 2 | EPT_QUAL_GLA_VALID);
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12) == EXIT_REASON_EPT_VIOLATION &&
          q12 == (2 | EPT_QUAL_GLA_VALID | 1 << 3), "violation reflected: %llx", ULL(q12));
    CHECK(!ept02_step_pending(e) && !e->mtf && !(ept02_entry(e, 0x2000) & EPT_W), "step ended before L1 runs");
    *map12(0x4000, L1(42), 1, EPT_RWX, 0) |= EPT_MT(3);
    exit_setup(EXIT_REASON_EPT_VIOLATION, 0x4000, 1);
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_VIOLATION, &q12) == EXIT_REASON_EPT_MISCONFIG && q12 == 0,
          "misconfiguration reflected as exit 49");
    exit_setup(EXIT_REASON_EPT_MISCONFIG, 0x4000, 0);
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_MISCONFIG, &q12) == EXIT_REASON_EPT_MISCONFIG, "hw exit 49, EPT12's");
    uint64_t clears = e->clears;
    exit_setup(EXIT_REASON_EPT_MISCONFIG, 0x1000, 0);
    CHECK(nested_ept02_exit(&nv, EXIT_REASON_EPT_MISCONFIG, &q12) == 0 && e->clears == clears + 1,
          "hw exit 49 with a sound EPT12: EPT02 rebuilt");

    /* INVEPT and VMXOFF. */
    flushes = 0;
    nested_ept02_invalidate(&nv, 1, L1(9) | 0x1e);
    CHECK(flushes == 0, "INVEPT of another EPTP: nothing");
    nested_ept02_invalidate(&nv, 1, eptp12);
    CHECK(flushes == 1 && e->nused == 1, "INVEPT single-context: cleared, hardware flushed");
    vmcs12_set_eptp(&v12, L1(1) | 0x1e);
    CHECK(nested_ept02_enter(&nv) == 0 && flushes == 2, "new EPTP at entry: cleared and flushed");
    struct nested_state empty = {0};
    nv.n = &empty;
    nested_ept02_invalidate(&nv, 2, 0);
    CHECK(flushes == 2, "no EPT02 yet: nothing to do");
    alloc_budget = 0;
    empty.cache = &v12;
    CHECK(nested_ept02_enter(&nv) == -1, "no memory: the entry fails");
    alloc_budget = -1;
    CHECK(nested_ept02_enter(&nv) == 0 && empty.ept02, "memory again: set up");
    nv.n = &ns;
}

/* ---- EPT_POINTER: a vmcs12 field only while EPT is advertised ---- */

static void test_vmcs12_eptp(void)
{
    static struct vmcs12 v;
    uint64_t val = 0;
    memset(&v, 0, sizeof(v));
    CHECK(vmcs12_vmwrite_feat(&v, EPT_POINTER, 0x123456789e, false, 0) == VMXERR_UNSUPPORTED_FIELD &&
          vmcs12_vmread_feat(&v, EPT_POINTER, &val, 0) == VMXERR_UNSUPPORTED_FIELD, "no EPT: error 12");
    CHECK(vmcs12_vmwrite_feat(&v, EPT_POINTER, 0x123456789e, false, VMCS12_FEAT_EPT) == 0 &&
          vmcs12_eptp(&v) == 0x123456789e, "written");
    CHECK(vmcs12_vmread_feat(&v, EPT_POINTER, &val, VMCS12_FEAT_EPT) == 0 && val == 0x123456789e, "read");
    CHECK(vmcs12_vmread_feat(&v, EPT_POINTER | 1, &val, VMCS12_FEAT_EPT) == 0 && val == 0x12, "high half read");
    CHECK(vmcs12_vmwrite_feat(&v, EPT_POINTER | 1, 0xab, false, VMCS12_FEAT_EPT) == 0 &&
          vmcs12_eptp(&v) == 0xab3456789eull, "high half written: %llx", ULL(vmcs12_eptp(&v)));
    CHECK(vmcs12_vmread_feat(&v, GUEST_RIP, &val, VMCS12_FEAT_EPT) == 0 &&
          vmcs12_vmwrite_feat(&v, VM_EXIT_REASON, 1, false, VMCS12_FEAT_EPT) == VMXERR_VMWRITE_READ_ONLY &&
          vmcs12_vmread_feat(&v, 1ull << 32 | EPT_POINTER, &val, VMCS12_FEAT_EPT) == VMXERR_UNSUPPORTED_FIELD,
          "other fields as vmcs12_vmread/vmwrite");
    for (unsigned i = 0; i < VMCS12_NR_FIELDS; i++)
        CHECK(vmcs12_field_encoding(i) != EPT_POINTER, "EPT_POINTER is not in the table");

}

int main(void)
{
    l1 = aligned_alloc(4096, 4096ull * L1_PAGES);
    test_fill();
    test_violations();
    test_large_pages();
    test_misconfig();
    test_hidden();
    test_mmio();
    test_pool();
    test_invalidation();
    test_vmcs_side();
    test_vmcs12_eptp();
    for (unsigned i = 0; i < nallocated; i++)
        free(allocated[i]);
    free(l1);
    return test_summary();
}
