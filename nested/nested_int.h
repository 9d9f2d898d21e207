/* Shared by the files of nested/ only. */
#ifndef NESTED_INT_H
#define NESTED_INT_H
#include "nested.h"

extern const uint32_t nested_guest_fields[]; /* guest state copied both ways (vmenter.c) */
extern const unsigned nested_nr_guest_fields;
void nested_vmx_fail(struct nested_vcpu *nv, uint32_t err);
unsigned nested_l1_cpl(void);
void nested_vmcs12_writeback(struct nested_vcpu *nv);
void nested_vmenter(struct nested_vcpu *nv, bool launch);
/* Build vmcs02 (current) from vmcs12 and hv's needs. */
void nested_prepare_vmcs02(struct nested_vcpu *nv);
/* VM-entry failure after the VMfail checks (SDM 27.8): L1 resumes at its host state. */
void nested_entry_fail(struct nested_vcpu *nv, uint32_t reason, uint64_t qual);
/* The MSR lists of vmcs12 (SDM 27.4, 28.4, 28.6): 0, or the 1-based index that failed. */
uint32_t nested_load_msr_list(struct nested_vcpu *nv, uint64_t addr, uint32_t count, bool entry);
void nested_store_msr_list(struct nested_vcpu *nv, uint64_t addr, uint32_t count);
/* vmcs12's host state into vmcs01's guest state (SDM 28.5). vmcs01 must be current. */
void nested_load_l1_host_state(struct nested_vcpu *nv);
void nested_save_host_fields(struct nested_vcpu *nv);
void nested_log_check(void); /* log the vmcs12 check that failed */
/* VMCS shadowing (nested/shadow.c): no-ops while it is off */
int nested_shadow_init(struct nested_vcpu *nv);
void nested_shadow_pull(struct nested_vcpu *nv);
void nested_shadow_push(struct nested_vcpu *nv);
void nested_shadow_push_exit(struct nested_vcpu *nv);
void nested_shadow_push_field(struct nested_vcpu *nv, uint32_t encoding);
void nested_shadow_activate(struct nested_vcpu *nv);
void nested_shadow_deactivate(struct nested_vcpu *nv);

static inline uint64_t v12(const struct nested_vcpu *nv, uint32_t f) { return vmcs12_get(nv->n->cache, f); }
static inline void v12_set(struct nested_vcpu *nv, uint32_t f, uint64_t x) { vmcs12_set(nv->n->cache, f, x); }
#endif
