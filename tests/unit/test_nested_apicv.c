/*
 * Host tests for APIC virtualization offered to L1 (nested/apicv.c, the 26.2.1.1 rules in
 * nested/checks.c): the capabilities, one case per VM-entry check, vmcs02 composed from
 * vmcs12 (L1's pages as they are, hv's stand-in page for one that is not RAM, the APIC-access
 * address unchanged), the guest interrupt status saved at a reflected exit, and an L2 write
 * to hv's write-protected xAPIC page that L1 made its APIC-access page (an APIC-access exit).
 */
#include <string.h>
#include "lib/x86.h"
#include "nested/checks.h"
#include "tests/unit/nested_harness.h"
#include "vmx/vmx_bits.h"

#define V12 ns.cache
#define VAPIC GPA(PG_FREE)          /* L1's virtual-APIC page */
#define ACCESS GPA(PG_FREE + 1)     /* L1's APIC-access page */
#define PID GPA(PG_FREE + 2)        /* L1's posted-interrupt descriptor */
#define HOLE GPA(PG_FREE + 3)       /* hv's memory (ram_hole) when a test says so */

static uint64_t g02(uint32_t f) { return fake_vmcs_get_in(ns.vmcs02_pa, f); }

static void fresh(void)
{
    nh_setup(false);
    l1_ready(PG_VMCS_A);
}

static void set_or(uint32_t f, uint64_t bits) { vmcs12_set(V12, f, vmcs12_get(V12, f) | bits); }
static void set_clear(uint32_t f, uint64_t bits) { vmcs12_set(V12, f, vmcs12_get(V12, f) & ~bits); }

/* "use TPR shadow" with a virtual-APIC page and threshold that pass the checks. */
static void tpr_shadow(void)
{
    set_or(CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_TPR_SHADOW);
    vmcs12_set(V12, VIRTUAL_APIC_PAGE_ADDR, VAPIC);
    vmcs12_set(V12, TPR_THRESHOLD, 0);
}
static void flexpriority(void)
{
    tpr_shadow();
    set_or(SECONDARY_VM_EXEC_CONTROL, SECONDARY_VIRTUALIZE_APIC);
    vmcs12_set(V12, APIC_ACCESS_ADDR, ACCESS);
}

static void test_caps(void)
{
    fresh();
    uint32_t proc = nested_allowed1(caps.true_procbased), proc2 = nested_allowed1(caps.procbased2);
    CHECK(proc & CPU_BASED_TPR_SHADOW, "use TPR shadow offered: %x", proc);
    CHECK((proc2 & (SECONDARY_VIRTUALIZE_APIC | SECONDARY_VIRTUALIZE_X2APIC)) ==
              (SECONDARY_VIRTUALIZE_APIC | SECONDARY_VIRTUALIZE_X2APIC),
          "virtualize APIC accesses, virtualize x2APIC mode offered: %x", proc2);
    unsigned f = nested_vmcs12_features(&caps);
    CHECK((f & (VMCS12_FEAT_TPR_SHADOW | VMCS12_FEAT_APIC_ACCESS)) == (VMCS12_FEAT_TPR_SHADOW | VMCS12_FEAT_APIC_ACCESS),
          "L1 reaches the virtual-APIC address, TPR threshold, APIC-access address: %x", f);
    uint64_t val = 0;
    CHECK(l1_vmwrite(TPR_THRESHOLD, 3) == O_SUCCEED && l1_vmread(TPR_THRESHOLD, &val) == O_SUCCEED && val == 3,
          "VMWRITE/VMREAD TPR threshold: %llu", ULL(val));
}

