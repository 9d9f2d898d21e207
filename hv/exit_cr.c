/* MOV to CR0/CR4 of a bit hv owns (the guest/host masks): emulate it. The guest
 * sees its own value in the read shadow; the real register keeps VMX's fixed bits
 * (CR0.NE, CR4.VMXE). Other CR accesses never exit. */
#include "../lib/x86.h"
#include "../vmx/vmx_bits.h"
#include "exit.h"
#include "../nested/ept02.h"
#include "../nested/nested.h"

/*
 * The value a MOV to CR0/CR4 that exited to hv gives the guest's register, before hv adds
 * the bits VMX fixes in the real one; ~0 if it must #GP. For L2, the bits L1 owns (vmcs12's
 * guest/host mask) keep vmcs12's value: the write reached hv because it changed a bit hv
 * owns, and the CPU leaves owned bits alone. In VMX operation (L1 after VMXON, or L2) the
 * bits VMX fixes (as hv offers them to L1) cannot be changed: #GP, as on the CPU.
 */
static uint64_t guest_cr_value(struct vcpu *v, bool cr4, uint64_t val, uint64_t old_real)
{
    uint64_t real = val;
    if (v->nested.guest_mode) {
        uint64_t m12 = vmcs12_get(v->nested.cache, cr4 ? CR4_GUEST_HOST_MASK : CR0_GUEST_HOST_MASK);
        real = (val & ~m12) | (old_real & m12);
    }
    uint64_t fixed0, fixed1;
    nested_guest_cr_fixed(&v->nv, cr4, &fixed0, &fixed1);
    if ((real & fixed0) != fixed0 || (real & ~fixed1))
        return ~0ull;
    return real;
}

static void set_cr0(struct vcpu *v, uint64_t val)
{
    /* PG is not owned by hv: the guest may have toggled it without an exit, so the real
     * CR0, not the shadow, says whether paging is on now. */
    uint64_t old = reg_read(&v->rc, HV_REG_CR0);
    if ((val >> 32) || ((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD))) {
        inject_gp(v);
        return;
    }
    /* The CR0 the guest will have (for L2, with the bits L1 owns as they are); every check
     * comes before any change: a MOV that faults changes nothing. */
    uint64_t real = guest_cr_value(v, false, val, old);
    if (real == ~0ull) {
        inject_gp(v); /* a bit fixed in VMX operation */
        return;
    }
    uint64_t efer = vm_read(v, GUEST_IA32_EFER), cr4 = reg_read(&v->rc, HV_REG_CR4);
    bool pg_change = (real ^ old) & CR0_PG;
    /* Paging on/off with EFER.LME switches IA-32e mode, which hardware would do itself. */
    if (pg_change && (real & CR0_PG) && (efer & EFER_LME) && !(cr4 & CR4_PAE)) {
        inject_gp(v);
        return;
    }
    if (pg_change)
        efer = (real & CR0_PG) && (efer & EFER_LME) ? efer | EFER_LMA : efer & ~EFER_LMA;
    /* PAE paging outside IA-32e mode: with EPT the CPU takes the PDPTEs from the VMCS
     * (SDM 27.3.2.4), so load them from the guest's CR3 as the CPU would. */
    uint64_t pdpte[4];
    bool pae = (real & CR0_PG) && !(efer & EFER_LME) && (cr4 & CR4_PAE);
    if (pae) {
        uint64_t base = reg_read(&v->rc, HV_REG_CR3) & 0xffffffe0ull;
        /* An L2 on L1's EPT has an L2-physical CR3: EPT12 gives the L1 address (the
         * PDPT is 32-byte aligned, so it never straddles a page). */
        if (v->nested.guest_mode && v->nested.ept12) {
            struct ept12_walk w;
            base = v->nested.ept02 && ept12_walk(v->nested.ept02, base, &w) == EPT12_OK && (w.access & 1)
                       ? w.l1_gpa : ~0ull;
        }
        for (int i = 0; i < 4; i++) {
            pdpte[i] = hv_gpa_is_ram(base, 32) ? ((const uint64_t *)(uintptr_t)base)[i] : 0;
            if ((pdpte[i] & 1) && (pdpte[i] & 0x1e6)) { /* reserved bits in a present PDPTE */
                inject_gp(v);
                return;
            }
        }
    }
    if (pg_change) {
        uint32_t entry = (uint32_t)vm_read(v, VM_ENTRY_CONTROLS);
        vm_write(v, GUEST_IA32_EFER, efer);
        vm_write(v, VM_ENTRY_CONTROLS, efer & EFER_LMA ? entry | VM_ENTRY_IA32E_MODE : entry & ~VM_ENTRY_IA32E_MODE);
    }
    for (int i = 0; pae && i < 4; i++)
        reg_write(&v->rc, (enum hv_reg)(HV_REG_PDPTR0 + i), pdpte[i]);
    vm_write(v, CR0_READ_SHADOW, val);
    reg_write(&v->rc, HV_REG_CR0, (real | (hv.msrs.cr0_fixed0 & ~(CR0_PE | CR0_PG))) & (hv.msrs.cr0_fixed1 | CR0_PE | CR0_PG));
    nested_vpid02_flush_current(&v->nv); /* L2 keeps its TLB across hv's exits (VPID) */
    reg_skip_instruction(&v->rc);
}

static void set_cr4(struct vcpu *v, uint64_t val)
{
    uint64_t allowed = hv.msrs.cr4_fixed1 & ~(hv.nested ? 0 : CR4_VMXE);
    if ((val & ~allowed) || ((vm_read(v, GUEST_IA32_EFER) & EFER_LMA) && !(val & CR4_PAE))) {
        /* a bit this CPU lacks, VMXE without nested VMX, PAE off in long mode */
        inject_gp(v);
        return;
    }
    uint64_t real = guest_cr_value(v, true, val, reg_read(&v->rc, HV_REG_CR4));
    if (real == ~0ull) {
        inject_gp(v); /* CR4.VMXE cleared in VMX operation, or another bit VMX fixes */
        return;
    }
    vm_write(v, CR4_READ_SHADOW, val);
    reg_write(&v->rc, HV_REG_CR4, (real | hv.msrs.cr4_fixed0) & hv.msrs.cr4_fixed1);
    nested_vpid02_flush_current(&v->nv);
    reg_skip_instruction(&v->rc);
}

void handle_cr_access(struct vcpu *v)
{
    uint64_t q = reg_exit_qual(&v->rc);
    unsigned cr = q & 15, type = (q >> 4) & 3, gpr = (q >> 8) & 15;
    if (type != 0 || (cr != 0 && cr != 4))
        exit_fatal(v, "unexpected control-register access");
    uint64_t val = reg_read(&v->rc, (enum hv_reg)gpr); /* RSP comes from the VMCS */
    if (!(vm_read(v, GUEST_IA32_EFER) & EFER_LMA))
        val = (uint32_t)val; /* outside long mode the operand is 32 bits */
    if (cr == 0)
        set_cr0(v, val);
    else
        set_cr4(v, val);
}
