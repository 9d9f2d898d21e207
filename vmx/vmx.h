/* VMX instructions (SDM Vol. 3C, ch. 31). Each returns the VMX status:
 * 0 = VMsucceed, 1 = VMfailInvalid (CF), 2 = VMfailValid (ZF, error in the VMCS). */
#ifndef VMX_VMX_H
#define VMX_VMX_H
#include <stdint.h>

enum vmx_status { VMX_OK = 0, VMX_FAIL_INVALID = 1, VMX_FAIL_VALID = 2 };

#define VMX_STATUS_ASM "setc %b0; setz %h0"
static inline enum vmx_status vmx_status(uint16_t cz)
{
    return (cz & 0xff) ? VMX_FAIL_INVALID : (cz >> 8) ? VMX_FAIL_VALID : VMX_OK;
}

#ifdef HV_HOST_TEST
/* Host tests (fuzzers, test_exit_ept) supply these: the VMCS-pointer instructions and INVEPT. */
enum vmx_status vmclear(uint64_t pa);
enum vmx_status vmptrld(uint64_t pa);
enum vmx_status invept(uint64_t type, uint64_t eptp);
#endif

static inline enum vmx_status vmxon(uint64_t pa)
{
    uint16_t cz;
    __asm__ volatile("vmxon %1; " VMX_STATUS_ASM : "=Q"(cz) : "m"(pa) : "cc", "memory");
    return vmx_status(cz);
}
static inline enum vmx_status vmxoff(void)
{
    uint16_t cz;
    __asm__ volatile("vmxoff; " VMX_STATUS_ASM : "=Q"(cz) : : "cc", "memory");
    return vmx_status(cz);
}
#ifndef HV_HOST_TEST
static inline enum vmx_status vmclear(uint64_t pa)
{
    uint16_t cz;
    __asm__ volatile("vmclear %1; " VMX_STATUS_ASM : "=Q"(cz) : "m"(pa) : "cc", "memory");
    return vmx_status(cz);
}
/* The status from flag outputs: no SETcc where the caller ignores it (nested VM-Enter and
 * reflected exits switch VMCSs several times each, issue 9). */
static inline enum vmx_status vmptrld(uint64_t pa)
{
    _Bool cf, zf;
    __asm__ volatile("vmptrld %2" : "=@ccc"(cf), "=@ccz"(zf) : "m"(pa) : "memory");
    return cf ? VMX_FAIL_INVALID : zf ? VMX_FAIL_VALID : VMX_OK;
}
#endif
static inline enum vmx_status vmread_checked(uint64_t field, uint64_t *val)
{
    uint16_t cz;
    __asm__ volatile("vmread %2, %1; " VMX_STATUS_ASM : "=Q"(cz), "=rm"(*val) : "r"(field) : "cc");
    return vmx_status(cz);
}
static inline enum vmx_status vmwrite_checked(uint64_t field, uint64_t val)
{
    uint16_t cz;
    __asm__ volatile("vmwrite %2, %1; " VMX_STATUS_ASM : "=Q"(cz) : "r"(field), "rm"(val) : "cc");
    return vmx_status(cz);
}
/* INVEPT / INVVPID descriptors are 128 bits. */
#ifndef HV_HOST_TEST
static inline enum vmx_status invept(uint64_t type, uint64_t eptp)
{
    struct { uint64_t eptp, rsvd; } d = {eptp, 0};
    uint16_t cz;
    __asm__ volatile("invept %1, %2; " VMX_STATUS_ASM : "=Q"(cz) : "m"(d), "r"(type) : "cc", "memory");
    return vmx_status(cz);
}
#endif
static inline enum vmx_status invvpid(uint64_t type, uint16_t vpid, uint64_t gva)
{
    struct { uint64_t vpid, gva; } d = {vpid, gva};
    _Bool cf, zf; /* flag outputs: a test of the status is a conditional jump (issue 9) */
    __asm__ volatile("invvpid %2, %3" : "=@ccc"(cf), "=@ccz"(zf) : "m"(d), "r"(type) : "memory");
    return cf ? VMX_FAIL_INVALID : zf ? VMX_FAIL_VALID : VMX_OK;
}
#endif
