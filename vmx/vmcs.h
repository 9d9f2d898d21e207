/* Access to the current VMCS. Host tests build with HV_HOST_TEST and supply a fake
 * (tests/unit/fake_vmcs.c) that counts every VMREAD and VMWRITE. */
#ifndef VMX_VMCS_H
#define VMX_VMCS_H
#include <stdint.h>
#include "vmcs_fields.h"

#ifdef HV_HOST_TEST
uint64_t vmcs_read(uint32_t field);
void vmcs_write(uint32_t field, uint64_t val);
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
#endif
#endif
