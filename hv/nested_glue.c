/* What nested/ asks of hv (nested/nested.h "provided by hv/"), and the vCPU's
 * nested state set-up. */
#include "../lib/log.h"
#include "../lib/pages.h"
#include "../lib/x86.h"
#include "../nested/nested.h"
#include "../vmx/ept.h"
#include "../vmx/vmx.h"
#include "apic.h"
#include "exit.h"
#include "host.h"

static struct vcpu *vcpu_of(struct regcache *rc) { return (struct vcpu *)rc; } /* rc is vcpu's first member */

void hv_inject_exception(struct regcache *rc, uint8_t vector, bool has_error, uint32_t error)
{
    inject_exception(vcpu_of(rc), vector, has_error, error);
}

void hv_inject_page_fault(struct regcache *rc, uint64_t cr2, uint32_t error)
{
    struct vcpu *v = vcpu_of(rc);
    /* L2's #PF that L1 intercepts: the exit's qualification is the linear address and CR2 is
     * not written (SDM 27.1, 27.2.1). */
    if (v->nested.guest_mode && nested_l1_wants_exception(&v->nv, 14, error)) {
        nested_reflect_exception(&v->nv, 14, true, error, cr2);
        return;
    }
    write_cr2(cr2); /* CR2 is not in the VMCS: the guest's value is the live register */
    inject_exception(v, 14, true, error);
}

bool hv_gpa_is_ram(uint64_t gpa, uint64_t len)
{
    if (!hv.ho || gpa + len < gpa)
        return false;
    for (uint32_t i = 0; i < hv.ho->nmem; i++) {
        const struct hv_mem_range *m = &hv.ho->mem[i];
        if (m->type == HV_MEM_RAM && gpa >= m->base && gpa + len <= m->base + m->size)
            return true;
    }
    return false;
}

void *hv_alloc_page(void) { return page_alloc(1); }
int hv_rdmsr(uint32_t msr, uint64_t *val) { return guest_rdmsr(msr, val); }
int hv_wrmsr(uint32_t msr, uint64_t val) { return guest_wrmsr(msr, val); }

/* EPT02's view of EPT01 (nested/ept02.h ept02_l1_page_fn): identity below EPT01's limit,
 * hv's memory as EPT01 shows it to L1 (the zero page, never writable), the xAPIC page as
 * EPT01 has it (read/execute, writes emulated by hv: EPT02_L1_MMIO), nothing above. */
static int l1_page(uint64_t gpa, uint64_t *host_pa, uint64_t *max_access)
{
    const struct ept *e = hv.ept;
    if (!e || gpa >= e->limit)
        return -1;
    if (ept_is_hidden(e, gpa)) {
        if (!e->hidden_page)
            return -1;
        *host_pa = e->hidden_page;
        *max_access = EPT_R | EPT_X;
        return 0;
    }
    *host_pa = gpa & ~(EPT_PAGE_4K - 1);
    if (hv.apic_page && *host_pa == hv.apic_page) {
        *max_access = EPT_R | EPT_X; /* as EPT01's write-protected leaf (hv/virt.c) */
        return EPT02_L1_MMIO;
    }
    *max_access = EPT_RWX;
    return 0;
}

/* L2's store (on EPT02) to hv's xAPIC page, at its L1-physical address: what L1's own store
 * gets (hv/exit_ept.c), so the INIT/SIPI latch sees L2's ICR writes too. */
static void l1_mmio_write(struct nested_vcpu *nv, uint64_t l1_gpa, uint64_t ept_qual)
{
    if (!nested_l2_apic_page_write(nv, l1_gpa, ept_qual))
        apic_mmio_write(vcpu_of(nv->rc), l1_gpa);
}

/* EPT02 changed: this CPU's EPT-derived translations go (all contexts). */
static void flush_ept(void) { invept(2, 0); }

/* INVVPID of hv's VPIDs for L2 (nested/vpid.c), which only asks for types the CPU has: a
 * failure would leave translations L1 expects gone, so all contexts go then. */
static void flush_vpid(uint64_t type, uint16_t vpid, uint64_t la)
{
    static bool logged;
    if (invvpid(type, vpid, la) == VMX_OK)
        return;
    if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
        log_err("nested: INVVPID type %llu of VPID %u failed; all contexts instead", (unsigned long long)type, vpid);
    invvpid(2, 0, 0);
}

int vcpu_nested_init(struct vcpu *v)
{
    struct nested_vcpu *nv = &v->nv;
    nv->rc = &v->rc;
    nv->n = &v->nested;
    nv->caps = &hv.ncaps;
    nv->hw = &hv.msrs;
    nv->phys_bits = hv.phys_bits;
    nv->cr0_mask = v->cr0_mask;
    nv->cr4_mask = v->cr4_mask;
    nv->msr_bitmap01 = hv.msr_bitmap;
    nv->eptp = v->ept01.eptp; /* an L2 without L1's EPT runs on this CPU's EPT01 */
    nv->cpu = v->id;
    nv->launch_pending = &v->launch_pending;
    nv->shadow_ok = hv.shadow_vmread_bitmap != NULL;
    nv->shadow_exit_info = hv.msrs.misc & (1ull << 29);
    nv->vmread_bitmap = (uint64_t)(uintptr_t)hv.shadow_vmread_bitmap;
    nv->vmwrite_bitmap = (uint64_t)(uintptr_t)hv.shadow_vmwrite_bitmap;
    nv->l1_page = l1_page;
    nv->flush_ept = flush_ept;
    nv->l1_mmio_write = l1_mmio_write;
    nv->invvpid = flush_vpid;
    v->nested.vmcs01_pa = v->vmcs_pa;
    return nested_vcpu_init(nv);
}
