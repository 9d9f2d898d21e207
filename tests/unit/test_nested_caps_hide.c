/*
 * hv.cfg's l1_vmx_hide= (nested/caps_hide.c) and what nested_caps_init makes of a CPU that
 * lacks a feature: the names and their bits, the rules that follow a hidden bit, the list of
 * what a CPU lacks, and that hv offers its own L1 exactly what it was offered (so an hv two
 * levels down sees the same capabilities as one: the premise of tests/hvhv/test-hvhv.sh).
 */
#include <stdio.h>
#include <string.h>
#include "nested/caps.h"
#include "nested/caps_hide.h"
#include "test_util.h"
#include "vmcs12_samples.h"

#define ULL(x) ((unsigned long long)(x))

static struct nested_caps caps_hiding(const char *list, struct vmx_msrs *out)
{
    struct vmx_msrs hw = bochs_skylake_x;
    struct nested_hide h = {0};
    char bad[32];
    CHECK(nested_hide_parse(list, &h, bad, sizeof(bad)) == 0, "'%s' parses (first unknown '%s')", list, bad);
    nested_hide_apply(&h, &hw);
    if (out)
        *out = hw;
    struct nested_caps c;
    nested_caps_init(&c, &hw);
    return c;
}

/* The capability MSRs an L1 of c reads, as that L1's vmx_read_msrs would fill them in. */
static struct vmx_msrs msrs_of(const struct nested_caps *c, const struct vmx_msrs *cpu)
{
    struct vmx_msrs m = {0};
    memcpy(m.vendor, cpu->vendor, sizeof(m.vendor));
    m.cpuid1_ecx = cpu->cpuid1_ecx;
    m.cpuid7_ebx = cpu->cpuid7_ebx;
    m.cpuid0a_eax = cpu->cpuid0a_eax, m.cpuid0a_ecx = cpu->cpuid0a_ecx, m.cpuid0a_edx = cpu->cpuid0a_edx; /* passed through */
    m.perf_capabilities = cpu->perf_capabilities;
    m.feature_control = 5;
    m.basic = c->basic;
    m.pinbased = c->true_pinbased, m.procbased = c->true_procbased;
    m.exit = c->true_exit, m.entry = c->true_entry;
    m.misc = c->misc, m.procbased2 = c->procbased2, m.ept_vpid = c->ept_vpid;
    m.cr0_fixed0 = c->cr0_fixed0, m.cr0_fixed1 = c->cr0_fixed1;
    m.cr4_fixed0 = c->cr4_fixed0, m.cr4_fixed1 = c->cr4_fixed1;
    return m;
}

static void test_parse(void)
{
    struct nested_hide h = {0};
    char bad[16];
    CHECK(nested_hide_parse("Shadow-VMCS,ept-ad  preemption-timer-save,\tpml", &h, bad, sizeof(bad)) == 0 && !bad[0],
          "commas, blanks and tabs separate; any case");
    CHECK(h.proc2 == (SECONDARY_SHADOW_VMCS | SECONDARY_PML) && h.ept_vpid == EPT_CAP_AD &&
              h.exit == VM_EXIT_SAVE_PREEMPTION_TIMER && !h.pin && !h.proc && !h.entry && !h.misc,
          "bits: proc2 %#x ept_vpid %#llx exit %#x", h.proc2, ULL(h.ept_vpid), h.exit);
    h = (struct nested_hide){0};
    CHECK(nested_hide_parse("ept, warp-drive, vpid teleport", &h, bad, sizeof(bad)) == 2 && !strcmp(bad, "warp-drive"),
          "two unknown names counted, the first kept: '%s'", bad);
    CHECK(h.proc2 == (SECONDARY_EPT | SECONDARY_VPID), "the known names still apply: %#x", h.proc2);
    h = (struct nested_hide){0};
    CHECK(nested_hide_parse("an-extremely-long-feature-name", &h, bad, sizeof(bad)) == 1 && strlen(bad) == 15,
          "an unknown name is cut to the buffer: '%s'", bad);
    CHECK(nested_hide_parse("ept-", &h, bad, sizeof(bad)) == 1 && nested_hide_parse("ep", &h, bad, sizeof(bad)) == 1,
          "no prefix matching");
    h = (struct nested_hide){0};
    CHECK(nested_hide_parse("", &h, bad, sizeof(bad)) == 0 && nested_hide_parse(" , ", &h, bad, sizeof(bad)) == 0 &&
              !h.proc2 && !h.pin,
          "an empty list hides nothing");
    h = (struct nested_hide){0};
    nested_hide_parse("efer pat activity-wait-sipi vmwrite-any invvpid", &h, bad, sizeof(bad));
    CHECK(h.exit == (VM_EXIT_SAVE_EFER | VM_EXIT_LOAD_EFER | VM_EXIT_SAVE_PAT | VM_EXIT_LOAD_PAT) &&
              h.entry == (VM_ENTRY_LOAD_EFER | VM_ENTRY_LOAD_PAT) && h.misc == ((1ull << 8) | (1ull << 29)) &&
              (h.ept_vpid & EPT_CAP_INVVPID),
          "multi-bit features: exit %#x entry %#x misc %#llx", h.exit, h.entry, ULL(h.misc));
}

