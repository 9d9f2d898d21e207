/*
 * L1's VMX instructions (SDM Vol. 3C ch. 31, each instruction's "Operation"), in
 * the SDM's order of checks: #UD outside VMX operation, #GP at CPL > 0, then the
 * operand checks that end in VMfailInvalid / VMfailValid(error).
 */
#include <string.h>
#include "../lib/x86.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx_bits.h"
#include "gva.h"
#include "nested_int.h"

#define RFLAGS_ARITH (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_OF)

static void vmx_result(struct nested_vcpu *nv, uint64_t flags)
{
    reg_set_rflags(nv->rc, (reg_rflags(nv->rc) & ~RFLAGS_ARITH) | flags);
    reg_skip_instruction(nv->rc);
}
static void vmx_succeed(struct nested_vcpu *nv) { vmx_result(nv, 0); }
static void vmx_fail_invalid(struct nested_vcpu *nv) { vmx_result(nv, X86_EFLAGS_CF); }
void nested_vmx_fail(struct nested_vcpu *nv, uint32_t err)
{
    /* VMfail (SDM 31.2): VMfailValid with the error when a current VMCS exists. */
    if (nv->n->current_ptr == ~0ull) {
        vmx_fail_invalid(nv);
        return;
    }
    vmcs12_set(nv->n->cache, VM_INSTRUCTION_ERROR, err);
    nested_shadow_push_field(nv, VM_INSTRUCTION_ERROR); /* L1 reads it from the shadow */
    vmx_result(nv, X86_EFLAGS_ZF);
}

unsigned nested_l1_cpl(void) { return (vmcs_read(GUEST_SS_AR_BYTES) >> 5) & 3; }
bool nested_guest_64(void) { return (vmcs_read(GUEST_IA32_EFER) & EFER_LMA) && (vmcs_read(GUEST_CS_AR_BYTES) & (1u << 13)); }

/* #UD outside VMX operation, #GP(0) at CPL > 0 (the mode #UDs come from the CPU itself). */
static bool common_checks(struct nested_vcpu *nv)
{
    if (!nv->n->vmxon) {
        hv_inject_exception(nv->rc, 6, false, 0);
        return false;
    }
    if (nested_l1_cpl() > 0) {
        hv_inject_exception(nv->rc, 13, true, 0);
        return false;
    }
    return true;
}

/* Outside 64-bit mode an operand of size bytes at offset ea must lie in a usable segment
 * that allows the access (SDM 5.3, 5.4; ch. 31 "Protected Mode Exceptions"). The VMCS limit
 * is in bytes; an expand-down segment covers limit+1 .. 0xffff or 0xffffffff (D/B). */
static bool segment_allows(enum guest_seg seg, uint64_t ea, unsigned size, bool write)
{
    uint32_t ar = (uint32_t)vmcs_read(GUEST_SEG_AR(seg)), limit = (uint32_t)vmcs_read(GUEST_SEG_LIMIT(seg));
    unsigned type = ar & 15;
    uint64_t last = ea + size - 1;
    if (ar & (1u << 16))
        return false; /* unusable */
    if ((type & 8) ? write || !(type & 2) : write && !(type & 2))
        return false; /* code: never written, execute-only never read; read-only data */
    if (!(type & 8) && (type & 4)) /* expand-down data */
        return ea > limit && last <= ((ar & (1u << 14)) ? 0xffffffffull : 0xffffull);
    return last <= limit;
}

/* Memory operand from the VM-exit instruction-information field (SDM Table 28-13/14), of
 * size bytes, read or written. */