struct rule_case {
    const char *name, *rule; /* rule: NULL if the entry passes the checks */
    void (*setup)(void);
};
static void c_vapic_unaligned(void) { tpr_shadow(); vmcs12_set(V12, VIRTUAL_APIC_PAGE_ADDR, VAPIC | 0x80); }
static void c_vapic_wide(void) { tpr_shadow(); vmcs12_set(V12, VIRTUAL_APIC_PAGE_ADDR, 1ull << 39); }
static void c_threshold_high(void) { tpr_shadow(); vmcs12_set(V12, TPR_THRESHOLD, 0x10); }
static void c_x2apic_no_tpr(void) { set_or(SECONDARY_VM_EXEC_CONTROL, SECONDARY_VIRTUALIZE_X2APIC); }
static void c_x2apic_and_access(void)
{
    flexpriority();
    set_or(SECONDARY_VM_EXEC_CONTROL, SECONDARY_VIRTUALIZE_X2APIC);
}
static void c_x2apic(void) { tpr_shadow(); set_or(SECONDARY_VM_EXEC_CONTROL, SECONDARY_VIRTUALIZE_X2APIC); }
static void c_access_no_tpr(void)
{
    set_or(SECONDARY_VM_EXEC_CONTROL, SECONDARY_VIRTUALIZE_APIC);
    vmcs12_set(V12, APIC_ACCESS_ADDR, ACCESS);
}
static void c_access_unaligned(void) { flexpriority(); vmcs12_set(V12, APIC_ACCESS_ADDR, ACCESS | 4); }
static void c_access_wide(void) { flexpriority(); vmcs12_set(V12, APIC_ACCESS_ADDR, 1ull << 40); }
static void c_access_junk_off(void) { vmcs12_set(V12, APIC_ACCESS_ADDR, 0x123); }
static void c_vapic_junk_off(void)
{
    vmcs12_set(V12, VIRTUAL_APIC_PAGE_ADDR, 0x123);
    vmcs12_set(V12, TPR_THRESHOLD, ~0ull);
}
/* 26.2.1.1 on memory: threshold 5 against VTPR 0x40 (4) without virtualize APIC accesses. */
static void c_vtpr_below(void)
{
    tpr_shadow();
    vmcs12_set(V12, TPR_THRESHOLD, 5);
    *(uint8_t *)gpa_ptr(VAPIC + 0x80) = 0x40;
}
static void c_vtpr_equal(void)
{
    c_vtpr_below();
    *(uint8_t *)gpa_ptr(VAPIC + 0x80) = 0x5f;
}
static void c_vtpr_flex(void) /* with virtualize APIC accesses: an exit after entry, no check (26.6.7) */
{
    c_vtpr_below();
    flexpriority();
    vmcs12_set(V12, TPR_THRESHOLD, 5);
}
static void c_vtpr_hole(void) /* hv's memory reads as zeros: VTPR 0 */
{
    tpr_shadow();
    ram_hole = HOLE;
    vmcs12_set(V12, VIRTUAL_APIC_PAGE_ADDR, HOLE);
    vmcs12_set(V12, TPR_THRESHOLD, 1);
}

static const struct rule_case cases[] = {
    {"TPR shadow", NULL, tpr_shadow},
    {"TPR shadow and virtualize APIC accesses", NULL, flexpriority},
    {"virtualize x2APIC mode", NULL, c_x2apic},
    {"virtualize APIC accesses without TPR shadow", NULL, c_access_no_tpr},
    {"virtual-APIC address bit 7", "virtual-APIC address bits 11:0 must be 0", c_vapic_unaligned},
    {"virtual-APIC address bit 39", "virtual-APIC address beyond physical-address width", c_vapic_wide},
    {"TPR threshold 0x10", "TPR threshold bits 31:4 must be 0", c_threshold_high},
    {"x2APIC mode without TPR shadow", "virtualize x2APIC mode requires use TPR shadow", c_x2apic_no_tpr},
    {"x2APIC mode and APIC accesses", "virtualize x2APIC mode requires virtualize APIC accesses 0", c_x2apic_and_access},
    {"APIC-access address bit 2", "APIC-access address bits 11:0 must be 0", c_access_unaligned},
    {"APIC-access address bit 40", "APIC-access address beyond physical-address width", c_access_wide},
    {"APIC-access junk, control off", NULL, c_access_junk_off},
    {"virtual-APIC junk, control off", NULL, c_vapic_junk_off},
    {"TPR threshold 5 above VTPR 4", "TPR threshold bits 3:0 must not exceed VTPR bits 7:4", c_vtpr_below},
    {"TPR threshold 5, VTPR 5", NULL, c_vtpr_equal},
    {"TPR threshold 5 above VTPR 4 with APIC accesses", NULL, c_vtpr_flex},
    {"TPR threshold 1, virtual-APIC page in hv's memory", "TPR threshold bits 3:0 must not exceed VTPR", c_vtpr_hole},
};

