/* Shared by the nested host tests and the fuzzer: a vmcs12 that passes every VM-entry check,
 * and the hardware it is checked against. */
#ifndef TESTS_VMCS12_SAMPLES_H
#define TESTS_VMCS12_SAMPLES_H
#include "nested/vmcs12.h"
#include "vmx/caps.h"

#define KERNEL_CS_AR 0xa09bu /* 64-bit code: type 11, S, DPL 0, P, L, G */
#define DATA_AR 0xc093u      /* data: type 3, S, DPL 0, P, D/B, G */
#define TSS_AR 0x008bu       /* busy TSS, P */
#define UNUSABLE 0x10000u

void set_seg(struct vmcs12 *v, uint32_t sel_f, uint64_t sel, uint64_t base, uint64_t limit, uint64_t ar);
/* The VMX capability MSRs of Bochs' corei7_skylake_x (true controls), as hv reads them. */
extern const struct vmx_msrs bochs_skylake_x;
/* What L1 (a 64-bit hypervisor) sets up for a 64-bit L2 kernel. */
void valid64(struct vmcs12 *v);
#endif
