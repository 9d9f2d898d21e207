/*
 * VMCS shadowing for L1 (SDM 25.10): while L1 has a current vmcs12, vmcs01 links a
 * hardware shadow VMCS, so L1's VMREAD and VMWRITE of the fields a hypervisor touches on
 * every exit run without a VM exit. As in KVM, only those hot fields are shadowed: the
 * VMREAD/VMWRITE bitmaps send every other encoding to hv, which answers from its cache
 * (error 12 for unsupported ones), and the copies below stay short.
 *
 * hv's cache (struct vmcs12) stays the copy hv works on: the read/write fields are pulled
 * from the shadow before hv reads vmcs12 (nested VM-Enter, VMPTRLD, VMCLEAR, VMXOFF) and
 * pushed after hv changes them (VMPTRLD, reflected exits, VM-entry failures, VMfailValid).
 */
#include "../lib/log.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx.h"
#include "../vmx/vmx_bits.h"
#include "nested_int.h"

/* Read and written by L1 on its exit path: pulled at every nested VM-Enter. */
static const uint32_t shadow_rw[] = {
    GUEST_RIP, GUEST_RSP, GUEST_RFLAGS, GUEST_CR0, GUEST_CR3, GUEST_CR4, GUEST_INTERRUPTIBILITY_INFO,
    GUEST_ACTIVITY_STATE, GUEST_PENDING_DBG_EXCEPTIONS, GUEST_CS_SELECTOR, GUEST_CS_AR_BYTES, GUEST_SS_AR_BYTES,
    GUEST_ES_BASE, GUEST_CS_BASE, GUEST_SS_BASE, GUEST_DS_BASE, GUEST_FS_BASE, GUEST_GS_BASE,
    CR0_READ_SHADOW, CR4_READ_SHADOW, CPU_BASED_VM_EXEC_CONTROL, EXCEPTION_BITMAP, TSC_OFFSET,
    VM_ENTRY_INTR_INFO_FIELD, VM_ENTRY_EXCEPTION_ERROR_CODE, VM_ENTRY_INSTRUCTION_LEN,
    VMX_PREEMPTION_TIMER_VALUE,
    /* KVM as L1 writes these when its stack, address space or FS/GS move (HOST_RSP with
     * every system call where the kernel stack offset is randomized): never an exit. */
    HOST_RSP, HOST_CR3, HOST_FS_SELECTOR, HOST_GS_SELECTOR, HOST_FS_BASE, HOST_GS_BASE,
};
/* Feature-dependent fields (vmcs12.h) on KVM's hot path, shadowed only while hv offers their
 * feature: otherwise L1's VMREAD/VMWRITE must fail with error 12, which only hv gives. The
 * CPU has each field then (hv offers a feature only where the CPU has it). */