/* Each case through L1's VMLAUNCH: VMfailValid(7) with the rule, or L2 entered. */
static void test_rules(void)
{
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct rule_case *t = &cases[i];
        fresh();
        t->setup();
        enum outcome o = l1_vmlaunch();
        if (t->rule) {
            const char *rule = nested_check_last_rule();
            CHECK(o == O_FAIL_VALID && l1_error() == VMXERR_ENTRY_INVALID_CONTROL, "%s: %s error %u, want VMfailValid(7)",
                  t->name, outcome_name(o), l1_error());
            CHECK(strstr(rule, t->rule) && !strncmp(rule, "26.2.1.1: ", 10), "%s: rule \"%s\", want \"%s\"", t->name,
                  rule, t->rule);
        } else {
            CHECK(o == O_ENTERED, "%s: %s (%s), want L2 entered", t->name, outcome_name(o), nested_check_last_rule());
        }
    }
}

/* vmcs02 runs the features in hardware with L1's pages. */
static void test_vmcs02(void)
{
    fresh();
    flexpriority();
    vmcs12_set(V12, TPR_THRESHOLD, 7);
    set_or(CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_CR8_LOAD_EXITING);
    enum outcome o = l1_vmlaunch();
    CHECK(o == O_ENTERED, "flexpriority: %s", outcome_name(o));
    uint32_t proc = (uint32_t)g02(CPU_BASED_VM_EXEC_CONTROL), proc2 = (uint32_t)g02(SECONDARY_VM_EXEC_CONTROL);
    CHECK((proc & (CPU_BASED_TPR_SHADOW | CPU_BASED_CR8_LOAD_EXITING)) == (CPU_BASED_TPR_SHADOW | CPU_BASED_CR8_LOAD_EXITING),
          "vmcs02: TPR shadow and L1's CR8-load exiting: %x", proc);
    CHECK(proc2 & SECONDARY_VIRTUALIZE_APIC, "vmcs02: virtualize APIC accesses: %x", proc2);
    CHECK(g02(VIRTUAL_APIC_PAGE_ADDR) == VAPIC, "vmcs02 virtual-APIC page %llx, want L1's %llx",
          ULL(g02(VIRTUAL_APIC_PAGE_ADDR)), ULL(VAPIC));
    CHECK(g02(TPR_THRESHOLD) == 7, "vmcs02 TPR threshold %llu", ULL(g02(TPR_THRESHOLD)));
    CHECK(g02(APIC_ACCESS_ADDR) == ACCESS, "vmcs02 APIC-access address %llx", ULL(g02(APIC_ACCESS_ADDR)));

    /* The exits the features cause are L1's, with the CPU's qualification. */
    CHECK(l2_exit(EXIT_REASON_TPR_BELOW_THRESHOLD, 0) && !ns.guest_mode, "TPR below threshold (43) reflected");
    CHECK(vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_TPR_BELOW_THRESHOLD, "vmcs12 exit reason %llu",
          ULL(vmcs12_get(V12, VM_EXIT_REASON)));
    o = l1_vmresume();
    CHECK(o == O_ENTERED, "resume: %s", outcome_name(o));
    CHECK(l2_exit(EXIT_REASON_APIC_ACCESS, 0x1080) && !ns.guest_mode, "APIC access (44) reflected");
    CHECK(vmcs12_get(V12, EXIT_QUALIFICATION) == 0x1080, "APIC-access qualification %llx",
          ULL(vmcs12_get(V12, EXIT_QUALIFICATION)));

    /* A virtual-APIC page in hv's memory: the CPU gets hv's zeroed stand-in, never the
     * address; the APIC-access address, never accessed as memory, stays as it is. */
    fresh();
    flexpriority();
    ram_hole = HOLE;
    vmcs12_set(V12, VIRTUAL_APIC_PAGE_ADDR, HOLE);
    vmcs12_set(V12, APIC_ACCESS_ADDR, HOLE);
    o = l1_vmlaunch();
    uint64_t va = g02(VIRTUAL_APIC_PAGE_ADDR);
    CHECK(o == O_ENTERED && va && va != HOLE && !(va & 0xfff), "hv's memory: %s, vmcs02 virtual-APIC page %llx",
          outcome_name(o), ULL(va));
    CHECK(g02(APIC_ACCESS_ADDR) == HOLE, "APIC-access address in hv's memory kept: %llx", ULL(g02(APIC_ACCESS_ADDR)));
    if (!va)
        return;
    ((uint8_t *)(uintptr_t)va)[0x80] = 0xf0; /* the CPU's write while L2 ran */
    CHECK(l2_exit(EXIT_REASON_CPUID, 0), "CPUID reflected");
    CHECK(l1_vmresume() == O_ENTERED && g02(VIRTUAL_APIC_PAGE_ADDR) == va && ((uint8_t *)(uintptr_t)va)[0x80] == 0,
          "the stand-in reads zeros again at the next entry");
}

