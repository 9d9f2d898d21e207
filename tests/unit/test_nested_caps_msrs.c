/*
 * Host tests for nested/caps.c: the VMX capability MSRs hv advertises to L1 over Bochs-like
 * hardware (split from test_nested_checks.c, which checks the VM-entry rules over them).
 */
#include <stdio.h>
#include <string.h>
#include "lib/x86.h"
#include "nested/caps.h"
#include "nested/vmcs12.h"
#include "tests/unit/test_util.h"
#include "tests/unit/vmcs12_samples.h"
#include "vmx/vmx_bits.h"

#define ULL(x) ((unsigned long long)(x))

static struct vmx_msrs bochs(void) { return bochs_skylake_x; }

static struct nested_caps caps;

static void test_caps(void)
{
    struct vmx_msrs m = bochs();
    struct nested_caps c;
    uint64_t val;
    nested_caps_init(&c, &m);

    CHECK(c.basic == 0x00d8100000007668ull, "basic %llx", ULL(c.basic));
    CHECK(c.true_pinbased == 0x0000007f00000016ull, "true pin %llx", ULL(c.true_pinbased));
    CHECK(c.true_procbased == 0xfff9fffe04006172ull, "true proc %llx", ULL(c.true_procbased));
    CHECK(c.true_exit == 0x007fffff00036dfbull, "true exit %llx", ULL(c.true_exit));
    CHECK(c.true_entry == 0x0000f3ff000011fbull, "true entry %llx", ULL(c.true_entry));
    CHECK(c.procbased2 == 0x02177fff00000000ull, "procbased2 %llx", ULL(c.procbased2));
    CHECK(c.misc == 0x200401e5ull, "misc %llx", ULL(c.misc));
    CHECK(c.ept_vpid == 0x00000f0106334141ull, "ept_vpid %llx", ULL(c.ept_vpid));
    CHECK(c.vmcs_enum == 0x32, "vmcs_enum %llx (TSC_MULTIPLIER 0x2032: index 0x19)", ULL(c.vmcs_enum));
    CHECK(c.vmfunc == 1, "vmfunc: EPTP switching");
    CHECK(c.cr0_fixed0 == m.cr0_fixed0 && c.cr0_fixed1 == m.cr0_fixed1 && c.cr4_fixed0 == m.cr4_fixed0 &&
          c.cr4_fixed1 == m.cr4_fixed1, "fixed bits as hardware");

    /* Never advertised, whatever the hardware has. */
    uint32_t p2 = nested_allowed1(c.procbased2);
    CHECK((p2 & (SECONDARY_EPT | SECONDARY_UNRESTRICTED_GUEST)) == (SECONDARY_EPT | SECONDARY_UNRESTRICTED_GUEST),
          "EPT and unrestricted guest (EPT02): %x", p2);
    CHECK(nested_has_ept(&c), "nested_has_ept");
    CHECK(p2 & SECONDARY_PML, "PML (with EPT A/D): %x", p2);
    CHECK(p2 & SECONDARY_TSC_SCALING, "TSC scaling (passed through): %x", p2);
    CHECK((p2 & (SECONDARY_VMFUNC | SECONDARY_EPT_VE)) == (SECONDARY_VMFUNC | SECONDARY_EPT_VE),
          "VM functions and #VE (with EPT): %x", p2);
    /* EPT as EPT02 shadows it: execute-only, UC, 2M, 1G, A/D (21) as the CPU; 4-level, WB,
     * INVEPT single and all; never advanced exit information (22), 5-level (7). */
    CHECK((c.ept_vpid & 0xffffffffull) == (EPT_CAP_EXEC_ONLY | EPT_CAP_PWL4 | EPT_CAP_UC | EPT_CAP_WB | EPT_CAP_2M |
                                           EPT_CAP_1G | EPT_CAP_AD | EPT_CAP_INVEPT | EPT_CAP_INVEPT_SINGLE |
                                           EPT_CAP_INVEPT_ALL),
          "EPT capabilities %llx", ULL(c.ept_vpid));
    CHECK(!(nested_allowed1(c.true_procbased) & CPU_BASED_ACTIVATE_TERTIARY), "no tertiary controls");
    CHECK(!(nested_allowed1(c.true_pinbased) & PIN_BASED_POSTED_INTR), "no posted interrupts");
    CHECK(nested_allowed1(c.true_exit) & VM_EXIT_LOAD_PERF_GLOBAL_CTRL, "perf global load as the CPU (exit)");
    CHECK(nested_allowed1(c.true_entry) & VM_ENTRY_LOAD_PERF_GLOBAL_CTRL, "perf global load as the CPU (entry)");
    CHECK(c.perf_global_valid == 0x70000000full, "IA32_PERF_GLOBAL_CTRL: 4 counters, 3 fixed: %llx",
          ULL(c.perf_global_valid));
    CHECK(!(nested_allowed1(c.true_entry) & (VM_ENTRY_SMM | VM_ENTRY_DEACT_DUAL_MONITOR)), "no SMM (entry)");
    /* IA32_PERF_GLOBAL_CTRL's reserved bits on other PMUs (review finding: Ice Lake's bit 48) */
    struct vmx_msrs p = m;
    p.cpuid0a_eax = 0x08300801, p.cpuid0a_edx = 0x603; /* version 1: 8 counters, no fixed ones */
    nested_caps_init(&c, &p);
    CHECK(c.perf_global_valid == 0xffull, "PMU version 1: counters only: %llx", ULL(c.perf_global_valid));
    p.cpuid0a_eax = 0x08300805, p.cpuid0a_ecx = 0x10, p.cpuid0a_edx = 0x8604, p.perf_capabilities = 1ull << 15;
    nested_caps_init(&c, &p);
    CHECK(c.perf_global_valid == (0xffull | 0x1full << 32 | 1ull << 48),
          "version 5: 8 counters, fixed 0-3 and 4 (ECX), perf metrics: %llx", ULL(c.perf_global_valid));
    p.cpuid0a_eax = 0;
    nested_caps_init(&c, &p);
    CHECK(c.perf_global_valid == 0, "no architectural PMU, no MSR: every bit reserved: %llx", ULL(c.perf_global_valid));
    nested_caps_init(&c, &m);
    CHECK(!(c.basic & (1ull << 48 | 1ull << 49 | 1ull << 56)) && (c.basic & VMX_BASIC_TRUE_CTLS), "basic bits");
    CHECK(!(c.misc & (1ull << 28 | 1ull << 30)), "misc: no SMM; no zero-length injection on a CPU without it");

    /* The non-true MSRs: the true ones with the default1 bits must-be-1. */
    CHECK(c.pinbased == (c.true_pinbased | NESTED_PIN_DEFAULT1), "pin %llx", ULL(c.pinbased));
    CHECK(c.procbased == (c.true_procbased | NESTED_PROC_DEFAULT1) && (uint32_t)c.procbased == 0x0401e172u,
          "proc %llx", ULL(c.procbased));
    CHECK(c.exit == (c.true_exit | NESTED_EXIT_DEFAULT1) && (uint32_t)c.exit == 0x00036dffu, "exit %llx",
          ULL(c.exit));
    CHECK(c.entry == (c.true_entry | NESTED_ENTRY_DEFAULT1) && (uint32_t)c.entry == 0x000011ffu, "entry %llx",
          ULL(c.entry));
    CHECK((c.procbased >> 32) == (c.true_procbased >> 32), "same allowed-1");

    /* The MSRs as L1 reads them. */
    const uint64_t want[] = {c.basic, c.pinbased, c.procbased, c.exit, c.entry, c.misc, c.cr0_fixed0,
                             c.cr0_fixed1, c.cr4_fixed0, c.cr4_fixed1, c.vmcs_enum, c.procbased2, c.ept_vpid,
                             c.true_pinbased, c.true_procbased, c.true_exit, c.true_entry};
    for (uint32_t msr = 0x480; msr <= 0x490; msr++) {
        val = 0;
        CHECK(nested_caps_msr(&c, msr, &val) && val == want[msr - 0x480], "MSR %x = %llx", msr, ULL(val));
    }
    CHECK(nested_caps_msr(&c, 0x491, &val) && val == 1, "IA32_VMX_VMFUNC = 1 (EPTP switching): %llx", ULL(val));
    CHECK(!nested_caps_msr(&c, 0x47f, &val) && !nested_caps_msr(&c, 0x492, &val) &&
          !nested_caps_msr(&c, 0x3a, &val), "other MSRs are not VMX capabilities");

    /* Hardware without VPID: no INVVPID either; the MSR still exists for EPT. */
    m = bochs();
    m.procbased2 &= ~((uint64_t)SECONDARY_VPID << 32);
    nested_caps_init(&c, &m);
    CHECK(c.ept_vpid == 0x06334141ull && nested_caps_msr(&c, 0x48c, &val) && val == c.ept_vpid,
          "no VPID: ept_vpid %llx", ULL(c.ept_vpid));
    /* ... and without EPT either: no EPT_VPID_CAP MSR, no unrestricted guest. */
    m.procbased2 &= ~((uint64_t)(SECONDARY_EPT | SECONDARY_UNRESTRICTED_GUEST) << 32);
    nested_caps_init(&c, &m);
    CHECK(c.ept_vpid == 0 && !nested_caps_msr(&c, 0x48c, &val), "no VPID, no EPT: ept_vpid %llx", ULL(c.ept_vpid));
    /* Unrestricted guest without EPT (no such CPU): not offered. */
    m = bochs();
    m.procbased2 &= ~((uint64_t)SECONDARY_EPT << 32);
    nested_caps_init(&c, &m);
    CHECK(!(nested_allowed1(c.procbased2) & (SECONDARY_EPT | SECONDARY_UNRESTRICTED_GUEST)) &&
          !(c.ept_vpid & 0xffffffffull), "no EPT: procbased2 %llx ept_vpid %llx", ULL(c.procbased2), ULL(c.ept_vpid));
    /* EPT without execute-only, UC, large pages, A/D, WB-only: those follow; no WB walks: no EPT. */
    m = bochs();
    m.ept_vpid &= ~(EPT_CAP_EXEC_ONLY | EPT_CAP_UC | EPT_CAP_2M | EPT_CAP_1G | EPT_CAP_AD | EPT_CAP_INVEPT_SINGLE);
    nested_caps_init(&c, &m);
    CHECK((c.ept_vpid & 0xffffffffull) == (EPT_CAP_PWL4 | EPT_CAP_WB | EPT_CAP_INVEPT | EPT_CAP_INVEPT_SINGLE |
                                           EPT_CAP_INVEPT_ALL), "minimal EPT: %llx", ULL(c.ept_vpid));
    m.ept_vpid &= ~EPT_CAP_WB;
    nested_caps_init(&c, &m);
    CHECK(!nested_has_ept(&c) && !(nested_allowed1(c.procbased2) & SECONDARY_UNRESTRICTED_GUEST) &&
          !(c.ept_vpid & 0xffffffffull), "no WB EPT: %llx", ULL(c.ept_vpid));
    /* Without secondary controls: no IA32_VMX_PROCBASED_CTLS2. */
    m = bochs();
    m.procbased &= ~((uint64_t)CPU_BASED_ACTIVATE_SECONDARY << 32);
    nested_caps_init(&c, &m);
    CHECK(c.procbased2 == 0 && !nested_caps_msr(&c, 0x48b, &val) && !nested_caps_msr(&c, 0x48c, &val),
          "no secondary controls");
    /* Only some INVVPID types; no preemption timer; 8 or 2 CR3 targets; no HLT state. */
    m = bochs();
    m.ept_vpid = EPT_CAP_INVVPID | EPT_CAP_INVVPID_SINGLE | EPT_CAP_WB; /* WB alone: no EPT for L1 */
    m.pinbased &= ~((uint64_t)PIN_BASED_PREEMPTION_TIMER << 32);
    m.misc = (m.misc & ~(0x1ffull << 16 | 1ull << 6 | 1ull << 29)) | 8ull << 16;
    nested_caps_init(&c, &m);
    CHECK(c.ept_vpid == (EPT_CAP_INVVPID | EPT_CAP_INVVPID_SINGLE), "INVVPID types %llx", ULL(c.ept_vpid));
    CHECK(!(nested_allowed1(c.true_pinbased) & PIN_BASED_PREEMPTION_TIMER) &&
          !(nested_allowed1(c.true_exit) & VM_EXIT_SAVE_PREEMPTION_TIMER), "no preemption timer");
    CHECK(nested_cr3_targets(&c) == 4 && !(c.misc & (1ull << 6 | 1ull << 29)), "misc %llx", ULL(c.misc));
    m.misc = (m.misc & ~(0x1ffull << 16)) | 2ull << 16;
    nested_caps_init(&c, &m);
    CHECK(nested_cr3_targets(&c) == 2, "2 CR3 targets");
    m.ept_vpid = EPT_CAP_INVVPID_ALL; /* types without INVVPID itself: nothing */
    nested_caps_init(&c, &m);
    CHECK(c.ept_vpid == 0 && nested_caps_msr(&c, 0x48c, &val) && val == 0, "no INVVPID");

    CHECK(nested_ctl_ok(0x000000ff00000011ull, 0x11) && nested_ctl_ok(0x000000ff00000011ull, 0xf1) &&
          !nested_ctl_ok(0x000000ff00000011ull, 0x10) && !nested_ctl_ok(0x000000ff00000011ull, 0x111),
          "nested_ctl_ok");
}

int main(void)
{
    struct vmx_msrs m = bochs();
    nested_caps_init(&caps, &m);
    test_caps();
    return test_summary();
}