static const struct {
    uint32_t encoding;
    unsigned feature;
} shadow_feat[] = {
    {TPR_THRESHOLD, VMCS12_FEAT_TPR_SHADOW},
    {GUEST_INTR_STATUS, VMCS12_FEAT_VID},
};
/* The exit information L1 reads (read-only: written into the shadow by hv only). */
static const uint32_t shadow_ro[] = {
    VM_INSTRUCTION_ERROR, VM_EXIT_REASON, EXIT_QUALIFICATION, GUEST_LINEAR_ADDRESS, GUEST_PHYSICAL_ADDRESS, VM_EXIT_INTR_INFO,
    VM_EXIT_INTR_ERROR_CODE, IDT_VECTORING_INFO_FIELD, IDT_VECTORING_ERROR_CODE, VM_EXIT_INSTRUCTION_LEN,
    VMX_INSTRUCTION_INFO, IO_RCX, IO_RSI, IO_RDI, IO_RIP,
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void allow(uint8_t *bm, uint32_t e)
{
    unsigned n = VMCS_FIELD_WIDTH(e) == VMCS_WIDTH_64 ? 2 : 1; /* the high half of 64-bit fields too */
    for (unsigned h = 0; h < n; h++) {
        uint32_t b = (e | h) & 0x7fff;
        bm[b / 8] &= (uint8_t)~(1u << (b % 8));
    }
}

/* Bit set = exit. Shared by all vCPUs; built once. Read-only fields can be written into
 * the shadow only with IA32_VMX_MISC[29]; without it they are not shadowed at all. */
void nested_shadow_bitmaps(uint8_t *vmread_bm, uint8_t *vmwrite_bm, bool exit_info_writable, unsigned features)
{
    for (int i = 0; i < 4096; i++)
        vmread_bm[i] = vmwrite_bm[i] = 0xff;
    for (unsigned i = 0; i < N(shadow_rw); i++) {
        allow(vmread_bm, shadow_rw[i]);
        allow(vmwrite_bm, shadow_rw[i]);
    }
    for (unsigned i = 0; i < N(shadow_feat); i++) {
        if (!(features & shadow_feat[i].feature))
            continue;
        allow(vmread_bm, shadow_feat[i].encoding);
        allow(vmwrite_bm, shadow_feat[i].encoding);
    }
    for (unsigned i = 0; exit_info_writable && i < N(shadow_ro); i++)
        allow(vmread_bm, shadow_ro[i]);
}

/* The fields of shadow_rw, shadow_feat (those hv offers) and shadow_ro (with
 * shadow_exit_info) as prepared lists (vmcs12_list_prepare), for this vCPU's features: the
 * read/write ones for the pull and the full push, and the ones a reflected exit changes. */
struct shadow_lists {
    unsigned key;           /* the features and shadow_exit_info they were made for; 0: none */
    unsigned nr_rw, nr_ro, nr_exit;
    uint32_t rw[N(shadow_rw) + N(shadow_feat)];
    uint32_t ro[N(shadow_ro)];
    uint32_t exit[N(shadow_rw) + N(shadow_feat) + N(shadow_ro)];
};
_Static_assert(sizeof(struct shadow_lists) <= 4096, "the lists fit a page");

/* What a reflected exit (or a VM-entry failure) writes into vmcs12 of the shadowed fields:
 * L2's state, the event injection's valid bit, the exit information (28.2, 28.3). The rest
 * (controls, host state) was pulled from the shadow at the entry and is unchanged. */
static bool exit_changes(uint32_t e)
{
    switch (e) {
    case VM_INSTRUCTION_ERROR: /* only VMX instructions set it (nested/insn.c pushes it) */
        return false;
    case VM_ENTRY_INTR_INFO_FIELD:
    case VMX_PREEMPTION_TIMER_VALUE:
    case GUEST_INTR_STATUS:
        return true;
    default:
        return VMCS_FIELD_TYPE(e) == 1 || VMCS_FIELD_TYPE(e) == 2; /* exit information, guest state */
    }
}

static const struct shadow_lists *lists(struct nested_vcpu *nv)
{
    struct shadow_lists *l = nv->n->shadow_lists;
    unsigned feats = nested_vmcs12_features(nv->caps), key = 1u << 31 | (nv->shadow_exit_info ? 1u << 30 : 0);
    for (unsigned i = 0; i < N(shadow_feat); i++)
        key |= feats & shadow_feat[i].feature;
    if (__builtin_expect(l->key == key, 1))
        return l;
    uint32_t rw[N(shadow_rw) + N(shadow_feat)], exit[N(l->exit)];
    unsigned n = 0, x = 0;
    for (unsigned i = 0; i < N(shadow_rw); i++)
        rw[n++] = shadow_rw[i];
    for (unsigned i = 0; i < N(shadow_feat); i++)
        if (feats & shadow_feat[i].feature)
            rw[n++] = shadow_feat[i].encoding;
    for (unsigned i = 0; i < n; i++)
        if (exit_changes(rw[i]))
            exit[x++] = rw[i];
    l->nr_ro = nv->shadow_exit_info ? vmcs12_list_prepare(l->ro, shadow_ro, N(shadow_ro)) : 0;
    for (unsigned i = 0; nv->shadow_exit_info && i < N(shadow_ro); i++)
        if (exit_changes(shadow_ro[i]))
            exit[x++] = shadow_ro[i];
    l->nr_rw = vmcs12_list_prepare(l->rw, rw, n);
    l->nr_exit = vmcs12_list_prepare(l->exit, exit, x);
    l->key = key;
    return l;
}

/* The shadow VMCS current for the copy; vmcs02 or vmcs01 current again after. */
static void shadow_current(struct nested_state *n) { vmptrld(n->shadow_pa); }
static void shadow_done(struct nested_state *n) { vmptrld(n->guest_mode ? n->vmcs02_pa : n->vmcs01_pa); }

/* The read/write fields from the shadow into the cache: the classes (nested/vmenter_fast.c)
 * of what changed. */
unsigned nested_shadow_pull_changes(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    if (!n->shadowing)
        return 0;
    const struct shadow_lists *l = lists(nv);
    struct vmcs12 *c = n->cache;
    unsigned changes = 0;
    shadow_current(n);
    for (const uint32_t *p = l->rw, *end = l->rw + l->nr_rw; p != end; p++) {
        uint64_t val = vmcs_read(VMCS12_LIST_FIELD(*p)), *f = &c->fields[VMCS12_LIST_SLOT(*p)];
        if (__builtin_expect(val != *f, 0)) {
            *f = val;
            changes |= nested_fast_field_class(VMCS12_LIST_FIELD(*p));
        }
    }
    shadow_done(n);
    return changes;
}

void nested_shadow_pull(struct nested_vcpu *nv) { nested_shadow_pull_changes(nv); }

void nested_shadow_push(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    if (!n->shadowing)
        return;
    const struct shadow_lists *l = lists(nv);
    shadow_current(n);
    v12_list_write(n->cache, l->rw, l->nr_rw);
    v12_list_write(n->cache, l->ro, l->nr_ro);
    shadow_done(n);
}

/* After a reflected exit or a VM-entry failure: only what it changed. */
void nested_shadow_push_exit(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    if (!n->shadowing)
        return;
    const struct shadow_lists *l = lists(nv);
    shadow_current(n);
    v12_list_write(n->cache, l->exit, l->nr_exit);
    shadow_done(n);
}

static bool listed(const uint32_t *list, unsigned nr, uint32_t e)
{
    for (unsigned i = 0; i < nr; i++)
        if (VMCS12_LIST_FIELD(list[i]) == e)
            return true;
    return false;
}

void nested_shadow_push_field(struct nested_vcpu *nv, uint32_t e)
{
    struct nested_state *n = nv->n;
    if (!n->shadowing)
        return;
    const struct shadow_lists *l = lists(nv);
    if (!listed(l->rw, l->nr_rw, e) && !listed(l->ro, l->nr_ro, e))
        return; /* not shadowed: L1's VMREAD exits to hv, which reads the cache */
    shadow_current(n);
    vmcs_write(e, vmcs12_get(n->cache, e));
    shadow_done(n);
}
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
    n->shadow_lists = hv_alloc_page(); /* zeroed: made at first use */
    if (!n->shadow_lists)
        return -1;
    page[0] = (uint32_t)(nv->hw->basic & 0x7fffffff) | 0x80000000u; /* shadow-VMCS indicator */
    n->shadow_pa = (uint64_t)(uintptr_t)page;
    vmclear(n->shadow_pa);
    vmcs_write(VMREAD_BITMAP, nv->vmread_bitmap);
    vmcs_write(VMWRITE_BITMAP, nv->vmwrite_bitmap);
    return 0;
}