static int operand_gva(struct nested_vcpu *nv, uint32_t info, unsigned size, bool write, uint64_t *gva)
{
    static const uint32_t seg_base[] = {GUEST_ES_BASE, GUEST_CS_BASE, GUEST_SS_BASE,
                                        GUEST_DS_BASE, GUEST_FS_BASE, GUEST_GS_BASE};
    uint64_t ea = reg_exit_qual(nv->rc); /* the displacement */
    unsigned seg = (info >> 15) & 7, asize = (info >> 7) & 7;
    if (!(info & (1u << 27)))
        ea += reg_read(nv->rc, (enum hv_reg)((info >> 23) & 15));
    if (!(info & (1u << 22)))
        ea += reg_read(nv->rc, (enum hv_reg)((info >> 18) & 15)) << (info & 3);
    if (asize == 0)
        ea &= 0xffff;
    else if (asize == 1)
        ea &= 0xffffffff;
    if (seg > 5)
        return -1;
    bool l64 = nested_guest_64();
    if (!l64 && !segment_allows((enum guest_seg)seg, ea, size, write)) {
        hv_inject_exception(nv->rc, seg == 2 ? 12 : 13, true, 0); /* #SS(0) or #GP(0) */
        return -1;
    }
    if (!l64 || seg >= 4)
        ea += vmcs_read(seg_base[seg]); /* 64-bit mode: only FS and GS have a base */
    if (!l64)
        ea &= 0xffffffff;
    if (l64 && (uint64_t)((int64_t)(ea << 16) >> 16) != ea) {
        hv_inject_exception(nv->rc, seg == 2 ? 12 : 13, true, 0); /* non-canonical: #SS or #GP */
        return -1;
    }
    *gva = ea;
    return 0;
}

static int read_ptr_operand(struct nested_vcpu *nv, uint64_t *ptr)
{
    uint64_t gva;
    uint32_t info = (uint32_t)reg_read(nv->rc, HV_REG_EXIT_INSTR_INFO);
    if (operand_gva(nv, info, 8, false, &gva) || guest_read(nv, gva, ptr, 8))
        return -1;
    return 0;
}

/* A VMX region address L1 may use: 4 KiB aligned, within the physical-address width,
 * and ordinary RAM (not hv's memory, not MMIO), as hardware refuses a bad address. */
static bool region_ok(struct nested_vcpu *nv, uint64_t pa)
{
    return !(pa & 0xfff) && !(pa >> nv->phys_bits) && hv_gpa_is_ram(pa, VMCS12_SIZE);
}

void nested_vmcs12_writeback(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    nested_shadow_pull(nv); /* L1's VMWRITEs since the last sync live in the shadow */
    nested_sync_rare(nv);   /* and what the last reflected exit left in vmcs02 */
    if (n->current_ptr != ~0ull && hv_gpa_is_ram(n->current_ptr, sizeof(*n->cache)))
        memcpy((void *)(uintptr_t)n->current_ptr, n->cache, sizeof(*n->cache));
}

static void load_current(struct nested_vcpu *nv, uint64_t pa)
{
    memcpy(nv->n->cache, (const void *)(uintptr_t)pa, sizeof(*nv->n->cache));
    nv->n->current_ptr = pa;
    nv->n->fast_ok = false; /* the next entry checks and builds everything */
}

static void handle_vmxon(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    uint64_t cr4 = reg_read_cr4_shadowed(nv->rc, nv->cr4_mask, vmcs_read(CR4_READ_SHADOW));
    uint64_t cr0 = reg_read_cr0_shadowed(nv->rc, nv->cr0_mask, vmcs_read(CR0_READ_SHADOW));
    if (!(cr4 & CR4_VMXE)) {
        hv_inject_exception(nv->rc, 6, false, 0); /* #UD: CR4.VMXE = 0 */
        return;
    }
    if (n->vmxon) {
        if (nested_l1_cpl() > 0)
            hv_inject_exception(nv->rc, 13, true, 0);
        else
            nested_vmx_fail(nv, VMXERR_VMXON_IN_ROOT);
        return;
    }
    const struct nested_caps *c = nv->caps;
    if (nested_l1_cpl() > 0 || (~cr0 & c->cr0_fixed0) || (cr0 & ~c->cr0_fixed1) || (~cr4 & c->cr4_fixed0) ||
        (cr4 & ~c->cr4_fixed1)) {
        hv_inject_exception(nv->rc, 13, true, 0);
        return;
    }
    uint64_t pa;
    if (read_ptr_operand(nv, &pa))
        return;
    if (!region_ok(nv, pa) || *(const uint32_t *)(uintptr_t)pa != VMCS12_REVISION) {
        vmx_fail_invalid(nv); /* bad address, or revision identifier (bit 31 included) */
        return;
    }
    n->vmxon = true;
    n->vmxon_ptr = pa;
    n->current_ptr = ~0ull;
    vmx_succeed(nv);
}

