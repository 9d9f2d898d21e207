/*
 * Host tests for mode-based execute control for EPT (MBEC, secondary control 22, SDM 29.3.3.2)
 * and advanced VM-exit information for EPT violations (IA32_VMX_EPT_VPID_CAP[22], 28.2.1) in
 * EPT02 (nested/ept02.c, nested/ept02_exit.c), the capabilities (nested/caps.c) and the entry
 * check (nested/checks.c). L1's memory is one host buffer, as in test_ept02.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ept12_l1mem.h"
#include "fake_vmcs.h"
#include "nested/checks.h"
#include "nested/ept02.h"
#include "nested/nested_int.h"
#include "tests/unit/test_util.h"
#include "tests/unit/vmcs12_samples.h"
#include "vmx/vmx_bits.h"

#define ULL(x) ((unsigned long long)(x))
#define L1_PAGES L1_MEM_PAGES
#define PHYS 48
#define WB_LEAF (EPT_MT(MT_WB))
/* Qualifications the CPU reports for EPT02: a fetch (bit 2) of a translated linear address
 * (bits 7, 8), from a user-mode (bit 9) or supervisor-mode linear address. */
#define Q_GLA (EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_XLATE)
#define Q_FETCH_S (EPT_X | Q_GLA)
#define Q_FETCH_U (EPT_X | Q_GLA | EPT_QUAL_USER)

static uint64_t eptp12;
static void flush_ept(void) {}

static void reset_l1(void)
{
    l1mem_reset();
    eptp12 = L1(0) | 0x1e;
}

/* A 4 KiB EPT12 leaf for l2 with flags; the tables above get tflags (RWX | XU unless given). */
static uint64_t *map12(uint64_t l2, uint64_t target, uint64_t flags, uint64_t tflags)
{
    uint64_t *t = (uint64_t *)(uintptr_t)L1(0);
    for (int l = 4; l > 1; l--) {
        uint64_t *e = &t[(l2 >> (12 + 9 * (l - 1))) & 511];
        if (!*e)
            *e = L1(l1_next++) | (tflags ? tflags : EPT_RWX | EPT_XU);
        t = (uint64_t *)(uintptr_t)(*e & EPT_ADDR_MASK);
    }
    uint64_t *leaf = &t[(l2 >> 12) & 511];
    *leaf = target | flags;
    return leaf;
}

static struct ept02 *e02;
static const uint64_t CAPS = EPT_CAP_EXEC_ONLY | EPT_CAP_PWL4 | EPT_CAP_WB | EPT_CAP_ADV_EXIT_INFO;

static void fresh(uint64_t caps, bool mbec)
{
    e02 = hv_alloc_page();
    CHECK(ept02_init(e02, EPT02_MAX_PAGES, 4, caps, PHYS, l1mem_identity_page) == 0, "init");
    ept02_use(e02, eptp12);
    ept02_set_mbec(e02, mbec);
}

/* EPT02's leaf for l2 (0 if none); non-leaves must allow everything, XU included. */
static uint64_t ept02_entry(uint64_t l2)
{
    const uint64_t *t = e02->pages[0];
    for (int l = 4; l > 1; l--) {
        uint64_t x = t[(l2 >> (12 + 9 * (l - 1))) & 511];
        if (!(x & EPT_RWX))
            return 0;
        if ((x & (EPT_RWX | EPT_XU | 0xf8)) != (EPT_RWX | EPT_XU))
            return ~0ull;
        t = (const uint64_t *)(uintptr_t)(x & EPT_ADDR_MASK);
    }
    return t[(l2 >> 12) & 511];
}

static enum ept02_result fault(uint64_t l2, uint64_t qual, struct ept02_fault *f)
{
    *f = (struct ept02_fault){.l2_gpa = l2, .qual = qual};
    return ept02_fault(e02, f);
}

/* EPT12's XS (bit 2) and XU (bit 10) combinations, fetched from supervisor- and user-mode
 * linear addresses; EPT02's leaf is EPT12's execute permissions AND EPT01's. */