/* L2 on EPT01, L1's APIC-access page = hv's write-protected xAPIC page: a write is L1's
 * APIC-access exit (Table 28-6: offset, access type 1); any other page is hv's as before. */
static void test_apic_page_write(void)
{
    fresh();
    flexpriority();
    vmcs12_set(V12, APIC_ACCESS_ADDR, 0xfee00000ull);
    CHECK(l1_vmlaunch() == O_ENTERED, "entered");
    uint64_t gla = 1ull << 7 | 1ull << 8, q = gla | 2; /* a write, linear address translated */
    CHECK(!nested_l2_apic_page_write(&nv, 0xfec00000ull, q) && ns.guest_mode, "another page: hv's");
    fake_vmcs_set(VM_EXIT_REASON, EXIT_REASON_EPT_VIOLATION);
    regcache_reset(&rc);
    CHECK(nested_l2_apic_page_write(&nv, 0xfee000b0ull, q) && !ns.guest_mode, "L1's APIC-access page: reflected");
    regcache_flush(&rc);
    CHECK(vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_APIC_ACCESS &&
              vmcs12_get(V12, EXIT_QUALIFICATION) == (0xb0 | 1ull << 12),
          "exit %llu qual %llx, want 44 qual 0x10b0", ULL(vmcs12_get(V12, VM_EXIT_REASON)),
          ULL(vmcs12_get(V12, EXIT_QUALIFICATION)));
    CHECK(!nested_l2_apic_page_write(&nv, 0xfee000b0ull, q), "L1 itself: hv's");
    /* L2 on EPT02: hv passes the L1-physical address EPT12 gave (hv/nested_glue.c). */
    CHECK(l1_vmresume() == O_ENTERED, "resumed");
    ns.ept12 = true;
    regcache_reset(&rc);
    CHECK(nested_l2_apic_page_write(&nv, 0xfee00300ull, q) && !ns.guest_mode, "through EPT12: reflected");
    regcache_flush(&rc);
    CHECK(vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_APIC_ACCESS &&
              vmcs12_get(V12, EXIT_QUALIFICATION) == (0x300 | 1ull << 12),
          "through EPT12: exit %llu qual %llx", ULL(vmcs12_get(V12, VM_EXIT_REASON)),
          ULL(vmcs12_get(V12, EXIT_QUALIFICATION)));
    ns.ept12 = false;

    fresh(); /* without virtualize APIC accesses the page is the APIC's */
    tpr_shadow();
    vmcs12_set(V12, APIC_ACCESS_ADDR, 0xfee00000ull);
    CHECK(l1_vmlaunch() == O_ENTERED && !nested_l2_apic_page_write(&nv, 0xfee00300ull, q), "no APIC accesses: hv's");
}

/* ---- step 2: APIC-register virtualization, virtual-interrupt delivery, posted interrupts ---- */

static void fresh_pi(void) /* a CPU with posted interrupts (Bochs' fixture lacks them) */
{
    nh_setup(false);
    hw.pinbased |= (uint64_t)PIN_BASED_POSTED_INTR << 32;
    fresh();
}
static void vid(void)
{
    flexpriority();
    set_or(SECONDARY_VM_EXEC_CONTROL, SECONDARY_APIC_REGISTER_VIRT | SECONDARY_VIRTUAL_INTR_DELIVERY);
    vmcs12_set(V12, TPR_THRESHOLD, 0xabc0); /* not checked with virtual-interrupt delivery */
}
static void posted(void)
{
    vid();
    set_or(PIN_BASED_VM_EXEC_CONTROL, PIN_BASED_POSTED_INTR);
    vmcs12_set(V12, POSTED_INTR_NV, 0xf2);
    vmcs12_set(V12, POSTED_INTR_DESC_ADDR, PID + 0x40);
}
static void c_vid_no_tpr(void) { set_or(SECONDARY_VM_EXEC_CONTROL, SECONDARY_VIRTUAL_INTR_DELIVERY); }
static void c_regvirt_no_tpr(void) { set_or(SECONDARY_VM_EXEC_CONTROL, SECONDARY_APIC_REGISTER_VIRT); }
static void c_vid_no_extint(void) { vid(); set_clear(PIN_BASED_VM_EXEC_CONTROL, PIN_BASED_EXT_INTR_EXITING); }
static void c_pi_no_vid(void)
{
    posted();
    set_clear(SECONDARY_VM_EXEC_CONTROL, SECONDARY_VIRTUAL_INTR_DELIVERY);
    vmcs12_set(V12, TPR_THRESHOLD, 0);
}
static void c_pi_no_ack(void) { posted(); set_clear(VM_EXIT_CONTROLS, VM_EXIT_ACK_INTR_ON_EXIT); }
static void c_pi_nv(void) { posted(); vmcs12_set(V12, POSTED_INTR_NV, 0x1f2); }
static void c_pi_desc(void) { posted(); vmcs12_set(V12, POSTED_INTR_DESC_ADDR, PID + 0x20); }
static void c_pi_wide(void) { posted(); vmcs12_set(V12, POSTED_INTR_DESC_ADDR, 1ull << 39); }

