/*
 * VMCS shadowing offered to L1 (SDM 24.10, 25.10): L1's vmcs12 may set "VMCS shadowing",
 * with VMREAD/VMWRITE bitmaps in L1's memory and, at its VMCS link pointer, a shadow VMCS
 * (an L1 region in hv's vmcs12 layout whose revision has bit 31 set). Not nested/shadow.c,
 * which is hv's own use of the CPU's shadowing for L1's VMREAD/VMWRITE of vmcs12.
 *
 * vmcs02 never has the control (nested/vmenter.c), so each VMREAD/VMWRITE of L2 exits to hv,
 * which decides as the CPU would (25.1.3): an encoding beyond bit 14, or its bit set in L1's
 * bitmap (read now: L1 and L2 may change it while L2 runs), is a VM exit to L1 with the exit
 * information the CPU gave; otherwise the instruction runs on the shadow VMCS in L1's memory
 * (nested/insn.c), its memory operand through L2's paging and EPT12 (nested/gva.c).
 */
#include "../vmx/vmx_bits.h"
#include "nested_int.h"

bool nested_vshadow_l2_access(struct nested_vcpu *nv, uint32_t reason)
{
    uint32_t proc = (uint32_t)v12(nv, CPU_BASED_VM_EXEC_CONTROL);
    uint32_t proc2 = proc & CPU_BASED_ACTIVATE_SECONDARY ? (uint32_t)v12(nv, SECONDARY_VM_EXEC_CONTROL) : 0;
    if (!(proc2 & SECONDARY_SHADOW_VMCS))
        return false; /* every VMREAD/VMWRITE of L2 exits (25.1.3) */
    /* The encoding is in the register of bits 31:28 of the instruction information for both
     * (Table 28-13); 32 bits of it outside 64-bit mode. */
    uint32_t info = (uint32_t)reg_read(nv->rc, HV_REG_EXIT_INSTR_INFO);
    uint64_t field = reg_read(nv->rc, (enum hv_reg)((info >> 28) & 15));
    if (!nested_guest_64())
        field &= 0xffffffff;
    if (field >> 15)
        return false;
    uint64_t byte = v12(nv, reason == EXIT_REASON_VMREAD ? VMREAD_BITMAP : VMWRITE_BITMAP) + field / 8;
    /* L1's memory as L1 sees it: outside its RAM (hv's memory, MMIO) the bitmap reads as 0. */
    if (hv_gpa_is_ram(byte, 1) && ((*(volatile const uint8_t *)(uintptr_t)byte >> (field % 8)) & 1))
        return false;
    nested_l2_vmread_vmwrite(nv, reason, v12(nv, VMCS_LINK_POINTER));
    return true;
}