static void test_execute(void)
{
    struct ept02_fault f;
    reset_l1();
    uint64_t d = L1(20);
    map12(0x1000, d, EPT_R | EPT_X | WB_LEAF, 0);           /* XS only */
    map12(0x2000, d, EPT_R | EPT_XU | WB_LEAF, 0);          /* XU only */
    map12(0x3000, d, EPT_R | EPT_X | EPT_XU | WB_LEAF, 0);  /* both */
    map12(0x4000, d, EPT_R | EPT_W | WB_LEAF, 0);           /* neither */
    fresh(CAPS, true);

    CHECK(fault(0x1000, Q_FETCH_S, &f) == EPT02_FILLED && ept02_entry(0x1000) == (d | EPT_R | EPT_X | WB_LEAF),
          "XS page, supervisor fetch: filled with X, no XU: %llx", ULL(ept02_entry(0x1000)));
    CHECK(fault(0x1000, Q_FETCH_U, &f) == EPT02_VIOLATION && f.qual12 == (Q_FETCH_U | 0x28),
          "XS page, user fetch: violation, qual 0x%llx (R, X; bit 6 clear; bit 9 as reported)", ULL(f.qual12));
    CHECK(fault(0x2000, Q_FETCH_U, &f) == EPT02_FILLED && ept02_entry(0x2000) == (d | EPT_R | EPT_XU | WB_LEAF),
          "XU page, user fetch: filled with XU, no X: %llx", ULL(ept02_entry(0x2000)));
    CHECK(fault(0x2000, Q_FETCH_S, &f) == EPT02_VIOLATION && f.qual12 == (Q_FETCH_S | 0x08 | EPT_QUAL_XU),
          "XU page, supervisor fetch: violation, qual 0x%llx (R, bit 6)", ULL(f.qual12));
    CHECK(fault(0x3000, Q_FETCH_U, &f) == EPT02_FILLED &&
              ept02_entry(0x3000) == (d | EPT_R | EPT_X | EPT_XU | WB_LEAF),
          "XS+XU page: filled with both: %llx", ULL(ept02_entry(0x3000)));
    CHECK(fault(0x4000, Q_FETCH_S, &f) == EPT02_VIOLATION && f.qual12 == (Q_FETCH_S | 0x18),
          "RW page, supervisor fetch: qual 0x%llx", ULL(f.qual12));
    CHECK(fault(0x4000, Q_FETCH_U | EPT_QUAL_RW_PAGE, &f) == EPT02_VIOLATION &&
              f.qual12 == (Q_FETCH_U | EPT_QUAL_RW_PAGE | 0x18),
          "RW page, user fetch: qual 0x%llx (bit 10 passed on)", ULL(f.qual12));
    /* A data read of the XU page: bit 6 reports its XU. */
    CHECK(fault(0x2000, EPT_W | Q_GLA, &f) == EPT02_VIOLATION && f.qual12 == (EPT_W | Q_GLA | 0x08 | EPT_QUAL_XU),
          "write to the R+XU page: qual 0x%llx", ULL(f.qual12));

    /* XU is AND-ed over the walk: a PDE without bit 10 denies user fetches below it. */
    reset_l1();
    map12(0x200000, d, EPT_R | EPT_X | EPT_XU | WB_LEAF, EPT_RWX);
    fresh(CAPS, true);
    CHECK(fault(0x200000, Q_FETCH_U, &f) == EPT02_VIOLATION && f.qual12 == (Q_FETCH_U | 0x28),
          "tables without XU: user fetch refused, qual 0x%llx", ULL(f.qual12));
    CHECK(fault(0x200000, Q_FETCH_S, &f) == EPT02_FILLED && ept02_entry(0x200000) == (d | EPT_R | EPT_X | WB_LEAF),
          "tables without XU: supervisor fetch filled, leaf without XU: %llx", ULL(ept02_entry(0x200000)));
}

/* Presence and misconfiguration (29.3.2, 29.3.3.1): with MBEC an entry with only bit 10 is
 * present (execute-only for user mode); without MBEC bit 10 is ignored. */
