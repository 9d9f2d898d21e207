/*
 * The VMX capabilities hv advertises to L1: the IA32_VMX_* MSR values (SDM Vol. 3D
 * Appendix A) L1 reads, derived from the hardware's and cut down to what nested/
 * emulates (EPT and unrestricted guest through EPT02, nested/ept02.h; APIC virtualization
 * in vmcs02, nested/apicv.c; VMCS shadowing, nested/vshadow.c; no VM functions, no
 * SMM/dual-monitor, no perf-global controls, no #VE or EPTP switching).
 */
#ifndef NESTED_CAPS_H
#define NESTED_CAPS_H
#include <stdbool.h>
#include <stdint.h>
#include "../vmx/caps.h"
#include "../vmx/vmx_bits.h"

struct nested_caps {
    uint64_t basic;                                       /* 0x480 */
    uint64_t pinbased, procbased, exit, entry;            /* 0x481-0x484: true + default1 bits */
    uint64_t misc;                                        /* 0x485 */
    uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1; /* 0x486-0x489 */
    uint64_t vmcs_enum;                                   /* 0x48a */
    uint64_t procbased2;                                  /* 0x48b */
    uint64_t ept_vpid;                                    /* 0x48c */
    uint64_t true_pinbased, true_procbased, true_exit, true_entry; /* 0x48d-0x490 */
    uint64_t vmfunc;                                      /* 0x491 */
    bool sgx, rtm; /* CPUID.(EAX=07H,ECX=0):EBX[2], [11] as L1 sees them (the CPU's): entry checks */
    uint64_t perf_global_valid; /* IA32_PERF_GLOBAL_CTRL bits CPUID.0AH enumerates: the rest are reserved */
};

/* "Default1" controls (A.2-A.5): reported as must-be-1 by the non-true MSRs. */
#define NESTED_PIN_DEFAULT1   0x00000016u /* bits 1, 2, 4 */
#define NESTED_PROC_DEFAULT1  0x0401e172u /* bits 1, 4-6, 8, 13-16, 26 */
#define NESTED_EXIT_DEFAULT1  0x00036dffu /* bits 0-8, 10, 11, 13, 14, 16, 17 */
#define NESTED_ENTRY_DEFAULT1 0x000011ffu /* bits 0-8, 12 */

/* hw: the raw hardware values (hw->pinbased etc. are the TRUE MSRs when hw->basic[55]). */
void nested_caps_init(struct nested_caps *c, const struct vmx_msrs *hw);
/* The value L1 reads from VMX capability MSR msr; false: the MSR does not exist for L1
 * (RDMSR #GPs): outside 0x480-0x491, 0x48b without secondary controls, 0x48c without
 * EPT or VPID, 0x491 without "enable VM functions". */
bool nested_caps_msr(const struct nested_caps *c, uint32_t msr, uint64_t *val);

/* A control value is valid for a capability MSR: every allowed-0 (must be 1) bit set,
 * nothing outside allowed-1. */
bool nested_ctl_ok(uint64_t cap_msr, uint32_t value);
/* The feature-dependent vmcs12 fields (VMCS12_FEAT_*) that exist for L1 with these capabilities. */
unsigned nested_vmcs12_features(const struct nested_caps *c);

static inline uint32_t nested_allowed0(uint64_t cap_msr) { return (uint32_t)cap_msr; }
static inline uint32_t nested_allowed1(uint64_t cap_msr) { return (uint32_t)(cap_msr >> 32); }
/* IA32_VMX_MISC[24:16]: number of CR3-target values advertised. */
static inline unsigned nested_cr3_targets(const struct nested_caps *c) { return (unsigned)(c->misc >> 16) & 0x1ff; }
/* "enable EPT" may be set (IA32_VMX_PROCBASED_CTLS2[33]). */
static inline bool nested_has_ept(const struct nested_caps *c) { return (c->procbased2 >> 32) & SECONDARY_EPT; }
/* "VMCS shadowing" may be set (IA32_VMX_PROCBASED_CTLS2[46]): L1 may have shadow VMCSs. */
static inline bool nested_offers_vmcs_shadowing(const struct nested_caps *c)
{
    return (c->procbased2 >> 32) & SECONDARY_SHADOW_VMCS;
}
/* An EPTP L1 may use (25.6.11 as advertised: memory type, 4-level walk, no A/D flags,
 * bits 11:7 reserved, within the physical-address width): NULL, or the rule it breaks.
 * The VM-entry check of "enable EPT" and INVEPT's single-context check (31.3). */
const char *nested_eptp_problem(const struct nested_caps *c, uint64_t eptp, uint8_t phys_bits);
static inline bool nested_eptp_valid(const struct nested_caps *c, uint64_t eptp, uint8_t phys_bits)
{
    return nested_eptp_problem(c, eptp, phys_bits) == 0;
}
#endif
