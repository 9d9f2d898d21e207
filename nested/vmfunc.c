/*
 * VM functions and EPT-violation #VE for L1 (SDM 25.5.6, 25.5.7; docs/nested.md).
 *
 * EPTP switching: vmcs02 has "enable VM functions" whenever vmcs12 has it, with no VM
 * function enabled, so each VMFUNC of L2 with EAX < 64 exits to hv (reason 59) and hv does
 * what the CPU would do with vmcs12's controls; EAX >= 64, and any VMFUNC while vmcs12 lacks
 * the control, are the CPU's #UD in L2 already. A switch makes vmcs02 run on the EPT02 that
 * shadows the new EPT12 root (nested/ept02_roots.c), as KVM's nested VMFUNC does.
 *
 * #VE: vmcs02 never has "EPT-violation #VE" (its EPT is EPT02, whose violations are hv's);
 * an EPT02 violation hv would reflect to L1 as an EPT violation is converted to a #VE of
 * L2 when vmcs12's controls and EPT12's entry make it one, with the information area in
 * L1's memory written as the CPU writes it.
 */
#include "../lib/x86.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx_bits.h"
#include "nested_int.h"

static uint32_t proc2_12(const struct nested_vcpu *nv)
{
    return (v12(nv, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_ACTIVATE_SECONDARY)
               ? (uint32_t)v12(nv, SECONDARY_VM_EXEC_CONTROL)
               : 0;
}

bool nested_vmfunc_exit(struct nested_vcpu *nv)
{
    struct regcache *rc = nv->rc;
    uint32_t fn = (uint32_t)rc->regs[HV_REG_RAX], index = (uint32_t)rc->regs[HV_REG_RCX];
    /* VMFUNC (Vol. 2B): a function not enabled in vmcs12 is L1's VM exit. */
    if (!(proc2_12(nv) & SECONDARY_VMFUNC) || fn >= 64 || !((v12(nv, VM_FUNCTION_CONTROL) >> fn) & 1))
        return false;
    if (fn != 0) /* only EPTP switching is offered (IA32_VMX_VMFUNC = 1) */
        return false;
    /* 25.5.6.3: an index beyond the list, or an entry a VM entry would refuse as EPTP, is a
     * VM exit with the EPTP unchanged. The list is read in L1's memory as the CPU reads it
     * at the VMFUNC (anything but L1's RAM reads as 0, an invalid EPTP). */
    if (index >= 512)
        return false;
    uint64_t pa = v12(nv, EPTP_LIST_ADDRESS) + 8ull * index, eptp = 0;
    if (hv_gpa_is_ram(pa, 8))
        eptp = __atomic_load_n((const uint64_t *)(uintptr_t)pa, __ATOMIC_RELAXED);
    if (nested_eptp_problem(nv->caps, eptp, nv->phys_bits))
        return false;
    if (nested_ept02_switch(nv, eptp))
        return false; /* out of memory (logged): L1 sees the exit instead of a crash */
    v12_set(nv, EPT_POINTER, eptp);
    /* The EPTP-index field exists with #VE (24.6.18), which EPTP switching updates. */
    if (nested_allowed1(nv->caps->procbased2) & SECONDARY_EPT_VE)
        v12_set(nv, EPTP_INDEX, index);
    nv->n->vmfunc_switches++;
    reg_skip_instruction(rc);
    return true;
}

/* The virtualization-exception information area (25.5.7.2). */
struct ve_info {
    uint32_t reason;   /* 48, EPT violation */
    uint32_t busy;     /* FFFFFFFFH after a delivery; must be 0 for the next one */
    uint64_t qual;     /* exit qualification */
    uint64_t gla;      /* guest-linear address */
    uint64_t gpa;      /* guest-physical address */
    uint16_t eptp_index;
} __attribute__((packed));

int nested_ve_convert(struct nested_vcpu *nv, const struct ept02_fault *f)
{
    struct regcache *rc = nv->rc;
    /* 25.5.7.1: convertible with the control set and bit 63 of EPT12's entry clear; a #VE
     * only with CR0.PE = 1, outside event delivery, and the area's dword at 4 all 0. */
    if (!(proc2_12(nv) & SECONDARY_EPT_VE) || f->suppress_ve)
        return NESTED_VE_NONE;
    if (!(reg_read(rc, HV_REG_CR0) & CR0_PE) || (reg_read(rc, HV_REG_IDT_VECTORING_INFO) & INTR_INFO_VALID))
        return NESTED_VE_NONE;
    uint64_t area = v12(nv, VE_INFO_ADDRESS);
    /* Not L1's RAM (hv's memory, which L1 reads as zeros, or MMIO): nothing is written,
     * and the dword reads 0, as for L1's own reads there. */
    bool ram = hv_gpa_is_ram(area, sizeof(struct ve_info));
    struct ve_info *ve = (struct ve_info *)(uintptr_t)area;
    uint32_t *busy = (uint32_t *)(uintptr_t)(area + 4); /* aligned: the area is (26.2.1.1) */
    if (ram && __atomic_load_n(busy, __ATOMIC_RELAXED) != 0)
        return NESTED_VE_NONE;
    if (ram) {
        ve->reason = EXIT_REASON_EPT_VIOLATION;
        ve->qual = f->qual12;
        ve->gla = reg_read(rc, HV_REG_GUEST_LINEAR_ADDR);
        ve->gpa = f->l2_gpa;
        ve->eptp_index = (uint16_t)v12(nv, EPTP_INDEX);
        __atomic_store_n(busy, 0xffffffffu, __ATOMIC_RELEASE);
    }
    nv->n->ve_delivered++;
    /* #VE is a fault (vector 20, no error code); the exception bitmap decides (25.2). */
    if ((v12(nv, EXCEPTION_BITMAP) >> NESTED_VE_VECTOR) & 1)
        return NESTED_VE_EXIT;
    /* An IRET that unblocked NMIs and faulted gets its blocking back, as for any fault. */
    regcache_redeliver_event(rc, f->qual & EPT_QUAL_NMI_UNBLOCK);
    vmcs_write(VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | NESTED_VE_VECTOR);
    return NESTED_VE_INJECTED;
}