static void handle_vmxoff(struct nested_vcpu *nv)
{
    /* EPT02 shadows an EPT12 in memory L1 may now reuse for anything: drop it. */
    nested_ept02_invalidate(nv, 2, 0);
    nested_vpid02_vmxoff(nv);
    nested_vmcs12_writeback(nv);
    nested_shadow_deactivate(nv);
    nv->n->fast_ok = false;
    nv->n->vmxon = false;
    nv->n->current_ptr = ~0ull;
    vmx_succeed(nv);
}

static void handle_vmclear(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    uint64_t pa;
    if (read_ptr_operand(nv, &pa))
        return;
    if (!region_ok(nv, pa)) {
        nested_vmx_fail(nv, VMXERR_VMCLEAR_INVALID_ADDR);
        return;
    }
    if (pa == n->vmxon_ptr) {
        nested_vmx_fail(nv, VMXERR_VMCLEAR_VMXON_PTR);
        return;
    }
    if (pa == n->current_ptr) {
        nested_vmcs12_writeback(nv);
        nested_shadow_deactivate(nv);
        n->current_ptr = ~0ull;
    }
    if (pa == n->vmcs02_for)
        n->vmcs02_for = ~0ull; /* its L2 must be launched afresh */
    ((struct vmcs12 *)(uintptr_t)pa)->launch_state = 0; /* "clear" (SDM 25.11.3) */
    vmx_succeed(nv);
}

static void handle_vmptrld(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    uint64_t pa;
    if (read_ptr_operand(nv, &pa))
        return;
    if (!region_ok(nv, pa)) {
        nested_vmx_fail(nv, VMXERR_VMPTRLD_INVALID_ADDR);
        return;
    }
    if (pa == n->vmxon_ptr) {
        nested_vmx_fail(nv, VMXERR_VMPTRLD_VMXON_PTR);
        return;
    }
    /* 31.3 VMPTRLD: bit 31 (a shadow VMCS) only where VMCS shadowing is offered (24.10). */
    uint32_t rev = *(const uint32_t *)(uintptr_t)pa;
    if (rev != VMCS12_REVISION && (rev != (VMCS12_REVISION | VMCS12_SHADOW) || !nested_offers_vmcs_shadowing(nv->caps))) {
        nested_vmx_fail(nv, VMXERR_VMPTRLD_BAD_REVISION);
        return;
    }
    if (pa != n->current_ptr) {
        nested_vmcs12_writeback(nv);
        load_current(nv, pa);
        nested_shadow_activate(nv);
    }
    vmx_succeed(nv);
}

static void handle_vmptrst(struct nested_vcpu *nv)
{
    uint64_t gva;
    uint32_t info = (uint32_t)reg_read(nv->rc, HV_REG_EXIT_INSTR_INFO);
    if (operand_gva(nv, info, 8, true, &gva) || guest_write(nv, gva, &nv->n->current_ptr, 8))
        return;
    vmx_succeed(nv);
}

static unsigned features(const struct nested_vcpu *nv) { return nested_vmcs12_features(nv->caps); }

/* VMREAD/VMWRITE (31.3) of VMCS v: the current vmcs12 (L1, VMX root operation) or, for L2
 * with L1's "VMCS shadowing" (nested/vshadow.c), the shadow VMCS its link pointer names.
 * The #UD, #GP and VMfailInvalid checks are the caller's. */
static void vmread_of(struct nested_vcpu *nv, struct vmcs12 *v)
{
    uint32_t info = (uint32_t)reg_read(nv->rc, HV_REG_EXIT_INSTR_INFO);
    bool l64 = nested_guest_64();
    uint64_t field = reg_read(nv->rc, (enum hv_reg)((info >> 28) & 15)), val;
    if (!l64)
        field &= 0xffffffff;
    if (v == nv->n->cache && nested_rare_field((uint32_t)field))
        nested_sync_rare(nv); /* a field the last reflected exit left in vmcs02 */
    int err = vmcs12_vmread_feat(v, field, &val, features(nv));
    if (err) {
        nested_vmx_fail(nv, (uint32_t)err);
        return;
    }
    if (!l64)
        val &= 0xffffffff;
    if (info & (1u << 10)) {
        reg_write(nv->rc, (enum hv_reg)((info >> 3) & 15), val);
    } else {
        uint64_t gva;
        if (operand_gva(nv, info, l64 ? 8 : 4, true, &gva) || guest_write(nv, gva, &val, l64 ? 8 : 4))
            return;
    }
    vmx_succeed(nv);
}

