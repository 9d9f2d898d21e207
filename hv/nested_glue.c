/* What nested/ asks of hv (nested/nested.h "provided by hv/"), and the vCPU's
 * nested state set-up. */
#include "../lib/log.h"
#include "../lib/pages.h"
#include "../lib/x86.h"
#include "../nested/nested.h"
#include "exit.h"
#include "host.h"

static struct vcpu *vcpu_of(struct regcache *rc) { return (struct vcpu *)rc; } /* rc is vcpu's first member */

void hv_inject_exception(struct regcache *rc, uint8_t vector, bool has_error, uint32_t error)
{
    inject_exception(vcpu_of(rc), vector, has_error, error);
}

void hv_inject_page_fault(struct regcache *rc, uint64_t cr2, uint32_t error)
{
    write_cr2(cr2); /* CR2 is not in the VMCS: the guest's value is the live register */
    inject_exception(vcpu_of(rc), 14, true, error);
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
int hv_rdmsr(uint32_t msr, uint64_t *val) { return safe_rdmsr(msr, val); }
int hv_wrmsr(uint32_t msr, uint64_t val) { return safe_wrmsr(msr, val); }

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
    nv->io_bitmap01_a = hv.io_bitmap_a;
    nv->io_bitmap01_b = hv.io_bitmap_b;
    nv->eptp = hv.eptp;
    nv->cpu = v->id;
    nv->launch_pending = &v->launch_pending;
    nv->shadow_ok = hv.shadow_vmread_bitmap != NULL;
    nv->shadow_exit_info = hv.msrs.misc & (1ull << 29);
    nv->vmread_bitmap = (uint64_t)(uintptr_t)hv.shadow_vmread_bitmap;
    nv->vmwrite_bitmap = (uint64_t)(uintptr_t)hv.shadow_vmwrite_bitmap;
    v->nested.vmcs01_pa = v->vmcs_pa;
    return nested_vcpu_init(nv);
}