static void test_present(void)
{
    struct ept02_fault f;
    reset_l1();
    uint64_t d = L1(21);
    map12(0x5000, d, EPT_XU | WB_LEAF, 0);
    fresh(CAPS, true);
    CHECK(fault(0x5000, EPT_R | Q_GLA, &f) == EPT02_VIOLATION && f.qual12 == (EPT_R | Q_GLA | EPT_QUAL_XU),
          "XU-only page, read: present (bit 6), qual 0x%llx", ULL(f.qual12));
    CHECK(fault(0x5000, Q_FETCH_U, &f) == EPT02_FILLED && ept02_entry(0x5000) == (d | EPT_XU | WB_LEAF),
          "XU-only page, user fetch: filled %llx", ULL(ept02_entry(0x5000)));
    fresh(CAPS & ~EPT_CAP_EXEC_ONLY, true);
    CHECK(fault(0x5000, Q_FETCH_U, &f) == EPT02_MISCONFIG, "XU-only without execute-only support: misconfiguration");

    fresh(CAPS, false);
    CHECK(fault(0x5000, Q_FETCH_U, &f) == EPT02_VIOLATION && f.qual12 == Q_FETCH_U,
          "without MBEC: bit 10 alone is not present, qual 0x%llx", ULL(f.qual12));
    reset_l1();
    map12(0x6000, d, EPT_R | EPT_X | EPT_XU | WB_LEAF, 0);
    fresh(CAPS, false);
    CHECK(fault(0x6000, Q_FETCH_U, &f) == EPT02_FILLED && ept02_entry(0x6000) == (d | EPT_R | EPT_X | WB_LEAF),
          "without MBEC: a user fetch needs X, leaf without XU: %llx", ULL(ept02_entry(0x6000)));
    map12(0x7000, d, EPT_R | EPT_XU | WB_LEAF, 0);
    CHECK(fault(0x7000, Q_FETCH_U, &f) == EPT02_VIOLATION && f.qual12 == (Q_FETCH_U | 0x08),
          "without MBEC: R+XU page refuses any fetch, bit 6 clear: qual 0x%llx", ULL(f.qual12));

    /* A change of the setting clears EPT02 (its leaves mean something else). */
    uint64_t clears = e02->clears;
    ept02_set_mbec(e02, false);
    CHECK(e02->clears == clears && ept02_entry(0x6000), "same setting: kept");
    ept02_set_mbec(e02, true);
    CHECK(e02->clears == clears + 1 && ept02_entry(0x6000) == 0 && e02->flush, "MBEC turned on: cleared");
}

/* Advanced exit information: bits 9-11 of the CPU's qualification reach L1 only when
 * offered (they describe L2's paging, unchanged by EPT02). */
static void test_adv_info(void)
{
    struct ept02_fault f;
    uint64_t adv = EPT_QUAL_USER | EPT_QUAL_RW_PAGE | EPT_QUAL_NX_PAGE;
    reset_l1();
    map12(0x8000, L1(22), EPT_R | WB_LEAF, 0);
    fresh(CAPS, false);
    CHECK(fault(0x8000, EPT_W | Q_GLA | adv, &f) == EPT02_VIOLATION && f.qual12 == (EPT_W | Q_GLA | adv | 0x08),
          "offered: bits 9-11 passed on, qual 0x%llx", ULL(f.qual12));
    fresh(CAPS & ~EPT_CAP_ADV_EXIT_INFO, false);
    CHECK(fault(0x8000, EPT_W | Q_GLA | adv, &f) == EPT02_VIOLATION && f.qual12 == (EPT_W | Q_GLA | 0x08),
          "not offered: bits 9-11 clear, qual 0x%llx", ULL(f.qual12));
}

/* ---- capabilities, entry check, vmcs12 -> EPT02 ---- */

static struct vmx_msrs hw = {
    .basic = 0x00d810000000002bull, .pinbased = 0x0000007f00000016ull, .procbased = 0xfff9fffe04006172ull,
    .exit = 0x01ffffff00036dfbull, .entry = 0x0003ffff000011fbull, .procbased2 = 0x02577fff00000000ull,
    .ept_vpid = 0x00000f0106734141ull, .misc = 0x300481e5ull, .cr0_fixed0 = 0x80000021, .cr0_fixed1 = 0xffffffff,
    .cr4_fixed0 = 0x2000, .cr4_fixed1 = 0x3767ff,
};