static const struct rule_case cases2[] = {
    {"APIC-register virtualization, virtual-interrupt delivery", NULL, vid},
    {"posted interrupts", NULL, posted},
    {"virtual-interrupt delivery without TPR shadow", "virtual-interrupt delivery requires use TPR shadow", c_vid_no_tpr},
    {"APIC-register virtualization without TPR shadow", "APIC-register virtualization requires use TPR shadow",
     c_regvirt_no_tpr},
    {"virtual-interrupt delivery without external-interrupt exiting",
     "virtual-interrupt delivery requires external-interrupt exiting", c_vid_no_extint},
    {"posted interrupts without virtual-interrupt delivery",
     "process posted interrupts requires virtual-interrupt delivery", c_pi_no_vid},
    {"posted interrupts without acknowledge interrupt on exit",
     "process posted interrupts requires acknowledge interrupt on exit", c_pi_no_ack},
    {"notification vector 0x1f2", "notification vector bits 15:8 must be 0", c_pi_nv},
    {"descriptor at +0x20", "descriptor address bits 5:0 must be 0", c_pi_desc},
    {"descriptor at bit 39", "descriptor address beyond physical-address width", c_pi_wide},
};

static void test_rules2(void)
{
    for (unsigned i = 0; i < sizeof(cases2) / sizeof(cases2[0]); i++) {
        const struct rule_case *t = &cases2[i];
        fresh_pi();
        t->setup();
        enum outcome o = l1_vmlaunch();
        if (t->rule)
            CHECK(o == O_FAIL_VALID && l1_error() == VMXERR_ENTRY_INVALID_CONTROL &&
                      strstr(nested_check_last_rule(), t->rule),
                  "%s: %s error %u rule \"%s\", want VMfailValid(7) \"%s\"", t->name, outcome_name(o), l1_error(),
                  nested_check_last_rule(), t->rule);
        else
            CHECK(o == O_ENTERED, "%s: %s (%s), want L2 entered", t->name, outcome_name(o), nested_check_last_rule());
    }
}

/* vmcs02 gets the EOI-exit bitmaps, the guest interrupt status (RVI, SVI), the notification
 * vector and L1's descriptor; a reflected exit saves the guest interrupt status (28.3.3). */
