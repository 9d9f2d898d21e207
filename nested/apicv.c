/*
 * APIC virtualization for L2 (SDM Vol. 3C chapter 29): "use TPR shadow", "virtualize APIC
 * accesses", "virtualize x2APIC mode", "APIC-register virtualization", "virtual-interrupt
 * delivery" and "process posted interrupts" run in hardware, in vmcs02, with L1's pages.
 *
 * - Addresses. L1's guest-physical addresses are host-physical ones (EPT01 is an identity
 *   map), so the virtual-APIC page, the APIC-access address and the posted-interrupt
 *   descriptor go into vmcs02 as vmcs12 has them, except where the CPU would read or write
 *   memory that is not L1's RAM: a virtual-APIC page or descriptor in hv's memory (which L1
 *   sees as zeros that drop writes) or in MMIO gets a page of hv's instead, zeroed at every
 *   nested VM entry, so L2 and the CPU read zeros there and nothing written reaches the
 *   address. The APIC-access address is never accessed as memory (the CPU compares
 *   translated physical addresses with it, 29.4), so it goes in unchanged.
 * - Interrupts. hv owns no interrupt vector: every external interrupt, a posted-interrupt
 *   notification vector included, is L1's. vmcs02 takes L1's "external-interrupt exiting",
 *   "acknowledge interrupt on exit" and notification vector, so the CPU processes posted
 *   interrupts (29.6) and delivers virtual interrupts (29.2) for L2 exactly as it would for
 *   L1's VMCS, and an interrupt that exits is reflected with the vector the CPU acknowledged.
 * - hv's xAPIC write protection (hv/apic.c). An L2 on EPT01 whose L1 names its own xAPIC
 *   page as APIC-access page: reads are APIC accesses as usual, but a write meets EPT01's
 *   read-only leaf first (an EPT violation has priority over an APIC-access VM exit,
 *   29.4.1). hv then gives L1 the APIC-access VM exit the write would cause if the CPU did
 *   not virtualize it (nested_l2_apic_page_write); the real APIC never sees it.
 */
#include <string.h>
#include "../lib/x86.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx.h"
#include "../vmx/vmx_bits.h"
#include "checks.h"
#include "nested_int.h"

#define VTPR_OFFSET 0x80
#define APIC_ACCESS_LINEAR_WRITE (1ull << 12)  /* Table 28-6: access type 1 */
#define APIC_ACCESS_EVENT_DELIVERY (3ull << 12) /* type 3: linear access during event delivery */
#define APIC_ACCESS_GPA_INSN (15ull << 12)      /* type 15: guest-physical access, instruction */
#define APIC_ACCESS_GPA_EVENT (10ull << 12)     /* type 10: guest-physical access, event delivery */
#define EPT_QUAL_GLA_VALID (1ull << 7)
#define EPT_QUAL_GLA_TRANSLATION (1ull << 8)

static uint32_t proc12(const struct nested_vcpu *nv) { return (uint32_t)v12(nv, CPU_BASED_VM_EXEC_CONTROL); }
static uint32_t proc2_12(const struct nested_vcpu *nv)
{
    return proc12(nv) & CPU_BASED_ACTIVATE_SECONDARY ? (uint32_t)v12(nv, SECONDARY_VM_EXEC_CONTROL) : 0;
}

/* VTPR (29.1.1) as L1 sees its virtual-APIC page: zeros outside RAM. */
static uint8_t l1_vtpr(const struct nested_vcpu *nv)
{
    uint64_t va = v12(nv, VIRTUAL_APIC_PAGE_ADDR);
    return hv_gpa_is_ram(va + VTPR_OFFSET, 1) ? *(const uint8_t *)(uintptr_t)(va + VTPR_OFFSET) : 0;
}

/* The TPR threshold applies (26.2.1.1, 26.7.7, 29.1.2): "use TPR shadow" without
 * virtual-interrupt delivery. */
static bool tpr_threshold_applies(const struct nested_vcpu *nv)
{
    return (proc12(nv) & CPU_BASED_TPR_SHADOW) && !(proc2_12(nv) & SECONDARY_VIRTUAL_INTR_DELIVERY);
}

/* hv's stand-in for a page of L1's that is not RAM (0: virtual-APIC page, 1: descriptor). */
static uint64_t stand_in(struct nested_vcpu *nv, unsigned which)
{
    uint8_t *p = nv->n->apicv_page[which];
    memset(p, 0, 4096);
    return (uint64_t)(uintptr_t)p;
}

