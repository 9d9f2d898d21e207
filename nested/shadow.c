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

/* Read by L1 on its exit path without a VM exit. F(encoding, exit): exit = a reflected exit
 * (or VM-entry failure) writes it into vmcs12: L2's state, the event injection's valid bit
 * (28.2, 28.3); 1: pushed at every exit, 2: pushed when it changed (NESTED_EXIT_TRACKED_LIST,
 * nested_state.shadow_dirty). The others (controls, host state) were pulled at the entry and
 * nothing changes them until the exit. Written by L1 without a VM exit too, and so pulled at
 * every nested VM-Enter, all but the exit-2 ones: L2's segments, activity state and pending
 * debug exceptions, which KVM reads but writes only when it sets up L2's state (its own
 * shadow VMCS has CS/SS access rights read-only and the others not at all): L1's VMWRITE of
 * one exits to hv (the next entry takes the full path), which saves the pull 11 VMREADs at
 * every entry (issue 9). Copied straight-line (X-macro): a VMREAD or VMWRITE at a
 * compile-time slot each. */
#define SHADOW_RW_LIST(F)                                                                                    \
    F(GUEST_RIP, 1) F(GUEST_RSP, 1) F(GUEST_RFLAGS, 1) F(GUEST_CR0, 1) F(GUEST_CR3, 1) F(GUEST_CR4, 1)         \
    F(GUEST_INTERRUPTIBILITY_INFO, 1) F(GUEST_ACTIVITY_STATE, 2) F(GUEST_PENDING_DBG_EXCEPTIONS, 2)           \
    F(GUEST_CS_SELECTOR, 2) F(GUEST_CS_AR_BYTES, 2) F(GUEST_SS_AR_BYTES, 2) F(GUEST_ES_BASE, 2)               \
    F(GUEST_CS_BASE, 2) F(GUEST_SS_BASE, 2) F(GUEST_DS_BASE, 2) F(GUEST_FS_BASE, 2) F(GUEST_GS_BASE, 2)       \
    F(CR0_READ_SHADOW, 0) F(CR4_READ_SHADOW, 0) F(CPU_BASED_VM_EXEC_CONTROL, 0) F(EXCEPTION_BITMAP, 0)       \
    F(TSC_OFFSET, 0) F(VM_ENTRY_INTR_INFO_FIELD, 1) F(VM_ENTRY_EXCEPTION_ERROR_CODE, 0)                      \
    F(VM_ENTRY_INSTRUCTION_LEN, 0) F(VMX_PREEMPTION_TIMER_VALUE, 1)                                          \
    /* KVM as L1 writes these when its stack, address space or FS/GS move (HOST_RSP with                  \
     * every system call where the kernel stack offset is randomized): never an exit. */                   \
    F(HOST_RSP, 0) F(HOST_CR3, 0) F(HOST_FS_SELECTOR, 0) F(HOST_GS_SELECTOR, 0) F(HOST_FS_BASE, 0)           \
    F(HOST_GS_BASE, 0)
#define ENCODING_(e, x) e,
#define RW_ENCODING_(e, x) {e, (x) != 2},
static const struct {
    uint32_t encoding;
    bool write; /* L1's VMWRITE without a VM exit (pulled at entry) */
} shadow_rw[] = {SHADOW_RW_LIST(RW_ENCODING_)};
#undef RW_ENCODING_
/* Feature-dependent fields (vmcs12.h) on KVM's hot path, shadowed only while hv offers their
 * feature: otherwise L1's VMREAD/VMWRITE must fail with error 12, which only hv gives. The
 * CPU has each field then (hv offers a feature only where the CPU has it). */
static const struct {
    uint32_t encoding;
    unsigned feature;
} shadow_feat[] = {
    {TPR_THRESHOLD, VMCS12_FEAT_TPR_SHADOW},
    {GUEST_INTR_STATUS, VMCS12_FEAT_VID},
    {GUEST_PML_INDEX, VMCS12_FEAT_PML}, /* KVM reads it after every exit (its PML flush) */
};
/* The exit information L1 reads (read-only: written into the shadow by hv only, all of it
 * but the VM-instruction error at a reflected exit). */
#define SHADOW_RO_LIST(F)                                                                                    \
    F(VM_INSTRUCTION_ERROR, 0) F(VM_EXIT_REASON, 2) F(EXIT_QUALIFICATION, 2) F(GUEST_LINEAR_ADDRESS, 2)       \
    F(GUEST_PHYSICAL_ADDRESS, 1) F(VM_EXIT_INTR_INFO, 2) F(VM_EXIT_INTR_ERROR_CODE, 2)                       \
    F(IDT_VECTORING_INFO_FIELD, 2) F(IDT_VECTORING_ERROR_CODE, 2) F(VM_EXIT_INSTRUCTION_LEN, 2)             \
    F(VMX_INSTRUCTION_INFO, 2)
