/* Access to the current VMCS. Host tests build with HV_HOST_TEST and supply a fake
 * (tests/unit/fake_vmcs.c) that counts every VMREAD and VMWRITE. */
#ifndef VMX_VMCS_H
#define VMX_VMCS_H
#include <stdint.h>
#include "vmcs_fields.h"

#ifdef HV_HOST_TEST
uint64_t vmcs_read(uint32_t field);
void vmcs_write(uint32_t field, uint64_t val);
static inline void vmcs_write_mem(uint32_t field, const uint64_t *p) { vmcs_write(field, *p); }
#else
static inline uint64_t vmcs_read(uint32_t field)
{
    uint64_t v;
    __asm__ volatile("vmread %1, %0" : "=r"(v) : "r"((uint64_t)field) : "cc");
    return v;
}
static inline void vmcs_write(uint32_t field, uint64_t val)
{
    __asm__ volatile("vmwrite %1, %0" ::"r"((uint64_t)field), "r"(val) : "cc");
}
/* VMWRITE with its source operand in memory (SDM 31.3, VMWRITE r64, r/m64): no load before
 * it, for straight-line copies of values prepared in memory. */
static inline void vmcs_write_mem(uint32_t field, const uint64_t *p)
{
    __asm__ volatile("vmwrite %1, %0" ::"r"((uint64_t)field), "m"(*p) : "cc");
}
#endif

/* The MSRs whose guest values live in the VMCS guest-state area (SDM 25.4.1): the
 * guest's RDMSR/WRMSR of them that hv performs must use the field, never the register,
 * which in VMX root operation holds hv's own value. 0 for any other MSR. */
static inline uint32_t vmcs_guest_msr_field(uint32_t msr)
{
    switch (msr) {
    case 0xc0000080: return GUEST_IA32_EFER;
    case 0x277: return GUEST_IA32_PAT;
    case 0x1d9: return GUEST_IA32_DEBUGCTL;
    case 0x174: return GUEST_SYSENTER_CS;
    case 0x175: return GUEST_SYSENTER_ESP;
    case 0x176: return GUEST_SYSENTER_EIP;
    case 0xc0000100: return GUEST_FS_BASE;
    case 0xc0000101: return GUEST_GS_BASE;
    default: return 0;
    }
}
#endif