int nested_apicv_check_tpr_shadow(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    for (unsigned i = 0; i < 2; i++)
        if (!n->apicv_page[i] && !(n->apicv_page[i] = hv_alloc_page()))
            return VMXERR_ENTRY_INVALID_CONTROL; /* hv's limit, as for EPT02 */
    return nested_check_vtpr(n->cache, l1_vtpr(nv)); /* 26.2.1.1 reads VTPR as L1 sees it */
}

bool nested_tpr_exit_after_entry(const struct nested_vcpu *nv)
{
    return tpr_threshold_applies(nv) && (v12(nv, TPR_THRESHOLD) & 0xf) > (uint64_t)(l1_vtpr(nv) >> 4);
}

void nested_apicv_prepare(struct nested_vcpu *nv, bool full)
{
    uint32_t pin = (uint32_t)v12(nv, PIN_BASED_VM_EXEC_CONTROL), proc = proc12(nv), proc2 = proc2_12(nv);
    uint32_t pin_ok = nested_allowed1(nv->caps->true_pinbased), proc_ok = nested_allowed1(nv->caps->true_procbased);
    uint32_t proc2_ok = nested_allowed1(nv->caps->procbased2);
    /* Only fields the CPU has (the feature is offered) are written; the controls that use them
     * came from vmcs12 through prepare_controls. A fast VMRESUME (!full) finds vmcs12's
     * addresses, vector and EOI-exit bitmaps unchanged and in vmcs02, and the guest interrupt
     * status there as the last exit left it (nested_apicv_sync); per entry remain the TPR
     * threshold (L1 writes it freely, nested_apicv_l2_resume may have lowered vmcs02's), the
     * stand-in pages zeroed, and the virtual interrupt the entry may deliver. */
    if ((proc_ok & CPU_BASED_TPR_SHADOW) && (proc & CPU_BASED_TPR_SHADOW)) {
        uint64_t va = v12(nv, VIRTUAL_APIC_PAGE_ADDR);
        uint64_t page = hv_gpa_is_ram(va, 4096) ? va : stand_in(nv, 0);
        if (full)
            vmcs_write(VIRTUAL_APIC_PAGE_ADDR, page);
        vmcs_write(TPR_THRESHOLD, v12(nv, TPR_THRESHOLD));
    }
    if (full && (proc2_ok & SECONDARY_VIRTUALIZE_APIC) && (proc2 & SECONDARY_VIRTUALIZE_APIC))
        vmcs_write(APIC_ACCESS_ADDR, v12(nv, APIC_ACCESS_ADDR));
    nv->n->vid_entry_armed = false;
    if ((proc2_ok & SECONDARY_VIRTUAL_INTR_DELIVERY) && (proc2 & SECONDARY_VIRTUAL_INTR_DELIVERY)) {
        uint16_t gis = (uint16_t)v12(nv, GUEST_INTR_STATUS);
        if (full) {
            for (unsigned i = 0; i < 4; i++)
                vmcs_write(EOI_EXIT_BITMAP0 + 2 * i, v12(nv, EOI_EXIT_BITMAP0 + 2 * i));
            vmcs_write(GUEST_INTR_STATUS, gis); /* guest state (25.4.2) */
        }
        nv->n->vid_entry_gis = gis;
        nv->n->vid_entry_rip = v12(nv, GUEST_RIP);
        nv->n->vid_entry_armed = (gis & 0xff) && (gis & 0xff) != gis >> 8 &&
                                 !(v12(nv, VM_ENTRY_INTR_INFO_FIELD) & INTR_INFO_VALID);
    }
    if ((pin_ok & PIN_BASED_POSTED_INTR) && (pin & PIN_BASED_POSTED_INTR)) {
        uint64_t pid = v12(nv, POSTED_INTR_DESC_ADDR);
        uint64_t desc = hv_gpa_is_ram(pid, 64) ? pid : stand_in(nv, 1) + (pid & 0xfc0);
        if (full) {
            vmcs_write(POSTED_INTR_NV, v12(nv, POSTED_INTR_NV));
            vmcs_write(POSTED_INTR_DESC_ADDR, desc);
        }
    }
}