/* 0, or -1 when the instruction ended (an operand fault or a VMfail). */
static int vmwrite_of(struct nested_vcpu *nv, struct vmcs12 *v, uint64_t *field_out)
{
    uint32_t info = (uint32_t)reg_read(nv->rc, HV_REG_EXIT_INSTR_INFO);
    bool l64 = nested_guest_64();
    uint64_t val = 0;
    if (info & (1u << 10)) {
        val = reg_read(nv->rc, (enum hv_reg)((info >> 3) & 15));
    } else {
        uint64_t gva;
        if (operand_gva(nv, info, l64 ? 8 : 4, false, &gva) || guest_read(nv, gva, &val, l64 ? 8 : 4))
            return -1;
    }
    uint64_t field = reg_read(nv->rc, (enum hv_reg)((info >> 28) & 15));
    if (!l64) {
        field &= 0xffffffff;
        val &= 0xffffffff;
    }
    int err = vmcs12_vmwrite_feat(v, field, val, nv->caps->misc & (1ull << 29), features(nv));
    if (err) {
        nested_vmx_fail(nv, (uint32_t)err);
        return -1;
    }
    *field_out = field;
    return 0;
}

static void handle_vmread(struct nested_vcpu *nv)
{
    if (nv->n->current_ptr == ~0ull) {
        vmx_fail_invalid(nv);
        return;
    }
    nested_shadow_pull(nv); /* a change it finds ends the fast path (nested/shadow.c) */
    vmread_of(nv, nv->n->cache);
}

static void handle_vmwrite(struct nested_vcpu *nv)
{
    uint64_t field;
    if (nv->n->current_ptr == ~0ull) {
        vmx_fail_invalid(nv);
        return;
    }
    nested_shadow_pull(nv);
    /* Before any write: the sync must not overwrite it, and reads the exit controls as they
     * were at the exit. The full path the write leads to syncs anyway. */
    nested_sync_rare(nv);
    nv->n->fast_ok = false; /* a field hv does not track: the next entry takes the full path */
    if (vmwrite_of(nv, nv->n->cache, &field))
        return;
    nested_shadow_push_field(nv, (uint32_t)field & ~1u);
    vmx_succeed(nv);
}

void nested_l2_vmread_vmwrite(struct nested_vcpu *nv, uint32_t reason, uint64_t link)
{
    uint64_t field;
    /* 31.3: after the VM-exit decision, CPL > 0 is #GP(0), then an invalid link pointer. */
    if (nested_l1_cpl() > 0) {
        hv_inject_exception(nv->rc, 13, true, 0);
        return;
    }
    if (link == ~0ull || (link & 0xfff) || !hv_gpa_is_ram(link, VMCS12_SIZE)) {
        vmx_fail_invalid(nv);
        return;
    }
    struct vmcs12 *shadow = (struct vmcs12 *)(uintptr_t)link; /* in L1's memory, as the CPU accesses it */
    if (reason == EXIT_REASON_VMREAD)
        vmread_of(nv, shadow);
    else if (!vmwrite_of(nv, shadow, &field))
        vmx_succeed(nv);
}