static void test_vmcs02_vid(void)
{
    fresh_pi();
    uint32_t pin = nested_allowed1(caps.true_pinbased), proc2 = nested_allowed1(caps.procbased2);
    CHECK(pin & PIN_BASED_POSTED_INTR, "posted interrupts offered where the CPU has them: %x", pin);
    CHECK((proc2 & (SECONDARY_APIC_REGISTER_VIRT | SECONDARY_VIRTUAL_INTR_DELIVERY)) ==
              (SECONDARY_APIC_REGISTER_VIRT | SECONDARY_VIRTUAL_INTR_DELIVERY),
          "APIC-register virtualization, virtual-interrupt delivery offered: %x", proc2);
    posted();
    for (unsigned i = 0; i < 4; i++)
        vmcs12_set(V12, EOI_EXIT_BITMAP0 + 2 * i, 0x1111111111111111ull << i);
    vmcs12_set(V12, GUEST_INTR_STATUS, 0x3051); /* SVI 0x30, RVI 0x51 */
    enum outcome o = l1_vmlaunch();
    CHECK(o == O_ENTERED, "posted interrupts: %s (%s)", outcome_name(o), nested_check_last_rule());
    CHECK(g02(PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED_POSTED_INTR, "vmcs02: posted interrupts");
    CHECK(g02(VM_EXIT_CONTROLS) & VM_EXIT_ACK_INTR_ON_EXIT, "vmcs02: L1's acknowledge interrupt on exit");
    CHECK((g02(SECONDARY_VM_EXEC_CONTROL) & (SECONDARY_APIC_REGISTER_VIRT | SECONDARY_VIRTUAL_INTR_DELIVERY)) ==
              (SECONDARY_APIC_REGISTER_VIRT | SECONDARY_VIRTUAL_INTR_DELIVERY), "vmcs02: VID");
    for (unsigned i = 0; i < 4; i++)
        CHECK(g02(EOI_EXIT_BITMAP0 + 2 * i) == 0x1111111111111111ull << i, "EOI-exit bitmap %u %llx", i,
              ULL(g02(EOI_EXIT_BITMAP0 + 2 * i)));
    CHECK(g02(GUEST_INTR_STATUS) == 0x3051, "vmcs02 guest interrupt status %llx", ULL(g02(GUEST_INTR_STATUS)));
    CHECK(g02(POSTED_INTR_NV) == 0xf2 && g02(POSTED_INTR_DESC_ADDR) == PID + 0x40, "vmcs02 NV %llx, descriptor %llx",
          ULL(g02(POSTED_INTR_NV)), ULL(g02(POSTED_INTR_DESC_ADDR)));
    fake_vmcs_set(GUEST_INTR_STATUS, 0x5100); /* the CPU delivered 0x51: SVI 0x51, RVI 0 */
    CHECK(l2_exit(EXIT_REASON_EOI_INDUCED, 0x51) && !ns.guest_mode, "virtualized EOI (45) reflected");
    CHECK(vmcs12_get(V12, GUEST_INTR_STATUS) == 0x5100 && vmcs12_get(V12, EXIT_QUALIFICATION) == 0x51,
          "vmcs12 guest interrupt status %llx qual %llx", ULL(vmcs12_get(V12, GUEST_INTR_STATUS)),
          ULL(vmcs12_get(V12, EXIT_QUALIFICATION)));
    CHECK(l1_vmresume() == O_ENTERED && l2_exit(EXIT_REASON_APIC_WRITE, 0x300) &&
              vmcs12_get(V12, VM_EXIT_REASON) == EXIT_REASON_APIC_WRITE && vmcs12_get(V12, EXIT_QUALIFICATION) == 0x300,
          "APIC write (56) reflected with its offset");

    /* Without virtual-interrupt delivery the field is not L1's guest state: left alone. */
    fresh_pi();
    flexpriority();
    vmcs12_set(V12, GUEST_INTR_STATUS, 0x77);
    CHECK(l1_vmlaunch() == O_ENTERED, "flexpriority");
    fake_vmcs_set(GUEST_INTR_STATUS, 0x5100);
    CHECK(l2_exit(EXIT_REASON_CPUID, 0) && vmcs12_get(V12, GUEST_INTR_STATUS) == 0x77, "not saved without VID: %llx",
          ULL(vmcs12_get(V12, GUEST_INTR_STATUS)));

    /* A descriptor in hv's memory: hv's zeroed stand-in at the same offset in its page. */
    fresh_pi();
    posted();
    ram_hole = HOLE;
    vmcs12_set(V12, POSTED_INTR_DESC_ADDR, HOLE + 0x80);
    CHECK(l1_vmlaunch() == O_ENTERED, "descriptor in hv's memory: entered");
    uint64_t pid = g02(POSTED_INTR_DESC_ADDR);
    CHECK((pid & 0xfff) == 0x80 && (pid & ~0xfffull) != HOLE && !*(uint64_t *)(uintptr_t)pid,
          "vmcs02 descriptor %llx: hv's zeroed page", ULL(pid));
}

/* L2 lowers VTPR by a plain store to its virtual-APIC page (no TPR virtualization, no exit).
 * hv's own re-entries of vmcs02 must not meet the VTPR rule (26.2.1.1: VMfailValid) nor the
 * TPR-below-threshold exit after entry (26.7.7), which the CPU applies only at L1's next entry. */
static void test_l2_resume_vtpr(void)
{
    uint8_t *vtpr = gpa_ptr(VAPIC + 0x80);
    fresh();
    tpr_shadow();
    vmcs12_set(V12, TPR_THRESHOLD, 5);
    *vtpr = 0x50;
    CHECK(l1_vmlaunch() == O_ENTERED && g02(TPR_THRESHOLD) == 5, "entered, vmcs02 threshold %llu",
          ULL(g02(TPR_THRESHOLD)));
    *vtpr = 0x30; /* L2's store */
    CHECK(!l2_exit(EXIT_REASON_EPT_VIOLATION, 0x181) && ns.guest_mode, "EPT01 violation: hv's, L2 goes on");
    CHECK(g02(TPR_THRESHOLD) == 3, "hv's re-entry: vmcs02 threshold %llu, want VTPR[7:4] 3", ULL(g02(TPR_THRESHOLD)));
    *vtpr = 0x70;
    CHECK(!l2_exit(EXIT_REASON_EPT_VIOLATION, 0x181) && g02(TPR_THRESHOLD) == 5,
          "VTPR 7: vmcs02 threshold %llu, want vmcs12's 5", ULL(g02(TPR_THRESHOLD)));
    *vtpr = 0x20;
    CHECK(!l2_exit(EXIT_REASON_EPT_VIOLATION, 0x181) && g02(TPR_THRESHOLD) == 2, "VTPR 2: threshold %llu",
          ULL(g02(TPR_THRESHOLD)));
    CHECK(vmcs12_get(V12, TPR_THRESHOLD) == 5, "vmcs12's threshold untouched: %llu", ULL(vmcs12_get(V12, TPR_THRESHOLD)));
    /* L1's own entry applies the rule as the CPU does: VTPR 2 below 5 is VMfailValid(7). */
    CHECK(l2_exit(EXIT_REASON_CPUID, 0) && !ns.guest_mode, "CPUID reflected");
    CHECK(l1_vmresume() == O_FAIL_VALID && l1_error() == VMXERR_ENTRY_INVALID_CONTROL, "L1's VMRESUME: error %u",
          l1_error());

    /* With virtualize APIC accesses L1's entry passes and vmcs02 gets vmcs12's threshold
     * back: the CPU then exits (43) right after that entry, as it would for L1. */
    fresh();
    flexpriority();
    vmcs12_set(V12, TPR_THRESHOLD, 5);
    *vtpr = 0x50;
    CHECK(l1_vmlaunch() == O_ENTERED, "flexpriority entered");
    *vtpr = 0x10;
    CHECK(!l2_exit(EXIT_REASON_EPT_VIOLATION, 0x181) && g02(TPR_THRESHOLD) == 1, "flexpriority: threshold %llu",
          ULL(g02(TPR_THRESHOLD)));
    CHECK(l2_exit(EXIT_REASON_CPUID, 0) && l1_vmresume() == O_ENTERED && g02(TPR_THRESHOLD) == 5,
          "L1's entry: vmcs02 threshold %llu, want vmcs12's 5", ULL(g02(TPR_THRESHOLD)));

    /* A virtual-APIC page in hv's memory: VTPR is what the CPU wrote into hv's stand-in. */
    fresh();
    flexpriority();
    vmcs12_set(V12, TPR_THRESHOLD, 5);
    ram_hole = HOLE;
    vmcs12_set(V12, VIRTUAL_APIC_PAGE_ADDR, HOLE);
    CHECK(l1_vmlaunch() == O_ENTERED, "stand-in entered");
    uint8_t *st = (uint8_t *)(uintptr_t)g02(VIRTUAL_APIC_PAGE_ADDR);
    st[0x80] = 0x90;
    CHECK(!l2_exit(EXIT_REASON_EPT_VIOLATION, 0x181) && g02(TPR_THRESHOLD) == 5, "stand-in VTPR 9: threshold %llu",
          ULL(g02(TPR_THRESHOLD)));
    st[0x80] = 0x30;
    CHECK(!l2_exit(EXIT_REASON_EPT_VIOLATION, 0x181) && g02(TPR_THRESHOLD) == 3, "stand-in VTPR 3: threshold %llu",
          ULL(g02(TPR_THRESHOLD)));

    /* Virtual-interrupt delivery: no threshold applies, vmcs02 keeps vmcs12's. */
    fresh();
    vid(); /* threshold 0xabc0, VTPR 5 */
    set_or(PIN_BASED_VM_EXEC_CONTROL, PIN_BASED_EXT_INTR_EXITING);
    *vtpr = 0x50;
    CHECK(l1_vmlaunch() == O_ENTERED, "VID entered: %s", nested_check_last_rule());
    *vtpr = 0;
    CHECK(!l2_exit(EXIT_REASON_EPT_VIOLATION, 0x181) && g02(TPR_THRESHOLD) == 0xabc0, "VID: threshold %llx",
          ULL(g02(TPR_THRESHOLD)));
}

/* A VM exit during the delivery of the virtual interrupt that the CPU delivers at VM entry
 * (29.2.1, 29.2.2: delivered as an external interrupt) that hv handles itself (an EPT01 or
 * EPT02 fill) and redelivers (27.2.4). Bochs 3.0 does not record a virtual interrupt as the
 * event being delivered and reports its previous event instead (here the NMI L1 injected
 * at an earlier entry); hv redelivers the virtual interrupt, vector SVI, as an external
 * interrupt, where the state proves that was the event: nothing injected at the entry, L2
 * still at the entry's RIP, SVI now the entry's RVI. */
#define L2_RIP 0x401000ull
static bool vid_exit_redelivers(uint32_t inj12, uint64_t exit_rip, uint16_t gis_exit, uint32_t idt, uint32_t want,
                                const char *what)
{
    fresh_pi();
    vid();
    vmcs12_set(V12, GUEST_INTR_STATUS, 0x0051); /* SVI 0, RVI 0x51 */
    vmcs12_set(V12, VM_ENTRY_INTR_INFO_FIELD, inj12);
    vmcs12_set(V12, GUEST_RIP, L2_RIP);
    if (l1_vmlaunch() != O_ENTERED)
        return CHECK(false, "%s: not entered (%s)", what, nested_check_last_rule());
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, 0); /* the CPU clears the valid bit at the exit */
    fake_vmcs_set(GUEST_RIP, exit_rip);
    fake_vmcs_set(GUEST_INTR_STATUS, gis_exit);
    fake_vmcs_set(IDT_VECTORING_INFO_FIELD, idt);
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, 0);
    bool l1 = l2_exit(EXIT_REASON_EPT_VIOLATION, 0); /* without L1's EPT: hv's own fill */
    regcache_redeliver_event(&rc, false);
    uint64_t got = fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD);
    return CHECK(!l1 && got == want, "%s: %s, redelivered 0x%llx, want 0x%llx", what, l1 ? "reflected" : "hv's",
                 ULL(got), ULL(want));
}