/* hv's own re-entry of vmcs02 (L2 goes on after an exit hv kept): the CPU applies the VTPR rule
 * (26.2.1.1) and the TPR-below-threshold exit after entry (26.7.7) at every VM entry, where L1's
 * hardware would apply them only at L1's next entry. L2 may have lowered VTPR by a plain store
 * to its virtual-APIC page (no TPR virtualization then): vmcs02's threshold is lowered to
 * VTPR[7:4] until L1's next entry writes vmcs12's back (nested_apicv_prepare). */
void nested_apicv_l2_resume(struct nested_vcpu *nv)
{
    if (!tpr_threshold_applies(nv))
        return;
    uint64_t va = v12(nv, VIRTUAL_APIC_PAGE_ADDR);
    const uint8_t *page = hv_gpa_is_ram(va, 4096) ? (const uint8_t *)(uintptr_t)va : nv->n->apicv_page[0];
    uint64_t want = v12(nv, TPR_THRESHOLD) & 0xf, vtpr4 = page ? page[VTPR_OFFSET] >> 4 : 0;
    if (vtpr4 < want)
        want = vtpr4;
    if (vmcs_read(TPR_THRESHOLD) != want)
        vmcs_write(TPR_THRESHOLD, want);
}

/*
 * The virtual interrupt a VM entry delivers (29.2.1: RVI is evaluated at entry; 29.2.2: SVI
 * becomes RVI's vector, then the interrupt is delivered as an external interrupt), cut short
 * by an exit hv handles itself (an EPT01/EPT02 fill, a dropped write): hv delivers the event
 * again (27.2.4), so IDT-vectoring information must name it, type 0 and the vector. Bochs
 * 3.0 does not record a virtual interrupt as the event in delivery (its VMexit_Event is not
 * called for it) and reports the last event it recorded instead: an NMI or exception L1
 * injected long before, which hv then injected into L2 (hv-in-hv: L3 took vector 2, 1 or 6
 * instead of 0x51). Where the state allows no other event, hv takes the virtual interrupt:
 * nothing was injected at the entry, this is vmcs02's first exit since, L2 is still at the
 * entry's RIP (no instruction completed, so nothing raised an exception and no other
 * interrupt was delivered: its handler's RIP would show) and SVI is now the entry's RVI (its
 * delivery began). Only hv's own handling sees it; a reflected exit gives L1 what the CPU
 * stored (vmcs02's fields), as bare hardware would.
 */
void nested_apicv_exit_armed(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    n->vid_entry_armed = false;
    struct regcache *rc = nv->rc;
    if (!(reg_read(rc, HV_REG_IDT_VECTORING_INFO) & INTR_INFO_VALID))
        return;
    uint8_t rvi = (uint8_t)n->vid_entry_gis;
    if ((uint8_t)(vmcs_read(GUEST_INTR_STATUS) >> 8) != rvi || reg_rip(rc) != n->vid_entry_rip)
        return;
    regcache_set_exit_info(rc, HV_REG_IDT_VECTORING_INFO, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | rvi);
}

void nested_apicv_sync(struct nested_vcpu *nv)
{
    /* 28.3.3: RVI and SVI are saved with virtual-interrupt delivery. */
    if (proc2_12(nv) & SECONDARY_VIRTUAL_INTR_DELIVERY)
        v12_set(nv, GUEST_INTR_STATUS, vmcs_read(GUEST_INTR_STATUS));
}

bool nested_l2_apic_page_write(struct nested_vcpu *nv, uint64_t gpa, uint64_t ept_qual)
{
    if (!nv->n->guest_mode || !(proc2_12(nv) & SECONDARY_VIRTUALIZE_APIC) ||
        (v12(nv, APIC_ACCESS_ADDR) & ~0xfffull) != (gpa & ~0xfffull))
        return false;
    /* Table 28-6: a linear write, or a guest-physical access (a paging-structure update),
     * during instruction execution or event delivery. */
    bool event = reg_read(nv->rc, HV_REG_IDT_VECTORING_INFO) & INTR_INFO_VALID;
    bool linear = (ept_qual & (EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_TRANSLATION)) ==
                  (EPT_QUAL_GLA_VALID | EPT_QUAL_GLA_TRANSLATION);
    uint64_t type = linear ? (event ? APIC_ACCESS_EVENT_DELIVERY : APIC_ACCESS_LINEAR_WRITE)
                           : (event ? APIC_ACCESS_GPA_EVENT : APIC_ACCESS_GPA_INSN);
    nested_reflect_apic_access(nv, (linear ? gpa & 0xfff : 0) | type);
    return true;
}