static void test_caps(void)
{
    struct nested_caps c;
    nested_caps_init(&c, &hw);
    CHECK(nested_allowed1(c.procbased2) & SECONDARY_MBEC, "MBEC offered (procbased2 %llx)", ULL(c.procbased2));
    CHECK(c.ept_vpid & EPT_CAP_ADV_EXIT_INFO, "advanced exit information offered (%llx)", ULL(c.ept_vpid));
    struct vmx_msrs m = hw;
    m.ept_vpid &= ~EPT_CAP_ADV_EXIT_INFO;
    nested_caps_init(&c, &m);
    CHECK(!(nested_allowed1(c.procbased2) & SECONDARY_MBEC) && !(c.ept_vpid & EPT_CAP_ADV_EXIT_INFO),
          "no advanced exit information: no MBEC either");
    m = hw;
    m.procbased2 &= ~((uint64_t)SECONDARY_MBEC << 32);
    nested_caps_init(&c, &m);
    CHECK(!(nested_allowed1(c.procbased2) & SECONDARY_MBEC) && (c.ept_vpid & EPT_CAP_ADV_EXIT_INFO),
          "CPU without MBEC: only the exit information");
    m = hw;
    m.procbased2 &= ~((uint64_t)SECONDARY_EPT << 32);
    nested_caps_init(&c, &m);
    CHECK(!(nested_allowed1(c.procbased2) & SECONDARY_MBEC), "no EPT: no MBEC");
}

static void test_entry_check(void)
{
    static struct vmcs12 v;
    struct nested_caps c;
    nested_caps_init(&c, &hw);
    valid64(&v);
    vmcs12_set(&v, CPU_BASED_VM_EXEC_CONTROL, vmcs12_get(&v, CPU_BASED_VM_EXEC_CONTROL) | CPU_BASED_ACTIVATE_SECONDARY);
    vmcs12_set(&v, SECONDARY_VM_EXEC_CONTROL, SECONDARY_MBEC);
    CHECK(nested_check_controls(&v, &c, PHYS) == VMXERR_ENTRY_INVALID_CONTROL &&
              strstr(nested_check_last_rule(), "mode-based execute control for EPT requires enable EPT"),
          "MBEC without EPT: VMfailValid 7 (%s)", nested_check_last_rule());
    vmcs12_set(&v, SECONDARY_VM_EXEC_CONTROL, SECONDARY_MBEC | SECONDARY_EPT);
    vmcs12_set_eptp(&v, 0x1000 | 0x1e);
    CHECK(nested_check_controls(&v, &c, PHYS) == 0, "MBEC with EPT: passes (%s)", nested_check_last_rule());
}

static void test_enter(void)
{
    static struct nested_caps caps;
    static struct regcache rc;
    static struct nested_state ns;
    static struct nested_vcpu nv;
    static struct vmcs12 v12;
    reset_l1();
    fake_vmcs_reset();
    nested_caps_init(&caps, &hw);
    regcache_init(&rc, true);
    memset(&v12, 0, sizeof(v12));
    ns = (struct nested_state){.cache = &v12, .ept12 = true};
    nv = (struct nested_vcpu){.rc = &rc, .n = &ns, .caps = &caps, .hw = &hw, .phys_bits = PHYS,
                              .l1_page = l1mem_identity_page, .flush_ept = flush_ept};
    vmcs12_set_eptp(&v12, eptp12);
    vmcs12_set(&v12, CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_ACTIVATE_SECONDARY);
    vmcs12_set(&v12, SECONDARY_VM_EXEC_CONTROL, SECONDARY_EPT | SECONDARY_MBEC);
    CHECK(nested_ept02_enter(&nv) == 0 && ns.ept02 && ns.ept02->mbec, "vmcs12 with MBEC: EPT02 walks with it");
    vmcs12_set(&v12, SECONDARY_VM_EXEC_CONTROL, SECONDARY_EPT);
    CHECK(nested_ept02_enter(&nv) == 0 && !ns.ept02->mbec, "vmcs12 without MBEC: EPT02 without");
    vmcs12_set(&v12, SECONDARY_VM_EXEC_CONTROL, SECONDARY_EPT | SECONDARY_MBEC);
    CHECK(nested_ept02_switch(&nv, eptp12) == 0 && ns.ept02->mbec, "EPTP switch keeps vmcs12's MBEC");
}

int main(void)
{
    l1mem_init();
    test_execute();
    test_present();
    test_adv_info();
    test_caps();
    test_entry_check();
    test_enter();
    l1mem_free();
    return test_summary();
}