/* Not shadowed: IO_RCX, IO_RSI, IO_RDI, IO_RIP (NESTED_EXIT_INFO_RARE_LIST), which a reflected
 * exit leaves in vmcs02 until L1's VMREAD of one exits to hv. */
static const uint32_t shadow_ro[] = {SHADOW_RO_LIST(ENCODING_)};
#undef ENCODING_
/* Exit = 2 exactly for the tracked fields: as many, and each one's bit exists. */
#define COUNT_TRACKED_(e, x) +((x) == 2)
_Static_assert(0 SHADOW_RW_LIST(COUNT_TRACKED_) SHADOW_RO_LIST(COUNT_TRACKED_) == NESTED_NR_TRK,
               "the exit-2 fields are NESTED_EXIT_TRACKED_LIST");
#undef COUNT_TRACKED_
/* The tracked fields by bit: encoding and vmcs12 slot. */
static const struct {
    uint16_t encoding, slot;
} tracked[NESTED_NR_TRK] = {
#define TRACKED_(e) [NESTED_TRK_##e] = {e, VMCS12_TSLOT_##e},
    NESTED_EXIT_TRACKED_LIST(TRACKED_)
#undef TRACKED_
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
        allow(vmread_bm, shadow_rw[i].encoding);
        if (shadow_rw[i].write)
            allow(vmwrite_bm, shadow_rw[i].encoding);
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

/* The feature-dependent fields hv offers, as a prepared list (vmcs12_list_prepare: their
 * slots are not compile-time constants), made again when the offered features change. */
struct shadow_lists {
    unsigned key;           /* the features they were made for; 0: none */
    uint64_t pin, proc, proc2; /* from these capability MSRs */
    unsigned nr_feat, nr_feat_exit;
    uint16_t feat_slot[N(shadow_feat)]; /* shadow_feat[i]'s vmcs12 slot if offered, else 0 (the pull) */
    uint32_t feat[N(shadow_feat)];
    uint32_t feat_exit[N(shadow_feat)]; /* those a reflected exit changes (28.3.3: RVI/SVI) */
};
_Static_assert(sizeof(struct shadow_lists) <= 4096, "the lists fit a page");

static const struct shadow_lists *lists_make(struct nested_vcpu *nv);

/* Inline: the check at every copy, the making (rare) out of line. */
static inline const struct shadow_lists *lists(struct nested_vcpu *nv)
{
    struct shadow_lists *l = nv->n->shadow_lists;
    const struct nested_caps *c = nv->caps;
    /* The features follow from these capability MSRs (nested_vmcs12_features): comparing
     * them is cheaper than computing the features at every copy. */
    if (__builtin_expect(l->key && l->pin == c->true_pinbased && l->proc == c->true_procbased &&
                             l->proc2 == c->procbased2, 1))
        return l;
    return lists_make(nv);
}

static __attribute__((noinline)) const struct shadow_lists *lists_make(struct nested_vcpu *nv)
{
    struct shadow_lists *l = nv->n->shadow_lists;
    const struct nested_caps *c = nv->caps;
    l->pin = c->true_pinbased, l->proc = c->true_procbased, l->proc2 = c->procbased2;
    unsigned feats = nested_vmcs12_features(c), key = 1u << 31;
    for (unsigned i = 0; i < N(shadow_feat); i++)
        key |= feats & shadow_feat[i].feature;
    uint32_t f[N(shadow_feat)], x[N(shadow_feat)];
    unsigned n = 0, nx = 0;
    for (unsigned i = 0; i < N(shadow_feat); i++) {
        l->feat_slot[i] = 0;
        if (!(feats & shadow_feat[i].feature))
            continue;
        l->feat_slot[i] = (uint16_t)vmcs12_feat_slot(shadow_feat[i].encoding, NULL);
        f[n++] = shadow_feat[i].encoding;
        if (shadow_feat[i].encoding == GUEST_INTR_STATUS || shadow_feat[i].encoding == GUEST_PML_INDEX)
            x[nx++] = shadow_feat[i].encoding; /* RVI/SVI (28.3.3); the PML index L2's writes moved */
    }
    l->nr_feat = vmcs12_list_prepare(l->feat, f, n);
    l->nr_feat_exit = vmcs12_list_prepare(l->feat_exit, x, nx);
    l->key = key;
    return l;
}

/* The shadow VMCS current for the copy; vmcs02 or vmcs01 current again after. */
static void shadow_current(struct nested_state *n) { vmptrld(n->shadow_pa); }
static void shadow_done(struct nested_state *n) { vmptrld(n->guest_mode ? n->vmcs02_pa : n->vmcs01_pa); }

static inline __attribute__((always_inline)) void pull_one(struct vmcs12 *c, uint32_t e, unsigned slot,
                                                           unsigned *changes)
{
    uint64_t val = vmcs_read(e);
    if (__builtin_expect(val != c->fields[slot], 0)) {
        /* RFLAGS.VM selects which segment checks apply (SDM 26.3.1.2): its change is checked in full */
        if (e == GUEST_RFLAGS && ((val ^ c->fields[slot]) & X86_EFLAGS_VM))
            *changes |= NESTED_CHG_FULL;
        c->fields[slot] = val; /* a slot L1 scribbled over before VMPTRLD counts as changed once */
        *changes |= nested_fast_field_class(e);
    }
}

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
#define PULL_(e, x)                                                                                         \
    if ((x) != 2) /* L1's VMWRITE of an exit-2 field exits: vmcs12 has it */                               \
        pull_one(c, e, VMCS12_TSLOT_##e, &changes);
    SHADOW_RW_LIST(PULL_)
#undef PULL_
    /* The feature-dependent ones straight-line too: a compile-time encoding, the slot from
     * the lists, no loop. */
    _Static_assert(N(shadow_feat) == 3, "one line each");
#define PULL_FEAT_(i)                                                                                       \
    if (l->feat_slot[i])                                                                                    \
        pull_one(c, shadow_feat[i].encoding, l->feat_slot[i], &changes);
    PULL_FEAT_(0) PULL_FEAT_(1) PULL_FEAT_(2)
#undef PULL_FEAT_
    shadow_done(n);
    return changes;
}

/* A pull outside nested VM-Enter (a VMREAD/VMWRITE exit, VMPTRLD, VMCLEAR, VMXOFF): what it
 * finds changed is in vmcs12 but not in vmcs02, and the next entry's own pull will not see it
 * again, so that entry takes the full path. */
void nested_shadow_pull(struct nested_vcpu *nv)
{
    if (nested_shadow_pull_changes(nv))
        nv->n->fast_ok = false;
}

/* VMWRITE straight from vmcs12's slot (a memory operand: no load before it) */
#define PUSH_(e, x) vmcs_write_mem(e, &c->fields[VMCS12_TSLOT_##e]);
#define PUSH_IF_EXIT_(e, x) if ((x) == 1) vmcs_write_mem(e, &c->fields[VMCS12_TSLOT_##e]);

void nested_shadow_push(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    if (!n->shadowing)
        return;
    const struct shadow_lists *l = lists(nv);
    const struct vmcs12 *c = n->cache;
    shadow_current(n);
    SHADOW_RW_LIST(PUSH_)
    v12_list_write(c, l->feat, l->nr_feat);
    if (nv->shadow_exit_info) {
        SHADOW_RO_LIST(PUSH_)
    }
    n->shadow_dirty = 0;
    shadow_done(n);
}

/* After a reflected exit or a VM-entry failure: only what it changed. */
void nested_shadow_push_exit(struct nested_vcpu *nv)
{
    struct nested_state *n = nv->n;
    if (!n->shadowing)
        return;
    const struct shadow_lists *l = lists(nv);
    const struct vmcs12 *c = n->cache;
    shadow_current(n);
    SHADOW_RW_LIST(PUSH_IF_EXIT_)
    v12_list_write(c, l->feat_exit, l->nr_feat_exit);
    uint32_t dirty = n->shadow_dirty;
    n->shadow_dirty = 0;
    if (nv->shadow_exit_info) {
        SHADOW_RO_LIST(PUSH_IF_EXIT_)
    } else {
        dirty &= NESTED_TRK_GUEST_MASK; /* the exit information is not in the shadow */
    }
    for (; dirty; dirty &= dirty - 1) {
        unsigned i = (unsigned)__builtin_ctz(dirty);
        vmcs_write_mem(tracked[i].encoding, &c->fields[tracked[i].slot]);
    }
    shadow_done(n);
}
#undef PUSH_
#undef PUSH_IF_EXIT_

static bool shadowed(struct nested_vcpu *nv, uint32_t e)
{
    const struct shadow_lists *l = lists(nv);
    for (unsigned i = 0; i < l->nr_feat; i++)
        if (VMCS12_LIST_FIELD(l->feat[i]) == e)
            return true;
    switch (e) {
#define CASE_(enc, x) case enc:
    SHADOW_RW_LIST(CASE_)
        return true;
    SHADOW_RO_LIST(CASE_)
        return nv->shadow_exit_info;
#undef CASE_
    default:
        return false;
    }
}

void nested_shadow_push_field(struct nested_vcpu *nv, uint32_t e)
{
    struct nested_state *n = nv->n;
    if (!n->shadowing || !shadowed(nv, e))
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