static void test_vid_event_in_flight(void)
{
    uint32_t nmi = INTR_INFO_VALID | INTR_TYPE_NMI | 2, ext51 = INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x51;
    vid_exit_redelivers(0, L2_RIP, 0x5100, nmi, ext51, "Bochs' stale NMI, virtual interrupt 0x51 in flight");
    vid_exit_redelivers(0, L2_RIP, 0x5100, ext51, ext51, "the CPU reports 0x51 itself");
    uint32_t ud = INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 6;
    vid_exit_redelivers(0, L2_RIP + 0x40, 0x5100, ud, ud, "L2 ran on (its #UD in flight): left as reported");
    vid_exit_redelivers(0, L2_RIP, 0x0051, nmi, nmi, "0x51 not delivered yet (SVI 0): left as reported");
    vid_exit_redelivers(nmi, L2_RIP, 0x5100, nmi, nmi, "L1 injected an NMI at the entry: left as reported");
    /* Only the entry's first exit: after hv resumed L2, the CPU reports hv's injection. */
    vid_exit_redelivers(0, L2_RIP, 0x5100, nmi, ext51, "first exit");
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, 0);
    fake_vmcs_set(IDT_VECTORING_INFO_FIELD, ud);
    CHECK(!l2_exit(EXIT_REASON_EPT_VIOLATION, 0), "second exit hv's");
    regcache_redeliver_event(&rc, false);
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == ud, "second exit: redelivered 0x%llx as reported",
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)));
}

/* 26.7.7: after an entry with "use TPR shadow" and no virtual-interrupt delivery, threshold
 * above VTPR[7:4] means a TPR-below-threshold exit (ahead of a pending INIT). */
static void test_tpr_exit_after_entry(void)
{
    uint8_t *vtpr = gpa_ptr(VAPIC + 0x80);
    fresh();
    flexpriority();
    vmcs12_set(V12, TPR_THRESHOLD, 5);
    *vtpr = 0x50;
    CHECK(!nested_tpr_exit_after_entry(&nv), "threshold 5, VTPR 0x50: no exit");
    *vtpr = 0x40;
    CHECK(nested_tpr_exit_after_entry(&nv), "threshold 5, VTPR 0x40: exit 43 after the entry");
    vid();
    CHECK(!nested_tpr_exit_after_entry(&nv), "with virtual-interrupt delivery: none");
}

int main(void)
{
    test_caps();
    test_rules2();
    test_vmcs02_vid();
    test_vid_event_in_flight();
    test_rules();
    test_vmcs02();
    test_apic_page_write();
    test_l2_resume_vtpr();
    test_tpr_exit_after_entry();
    return test_summary();
}
