/*
 * VMCS shadowing for L1 (SDM 25.10): while L1 has a current vmcs12, vmcs01 links a
 * hardware shadow VMCS holding vmcs12's fields, so L1's VMREAD and VMWRITE of the
 * fields hv supports run without a VM exit. The VMREAD/VMWRITE bitmaps make every
 * other encoding exit, so hv still answers those with VM-instruction error 12.
 *
 * hv's cache (struct vmcs12) stays the copy hv works on: it is pulled from the shadow
 * before hv reads vmcs12 (nested VM-Enter, VMPTRLD, VMCLEAR, VMXOFF) and pushed back
 * after hv changes it (VMPTRLD, reflected exits, VM-entry failures, VMfailValid).
 */
#include "../lib/log.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx.h"
#include "../vmx/vmx_bits.h"
#include "nested_int.h"

/* Bit set = exit. Shared by all vCPUs; built once. */
void nested_shadow_bitmaps(uint8_t *vmread_bm, uint8_t *vmwrite_bm, bool exit_info_writable)
{
    for (int i = 0; i < 4096; i++)
        vmread_bm[i] = vmwrite_bm[i] = 0xff;
    for (unsigned i = 0; i < VMCS12_NR_FIELDS; i++) {
        uint32_t e = vmcs12_field_encoding(i);
        unsigned n = VMCS_FIELD_WIDTH(e) == VMCS_WIDTH_64 ? 2 : 1; /* the high half of 64-bit fields too */
        for (unsigned h = 0; h < n; h++) {
            uint32_t b = (e | h) & 0x7fff;
            /* Exit information can be written only with IA32_VMX_MISC[29]: else VMWRITE
             * exits and hv answers error 13. */
            if (exit_info_writable || VMCS_FIELD_TYPE(e) != 1)
                vmwrite_bm[b / 8] &= (uint8_t)~(1u << (b % 8));
            vmread_bm[b / 8] &= (uint8_t)~(1u << (b % 8));
        }
    }
}

static bool shadowed(const struct nested_vcpu *nv, uint32_t e)
{
    return nv->shadow_exit_info || VMCS_FIELD_TYPE(e) != 1;
}

/* What a reflected exit changes in vmcs12: guest state, exit information, and the two
 * VM-entry fields the CPU updates on exits. */
static bool exit_field(uint32_t e)
{
    return VMCS_FIELD_TYPE(e) == 1 || VMCS_FIELD_TYPE(e) == 2 || e == VM_ENTRY_CONTROLS || e == VM_ENTRY_INTR_INFO_FIELD;
}

enum { ALL_FIELDS, EXIT_FIELDS };

/* Copy between the cache and the shadow VMCS, then make the right VMCS current again. */
static void copy(struct nested_vcpu *nv, bool to_shadow, int which, uint32_t only)
{
    struct nested_state *n = nv->n;
    if (!n->shadowing)
        return;
    vmptrld(n->shadow_pa);
    for (unsigned i = 0; i < VMCS12_NR_FIELDS; i++) {
        uint32_t e = vmcs12_field_encoding(i);
        if (!shadowed(nv, e) || (which == EXIT_FIELDS && !exit_field(e)) || (only && e != only))
            continue;
        if (to_shadow)
            vmcs_write(e, n->cache->fields[i]);
        else
            n->cache->fields[i] = vmcs_read(e);
    }
    vmptrld(n->guest_mode ? n->vmcs02_pa : n->vmcs01_pa);
}

void nested_shadow_pull(struct nested_vcpu *nv) { copy(nv, false, ALL_FIELDS, 0); }
void nested_shadow_push(struct nested_vcpu *nv) { copy(nv, true, ALL_FIELDS, 0); }
void nested_shadow_push_exit(struct nested_vcpu *nv) { copy(nv, true, EXIT_FIELDS, 0); }
void nested_shadow_push_field(struct nested_vcpu *nv, uint32_t e) { copy(nv, true, ALL_FIELDS, e); }

/* vmcs01 is current (an exit from L1). */
void nested_shadow_activate(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    if (!nv->shadow_ok)
        return;
    n->shadowing = true;
    nested_shadow_push(nv);
    vmcs_write(VMCS_LINK_POINTER, n->shadow_pa);
    vmcs_write(SECONDARY_VM_EXEC_CONTROL, vmcs_read(SECONDARY_VM_EXEC_CONTROL) | SECONDARY_SHADOW_VMCS);
}

void nested_shadow_deactivate(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    if (!n->shadowing)
        return;
    n->shadowing = false;
    vmcs_write(VMCS_LINK_POINTER, ~0ull);
    vmcs_write(SECONDARY_VM_EXEC_CONTROL, vmcs_read(SECONDARY_VM_EXEC_CONTROL) & ~SECONDARY_SHADOW_VMCS);
}

int nested_shadow_init(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    if (!nv->shadow_ok)
        return 0;
    uint32_t *page = hv_alloc_page();
    if (!page)
        return -1;
    page[0] = (uint32_t)(nv->hw->basic & 0x7fffffff) | 0x80000000u; /* shadow-VMCS indicator */
    n->shadow_pa = (uint64_t)(uintptr_t)page;
    vmclear(n->shadow_pa);
    vmcs_write(VMREAD_BITMAP, nv->vmread_bitmap);
    vmcs_write(VMWRITE_BITMAP, nv->vmwrite_bitmap);
    return 0;
}