static void test_apply(void)
{
    struct vmx_msrs hw;
    struct nested_caps full = caps_hiding("", NULL);
    struct nested_caps c = caps_hiding("ept", &hw);
    CHECK(!(hw.procbased2 >> 32 & SECONDARY_EPT) && (hw.procbased2 >> 32 & SECONDARY_UNRESTRICTED_GUEST),
          "apply clears the allowed-1 bit only: %#llx", ULL(hw.procbased2));
    CHECK(nested_allowed1(full.procbased2) & SECONDARY_EPT, "Bochs: EPT offered by default");
    CHECK(!(nested_allowed1(c.procbased2) & (SECONDARY_EPT | SECONDARY_UNRESTRICTED_GUEST)) &&
              !(c.ept_vpid & (EPT_CAP_PWL4 | EPT_CAP_INVEPT)) && (c.ept_vpid & EPT_CAP_INVVPID),
          "ept hidden: no unrestricted guest (26.2.1.1), no EPT caps, INVVPID kept: proc2 %#llx ept_vpid %#llx",
          ULL(c.procbased2), ULL(c.ept_vpid));
    c = caps_hiding("vpid", NULL);
    CHECK(!(nested_allowed1(c.procbased2) & SECONDARY_VPID) && !(c.ept_vpid >> 32) && (c.ept_vpid & EPT_CAP_PWL4),
          "vpid hidden: no INVVPID caps: %#llx", ULL(c.ept_vpid));
    c = caps_hiding("unrestricted-guest msr-bitmaps", NULL);
    CHECK(!(nested_allowed1(c.procbased2) & SECONDARY_UNRESTRICTED_GUEST) &&
              !(nested_allowed1(c.true_procbased) & CPU_BASED_USE_MSR_BITMAPS) &&
              (nested_allowed1(c.procbased2) & SECONDARY_EPT),
          "unrestricted guest and MSR bitmaps hidden, EPT kept");
    c = caps_hiding("preemption-timer", NULL);
    CHECK(!(nested_allowed1(c.true_pinbased) & PIN_BASED_PREEMPTION_TIMER) &&
              !(nested_allowed1(c.true_exit) & VM_EXIT_SAVE_PREEMPTION_TIMER),
          "no timer: no timer save either");
    c = caps_hiding("activity-hlt vmwrite-any", NULL);
    CHECK(!(c.misc & (1ull << 6)) && !(c.misc & (1ull << 29)) && (c.misc & (1ull << 8)) && (full.misc & (1ull << 29)),
          "misc bits: %#llx (full %#llx)", ULL(c.misc), ULL(full.misc));
    c = caps_hiding("secondary-controls", NULL);
    CHECK(!c.procbased2 && !c.ept_vpid, "no secondary controls: no IA32_VMX_PROCBASED_CTLS2, no EPT/VPID caps");
}

