/* CPUID: the hardware's answer, plus hv's presence and its vendor leaves. */
#include "../lib/x86.h"
#include "exit.h"
#include "hypercall.h"
#include "version.h"

static void hv_leaf(uint32_t leaf, struct cpuid_regs *r)
{
    *r = (struct cpuid_regs){0, 0, 0, 0};
    if (leaf == HV_CPUID_LEAF_BASE) {
        const char *s = HV_CPUID_SIGNATURE;
        r->eax = HV_CPUID_LEAF_INFO;
        __builtin_memcpy(&r->ebx, s, 4);
        __builtin_memcpy(&r->ecx, s + 4, 4);
        __builtin_memcpy(&r->edx, s + 8, 4);
    } else if (leaf == HV_CPUID_LEAF_INFO) {
        r->eax = HV_VERSION_NUM;
    }
}

/* Applied to CPUID.1:ECX by both paths (the assembly fast path in hv/entry.asm too). */
uint32_t cpuid1_ecx_and = ~(1u << 5); /* VMX only when hv emulates it */
uint32_t cpuid1_ecx_or = 1u << 31;    /* hypervisor present */

void cpuid_set_nested(bool on)
{
    cpuid1_ecx_and = on ? ~0u : ~(1u << 5);
}

void handle_cpuid(struct vcpu *v)
{
    uint64_t *g = v->rc.regs;
    uint32_t leaf = (uint32_t)g[HV_REG_RAX], sub = (uint32_t)g[HV_REG_RCX];
    struct cpuid_regs r;
    if ((leaf & 0xf0000000u) == 0x40000000u)
        hv_leaf(leaf, &r);
    else
        r = cpuid(leaf, sub);
    if (leaf == 1)
        r.ecx = (r.ecx & cpuid1_ecx_and) | cpuid1_ecx_or;
    g[HV_REG_RAX] = r.eax;
    g[HV_REG_RBX] = r.ebx;
    g[HV_REG_RCX] = r.ecx;
    g[HV_REG_RDX] = r.edx;
    reg_skip_instruction(&v->rc);
}
