/* VMX capability decoding: pure logic over CPUID and MSR values, host-tested. */
#ifndef VMX_CAPS_H
#define VMX_CAPS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Raw inputs, read by the caller (only when CPUID says the MSRs exist). */
struct vmx_msrs {
    char vendor[13];
    uint32_t cpuid1_ecx;
    uint32_t cpuid7_ebx; /* CPUID.(EAX=07H,ECX=0):EBX: SGX (2), RTM (11) for nested entry checks */
    uint32_t cpuid0a_eax, cpuid0a_ecx, cpuid0a_edx; /* CPUID.0AH: the counters IA32_PERF_GLOBAL_CTRL has */
    uint64_t perf_capabilities; /* IA32_PERF_CAPABILITIES (with CPUID.1:ECX[15]): bit 15, perf metrics */
    uint64_t feature_control;
    uint64_t basic, pinbased, procbased, exit, entry, procbased2, ept_vpid, misc;
    uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};

struct vmx_caps {
    bool usable;                 /* hv can run its guest under VMX on this CPU */
    bool feature_control_unlocked; /* hv must set and lock IA32_FEATURE_CONTROL first */
    uint32_t revision;           /* VMCS revision identifier */
    uint32_t vmcs_size;
    bool true_ctls;
    uint32_t pin_allowed1, proc_allowed1, proc2_allowed1, exit_allowed1, entry_allowed1;
    bool ept, vpid, unrestricted, ept_wb, ept_4level, ept_2m, ept_1g, ept_ad;
    bool invept_single, invept_all, invvpid_single, invvpid_all;
    bool preemption_timer, vmcs_shadowing, msr_bitmaps, io_bitmaps, mtf;
    uint8_t preemption_timer_shift;
};

/* A control value as requested, adjusted to what a capability MSR allows (SDM A.3:
 * allowed-0 settings in bits 31:0 must be 1, allowed-1 settings in bits 63:32 may be). */
static inline uint32_t vmx_adjust_ctls(uint64_t cap_msr, uint32_t want)
{
    return (want | (uint32_t)cap_msr) & (uint32_t)(cap_msr >> 32);
}

/* "NMI exiting" and "virtual NMIs" (pin-based bits 3 and 5) when the CPU allows both, else
 * 0: hv holds and re-injects NMIs only with NMI-window exiting, which needs both. */
static inline uint32_t vmx_virtual_nmi_pin(uint64_t pin_cap)
{
    const uint32_t both = (1u << 3) | (1u << 5);
    return ((uint32_t)(pin_cap >> 32) & both) == both ? both : 0;
}

/* Fills caps; on "unusable" writes one line saying exactly why into why. */
bool vmx_caps_decode(const struct vmx_msrs *in, struct vmx_caps *caps, char *why, size_t whylen);
#endif