/* A CPU with the timer but without "save VMX-preemption timer value" (as a nested hypervisor
 * may offer it): vmcs02 could not keep L1's timer across the exits hv handles itself, so hv
 * does not offer the timer at all. */
static void test_timer_needs_save(void)
{
    struct vmx_msrs hw;
    struct nested_caps c = caps_hiding("preemption-timer-save", &hw);
    CHECK(hw.pinbased >> 32 & PIN_BASED_PREEMPTION_TIMER, "the CPU still has the timer");
    CHECK(!(nested_allowed1(c.true_pinbased) & PIN_BASED_PREEMPTION_TIMER) &&
              !(nested_allowed1(c.pinbased) & PIN_BASED_PREEMPTION_TIMER),
          "timer not offered without its save control: true pin %#llx pin %#llx", ULL(c.true_pinbased),
          ULL(c.pinbased));
    CHECK(!(nested_allowed1(c.true_exit) & VM_EXIT_SAVE_PREEMPTION_TIMER), "nor the save control");
}

static void test_lacking(void)
{
    char buf[400];
    struct vmx_msrs hw = bochs_skylake_x;
    unsigned n = nested_hide_lacking(&hw, buf, sizeof(buf));
    printf("Bochs corei7_skylake_x lacks: %s\n", buf);
    CHECK(!strstr(buf, "shadow-vmcs") && !strstr(buf, "preemption-timer-save") && !strstr(buf, "ept-ad") &&
              !strstr(buf, "unrestricted-guest"),
          "Bochs has VMCS shadowing, timer save, EPT A/D, unrestricted guest: %u lacking: %s", n, buf);
    caps_hiding("shadow-vmcs preemption-timer-save ept-ad", &hw);
    unsigned m = nested_hide_lacking(&hw, buf, sizeof(buf));
    CHECK(m == n + 3 && strstr(buf, "shadow-vmcs") && strstr(buf, "preemption-timer-save") && strstr(buf, "ept-ad"),
          "hidden features listed as lacking: %u: %s", m, buf);
    CHECK(nested_hide_lacking(&hw, buf, 12) == m && strlen(buf) == 11, "a short buffer is cut, still terminated");
    hw.procbased &= ~((uint64_t)CPU_BASED_ACTIVATE_SECONDARY << 32);
    nested_hide_lacking(&hw, buf, sizeof(buf));
    CHECK(strstr(buf, "ept") && strstr(buf, "unrestricted-guest") && strstr(buf, "invept-single"),
          "no secondary controls: EPT and its caps lacking: %s", buf);
}

/* hv as L1 of hv: the inner hv reads the outer's offer as its CPU and offers the same again. */
static void test_offer_is_stable(void)
{
    static const char *const sets[] = {"", "shadow-vmcs preemption-timer-save ept-ad pml ept-ve vmfunc activity-shutdown",
                                       "preemption-timer", "vpid ept-1g invept-single", "activity-hlt inject-len0"};
    for (unsigned i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        struct nested_caps outer = caps_hiding(sets[i], NULL), inner;
        struct vmx_msrs m = msrs_of(&outer, &bochs_skylake_x);
        nested_caps_init(&inner, &m);
        CHECK(!memcmp(&outer, &inner, sizeof(inner)),
              "set '%s': inner offers what it got: pin %#llx/%#llx proc %#llx/%#llx proc2 %#llx/%#llx exit %#llx/%#llx "
              "entry %#llx/%#llx misc %#llx/%#llx ept %#llx/%#llx",
              sets[i], ULL(outer.true_pinbased), ULL(inner.true_pinbased), ULL(outer.true_procbased),
              ULL(inner.true_procbased), ULL(outer.procbased2), ULL(inner.procbased2), ULL(outer.true_exit),
              ULL(inner.true_exit), ULL(outer.true_entry), ULL(inner.true_entry), ULL(outer.misc), ULL(inner.misc),
              ULL(outer.ept_vpid), ULL(inner.ept_vpid));
    }
}

int main(void)
{
    test_parse();
    test_apply();
    test_timer_needs_save();
    test_lacking();
    test_offer_is_stable();
    return test_summary();
}