static void handle_invept(struct nested_vcpu *nv)
{
    uint32_t info = (uint32_t)reg_read(nv->rc, HV_REG_EXIT_INSTR_INFO);
    uint64_t type = reg_read(nv->rc, (enum hv_reg)((info >> 28) & 15)), gva, desc[2];
    if (!nested_guest_64())
        type &= 0xffffffff;
    /* Supported types: IA32_VMX_EPT_VPID_CAP bits 25 (single-context) and 26 (all-context). */
    if ((type != 1 && type != 2) || !(nv->caps->ept_vpid & (1ull << (24 + type)))) {
        nested_vmx_fail(nv, VMXERR_INVALID_INVEPT_INVVPID);
        return;
    }
    if (operand_gva(nv, info, 16, false, &gva) || guest_read(nv, gva, desc, 16))
        return;
    /* 31.3 INVEPT: only single-context looks at the descriptor, and only at the EPTP a VM
     * entry would accept; the reserved bits 127:64 are not checked (nor by Bochs, nor KVM). */
    if (type == 1 && !nested_eptp_valid(nv->caps, desc[0], nv->phys_bits)) {
        nested_vmx_fail(nv, VMXERR_INVALID_INVEPT_INVVPID);
        return;
    }
    nested_ept02_invalidate(nv, type, desc[0]);
    vmx_succeed(nv);
}

static void handle_invvpid(struct nested_vcpu *nv)
{
    uint32_t info = (uint32_t)reg_read(nv->rc, HV_REG_EXIT_INSTR_INFO);
    uint64_t type = reg_read(nv->rc, (enum hv_reg)((info >> 28) & 15)), gva, desc[2];
    if (!nested_guest_64())
        type &= 0xffffffff;
    /* Supported types: IA32_VMX_EPT_VPID_CAP bits 40..43 as advertised. */
    if (type > 3 || !(nv->caps->ept_vpid & (1ull << (40 + type)))) {
        nested_vmx_fail(nv, VMXERR_INVALID_INVEPT_INVVPID);
        return;
    }
    if (operand_gva(nv, info, 16, false, &gva) || guest_read(nv, gva, desc, 16))
        return;
    uint16_t vpid = (uint16_t)desc[0];
    bool bad = (desc[0] >> 16) != 0 || (type != 2 && vpid == 0) ||
               (type == 0 && (uint64_t)((int64_t)(desc[1] << 16) >> 16) != desc[1]);
    if (bad) {
        nested_vmx_fail(nv, VMXERR_INVALID_INVEPT_INVVPID);
        return;
    }
    nested_vpid02_invvpid(nv, type, vpid, desc[1]);
    vmx_succeed(nv);
}

/* L1's VMRESUME, the L0 exit of every nested round trip: only the checks that apply to it
 * (no operand, advertised with VMX itself), then the entry. */
void nested_handle_vmresume(struct nested_vcpu *nv)
{
    if (common_checks(nv))
        nested_vmenter(nv, false);
}

void nested_handle_vmx_insn(struct nested_vcpu *nv, uint32_t reason)
{
    bool has_vpid = (nv->caps->procbased2 >> 32) & SECONDARY_VPID;
    bool has_invept = nested_has_ept(nv->caps) && (nv->caps->ept_vpid & EPT_CAP_INVEPT);
    if (reason == EXIT_REASON_VMXON) {
        handle_vmxon(nv);
        return;
    }
    if ((reason == EXIT_REASON_INVEPT && !has_invept) || (reason == EXIT_REASON_INVVPID && !has_vpid)) {
        hv_inject_exception(nv->rc, 6, false, 0); /* not advertised: #UD, as on such a CPU */
        return;
    }
    if (!common_checks(nv))
        return;
    switch (reason) {
    case EXIT_REASON_VMXOFF: handle_vmxoff(nv); break;
    case EXIT_REASON_VMCLEAR: handle_vmclear(nv); break;
    case EXIT_REASON_VMPTRLD: handle_vmptrld(nv); break;
    case EXIT_REASON_VMPTRST: handle_vmptrst(nv); break;
    case EXIT_REASON_VMREAD: handle_vmread(nv); break;
    case EXIT_REASON_VMWRITE: handle_vmwrite(nv); break;
    case EXIT_REASON_VMLAUNCH: nested_vmenter(nv, true); break;
    case EXIT_REASON_VMRESUME: nested_vmenter(nv, false); break;
    case EXIT_REASON_INVEPT: handle_invept(nv); break;
    case EXIT_REASON_INVVPID: handle_invvpid(nv); break;
    default: hv_inject_exception(nv->rc, 6, false, 0);
    }
}
