/* L1 memory operands of VMX instructions (nested/gva.c). */
#ifndef NESTED_GVA_H
#define NESTED_GVA_H
#include <stddef.h>
#include "nested.h"

/* 0 and *gpa, or -1 with the #PF error code L1 would see in *pferr. */
int gva_to_gpa(struct nested_vcpu *nv, uint64_t gva, bool write, uint64_t *gpa, uint32_t *pferr);
/* 0, or -1 after injecting #PF into L1 (the instruction must then not complete). */
int guest_read(struct nested_vcpu *nv, uint64_t gva, void *buf, size_t len);
int guest_write(struct nested_vcpu *nv, uint64_t gva, const void *buf, size_t len);
#endif
