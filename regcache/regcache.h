/*
 * Per-vCPU guest register cache (modeled on KVM's kvm_cache_regs.h).
 *
 * VMREAD/VMWRITE are slow, and nested guests turn them into exits, so guest
 * state that lives in the VMCS is read at most once per exit and written at
 * most once per entry:
 *
 *   at VM exit     regcache_reset()   forget everything the VMCS holds
 *   in handlers    reg_read/reg_write (VMREAD on first read only)
 *   before entry   regcache_flush()   one VMWRITE per dirty register
 *
 * Bitmap meaning, per register:
 *
 *   avail dirty
 *     0     0    value is only in the VMCS; regs[] is stale
 *     0     1    invalid (reg_mark_dirty always sets avail as well)
 *     1     0    regs[] holds the current value, the VMCS agrees
 *     1     1    regs[] holds the current value, the VMCS must be updated
 *
 * GPRs other than RSP are not in the VMCS: the exit stub saves them into
 * regs[] and reloads them from there, so they are always available and their
 * dirty bits mean nothing.
 */
#ifndef REGCACHE_REGCACHE_H
#define REGCACHE_REGCACHE_H

/*
 * Byte offsets of the GPRs inside struct regcache for the exit stub, in x86
 * encoding order. The stub skips the RSP slot (GUEST_RSP is in the VMCS).
 */
#define REGCACHE_OFF_RAX 0x00
#define REGCACHE_OFF_RCX 0x08
#define REGCACHE_OFF_RDX 0x10
#define REGCACHE_OFF_RBX 0x18
#define REGCACHE_OFF_RSP 0x20
#define REGCACHE_OFF_RBP 0x28
#define REGCACHE_OFF_RSI 0x30
#define REGCACHE_OFF_RDI 0x38
#define REGCACHE_OFF_R8 0x40
#define REGCACHE_OFF_R9 0x48
#define REGCACHE_OFF_R10 0x50
#define REGCACHE_OFF_R11 0x58
#define REGCACHE_OFF_R12 0x60
#define REGCACHE_OFF_R13 0x68
#define REGCACHE_OFF_R14 0x70
#define REGCACHE_OFF_R15 0x78

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../vmx/vmcs.h"

/* GPRs first, in x86 encoding order, so a ModRM/exit-qualification register
 * number can be used directly as an enum hv_reg. */
enum hv_reg {
    HV_REG_RAX, HV_REG_RCX, HV_REG_RDX, HV_REG_RBX,
    HV_REG_RSP, /* VMCS-backed (GUEST_RSP) */
    HV_REG_RBP, HV_REG_RSI, HV_REG_RDI,
    HV_REG_R8, HV_REG_R9, HV_REG_R10, HV_REG_R11,
    HV_REG_R12, HV_REG_R13, HV_REG_R14, HV_REG_R15,
    /* guest state: read-write */
    HV_REG_RIP,
    HV_REG_RFLAGS,
    HV_REG_CR0,      /* raw GUEST_CR0, not what the guest sees */
    HV_REG_CR3,
    HV_REG_CR4,      /* raw GUEST_CR4 */
    HV_REG_PDPTR0, HV_REG_PDPTR1, HV_REG_PDPTR2, HV_REG_PDPTR3,
    HV_REG_INTR_STATE, /* GUEST_INTERRUPTIBILITY_INFO: STI/MOV SS/NMI blocking */
    /* exit information: read-only */
    HV_REG_EXIT_REASON,
    HV_REG_EXIT_QUALIFICATION,
    HV_REG_EXIT_INTR_INFO,
    HV_REG_EXIT_INTR_ERROR_CODE,
    HV_REG_EXIT_INSTR_LEN,
    HV_REG_EXIT_INSTR_INFO,
    HV_REG_GUEST_PHYS_ADDR,
    HV_REG_GUEST_LINEAR_ADDR,
    HV_REG_IDT_VECTORING_INFO,
    HV_REG_IDT_VECTORING_ERROR_CODE,
    HV_NR_REGS
};

#define HV_REG_BIT(r) (1ull << (r))
/* Saved and restored by the exit stub, never by VMREAD/VMWRITE. */
#define HV_REGS_STUB_MASK (((1ull << 16) - 1) & ~HV_REG_BIT(HV_REG_RSP))
#define HV_REGS_EXIT_INFO_MASK \
    (((1ull << HV_NR_REGS) - 1) & ~((1ull << HV_REG_EXIT_REASON) - 1))
#define HV_REGS_VMCS_MASK (((1ull << HV_NR_REGS) - 1) & ~HV_REGS_STUB_MASK)
#define HV_REGS_WRITABLE_MASK (HV_REGS_VMCS_MASK & ~HV_REGS_EXIT_INFO_MASK)

/* regcache_vmcs_field() for registers the VMCS does not hold. */
#define HV_NO_VMCS_FIELD 0xffffffffu

#ifndef X86_EFLAGS_IOPL
#define X86_EFLAGS_IOPL (3ull << 12)
#endif
#ifndef X86_EFLAGS_VM
#define X86_EFLAGS_VM (1ull << 17)
#endif
#ifndef X86_EFLAGS_TF
#define X86_EFLAGS_TF (1ull << 8)
#endif

struct regcache {
    uint64_t regs[HV_NR_REGS]; /* must stay first: the exit stub uses it */
    uint64_t avail;
    uint64_t dirty;
    uint64_t vmreads;          /* VMCS accesses made through the cache */
    uint64_t vmwrites;
    bool unrestricted_guest;
    bool vm86_active;          /* real mode emulated with vm86 (never in hv) */
    /*
     * Set by nested/ while L2 runs: vmcs02.GUEST_CR3 is then rebuilt by the
     * nested code at every nested VM-Enter, and a flush from here would clobber
     * it with a stale L1/L2 value.
     */
    bool guest_cr3_owned_by_nested;
    uint64_t refused_cr3_writes; /* reg_write(CR3) while nested owned it: a bug, counted */
};

_Static_assert(HV_NR_REGS <= 64, "avail/dirty are single 64-bit words");
_Static_assert(offsetof(struct regcache, regs) == 0, "exit stub addresses regs[] at 0");
_Static_assert(offsetof(struct regcache, regs[HV_REG_RAX]) == REGCACHE_OFF_RAX, "RAX");
_Static_assert(offsetof(struct regcache, regs[HV_REG_RCX]) == REGCACHE_OFF_RCX, "RCX");
_Static_assert(offsetof(struct regcache, regs[HV_REG_RDX]) == REGCACHE_OFF_RDX, "RDX");
_Static_assert(offsetof(struct regcache, regs[HV_REG_RBX]) == REGCACHE_OFF_RBX, "RBX");
_Static_assert(offsetof(struct regcache, regs[HV_REG_RSP]) == REGCACHE_OFF_RSP, "RSP");
_Static_assert(offsetof(struct regcache, regs[HV_REG_RBP]) == REGCACHE_OFF_RBP, "RBP");
_Static_assert(offsetof(struct regcache, regs[HV_REG_RSI]) == REGCACHE_OFF_RSI, "RSI");
_Static_assert(offsetof(struct regcache, regs[HV_REG_RDI]) == REGCACHE_OFF_RDI, "RDI");
_Static_assert(offsetof(struct regcache, regs[HV_REG_R8]) == REGCACHE_OFF_R8, "R8");
_Static_assert(offsetof(struct regcache, regs[HV_REG_R9]) == REGCACHE_OFF_R9, "R9");
_Static_assert(offsetof(struct regcache, regs[HV_REG_R10]) == REGCACHE_OFF_R10, "R10");
_Static_assert(offsetof(struct regcache, regs[HV_REG_R11]) == REGCACHE_OFF_R11, "R11");
_Static_assert(offsetof(struct regcache, regs[HV_REG_R12]) == REGCACHE_OFF_R12, "R12");
_Static_assert(offsetof(struct regcache, regs[HV_REG_R13]) == REGCACHE_OFF_R13, "R13");
_Static_assert(offsetof(struct regcache, regs[HV_REG_R14]) == REGCACHE_OFF_R14, "R14");
_Static_assert(offsetof(struct regcache, regs[HV_REG_R15]) == REGCACHE_OFF_R15, "R15");

void regcache_init(struct regcache *rc, bool unrestricted_guest);
/* Out of line: what reset and flush do only when something is left to do (a warning, the
 * VMWRITEs). The inline halves keep the common exit cheap: nothing dirty at the exit, and a
 * handful of registers at the entry. */
void regcache_reset_lost(struct regcache *rc);
void regcache_flush_dirty(struct regcache *rc);
/* Forget cached and dirty values without writing them: the VMCS they were meant for is
 * abandoned (a nested VM entry that fails after vmcs02 was prepared). */
static inline void regcache_discard(struct regcache *rc)
{
    rc->avail = HV_REGS_STUB_MASK;
    rc->dirty = 0;
}
static inline void regcache_reset(struct regcache *rc)
{
    if (__builtin_expect(rc->dirty & HV_REGS_WRITABLE_MASK, 0))
        regcache_reset_lost(rc); /* says so */
    regcache_discard(rc);
}
static inline void regcache_flush(struct regcache *rc)
{
    if (rc->dirty & HV_REGS_VMCS_MASK)
        regcache_flush_dirty(rc);
    rc->dirty = 0;
}
/* After an EPT exit that hv resolved itself, the guest retries the access: an event whose
 * delivery the exit interrupted is delivered again (SDM 27.2.4), and an IRET that faulted
 * after unblocking NMIs (exit qualification bit 12) gets its NMI blocking back (28.2.3). */
void regcache_redeliver_event(struct regcache *rc, bool nmi_unblocked_by_iret);
/* Replace a cached exit-information value (read-only in the VMCS) for the rest of this
 * exit: what hv knows the CPU should have stored (nested/apicv.c). */
void regcache_set_exit_info(struct regcache *rc, enum hv_reg reg, uint64_t val);
/* VMREAD reg into regs[] and mark it available. */
void regcache_cache_reg(struct regcache *rc, enum hv_reg reg);
uint32_t regcache_vmcs_field(enum hv_reg reg);
/* Logs once per fn; the bitmap helpers call it instead of indexing out of range. */
void regcache_warn_bad_index(int idx, const char *fn);
/* Forget which one-time warnings were already printed (tests). */
void regcache_warn_reset(void);

static inline bool reg_index_ok(enum hv_reg reg, const char *fn)
{
    if ((unsigned int)reg < HV_NR_REGS)
        return true;
    regcache_warn_bad_index((int)reg, fn);
    return false;
}

static inline bool reg_is_available(const struct regcache *rc, enum hv_reg reg)
{
    if (!reg_index_ok(reg, __func__))
        return false;
    return rc->avail & HV_REG_BIT(reg);
}

static inline bool reg_is_dirty(const struct regcache *rc, enum hv_reg reg)
{
    if (!reg_index_ok(reg, __func__))
        return false;
    return rc->dirty & HV_REG_BIT(reg);
}

static inline void reg_mark_available(struct regcache *rc, enum hv_reg reg)
{
    if (!reg_index_ok(reg, __func__))
        return;
    rc->avail |= HV_REG_BIT(reg);
}

static inline void reg_mark_dirty(struct regcache *rc, enum hv_reg reg)
{
    if (!reg_index_ok(reg, __func__))
        return;
    rc->avail |= HV_REG_BIT(reg);
    rc->dirty |= HV_REG_BIT(reg);
}

/* The VMCS field of each register (HV_NO_VMCS_FIELD for the stub-saved GPRs). Visible to
 * every caller, so that reg_read of a constant register folds to one VMREAD of a constant
 * field (an extern table cost a load and a compare at each read). */
static const uint32_t regcache_fields[HV_NR_REGS] = {
    [HV_REG_RAX ... HV_REG_RBX] = HV_NO_VMCS_FIELD, /* stub-saved GPRs */
    [HV_REG_RSP] = GUEST_RSP,
    [HV_REG_RBP ... HV_REG_R15] = HV_NO_VMCS_FIELD,
    [HV_REG_RIP] = GUEST_RIP,
    [HV_REG_RFLAGS] = GUEST_RFLAGS,
    [HV_REG_CR0] = GUEST_CR0,
    [HV_REG_CR3] = GUEST_CR3,
    [HV_REG_CR4] = GUEST_CR4,
    [HV_REG_PDPTR0] = GUEST_PDPTR0,
    [HV_REG_PDPTR1] = GUEST_PDPTR1,
    [HV_REG_PDPTR2] = GUEST_PDPTR2,
    [HV_REG_PDPTR3] = GUEST_PDPTR3,
    [HV_REG_INTR_STATE] = GUEST_INTERRUPTIBILITY_INFO,
    [HV_REG_EXIT_REASON] = VM_EXIT_REASON,
    [HV_REG_EXIT_QUALIFICATION] = EXIT_QUALIFICATION,
    [HV_REG_EXIT_INTR_INFO] = VM_EXIT_INTR_INFO,
    [HV_REG_EXIT_INTR_ERROR_CODE] = VM_EXIT_INTR_ERROR_CODE,
    [HV_REG_EXIT_INSTR_LEN] = VM_EXIT_INSTRUCTION_LEN,
    [HV_REG_EXIT_INSTR_INFO] = VMX_INSTRUCTION_INFO,
    [HV_REG_GUEST_PHYS_ADDR] = GUEST_PHYSICAL_ADDRESS,
    [HV_REG_GUEST_LINEAR_ADDR] = GUEST_LINEAR_ADDRESS,
    [HV_REG_IDT_VECTORING_INFO] = IDT_VECTORING_INFO_FIELD,
    [HV_REG_IDT_VECTORING_ERROR_CODE] = IDT_VECTORING_ERROR_CODE,
};

static inline uint64_t reg_read(struct regcache *rc, enum hv_reg reg)
{
    if (!reg_index_ok(reg, __func__))
        return 0;
    if (!(rc->avail & HV_REG_BIT(reg))) {
        if (__builtin_expect(regcache_fields[reg] == HV_NO_VMCS_FIELD, 0)) {
            regcache_cache_reg(rc, reg); /* says so */
        } else { /* inline: the exit paths read a handful of registers each */
            rc->regs[reg] = vmcs_read(regcache_fields[reg]);
            rc->vmreads++;
            rc->avail |= HV_REG_BIT(reg);
        }
    }
    return rc->regs[reg];
}

/* A register's value for a path that discards the cache right after (a reflected exit leaves
 * vmcs02): the cached value, else a VMREAD whose value is not kept (no bookkeeping to pay). */
static inline uint64_t reg_peek(struct regcache *rc, enum hv_reg reg)
{
    if (!reg_index_ok(reg, __func__))
        return 0;
    if ((rc->avail & HV_REG_BIT(reg)) || __builtin_expect(regcache_fields[reg] == HV_NO_VMCS_FIELD, 0))
        return rc->regs[reg];
    rc->vmreads++;
    return vmcs_read(regcache_fields[reg]);
}

/* CR3 and bad indexes need special handling: out of line. */
void reg_write_slow(struct regcache *rc, enum hv_reg reg, uint64_t val);
static inline void reg_write(struct regcache *rc, enum hv_reg reg, uint64_t val)
{
    if (reg == HV_REG_CR3 || (unsigned int)reg >= HV_NR_REGS) {
        reg_write_slow(rc, reg, val);
        return;
    }
    rc->regs[reg] = val;
    rc->avail |= HV_REG_BIT(reg);
    rc->dirty |= HV_REG_BIT(reg);
}

/* Write a register into the VMCS now, not at the next flush, and mark it clean: for a path
 * that sets a known set of registers at once (a reflected exit's host state), which the
 * flush would test one by one. CR3 while nested owns it goes the refused way (reg_write_slow). */
static inline void reg_write_now(struct regcache *rc, enum hv_reg reg, uint64_t val)
{
    if ((unsigned int)reg >= HV_NR_REGS || regcache_fields[reg] == HV_NO_VMCS_FIELD ||
        (HV_REG_BIT(reg) & HV_REGS_EXIT_INFO_MASK) || (reg == HV_REG_CR3 && rc->guest_cr3_owned_by_nested)) {
        reg_write(rc, reg, val);
        return;
    }
    rc->regs[reg] = val;
    vmcs_write(regcache_fields[reg], val);
    rc->vmwrites++;
    rc->avail |= HV_REG_BIT(reg);
    rc->dirty &= ~HV_REG_BIT(reg);
}

static inline uint64_t reg_rip(struct regcache *rc) { return reg_read(rc, HV_REG_RIP); }
static inline void reg_set_rip(struct regcache *rc, uint64_t v) { reg_write(rc, HV_REG_RIP, v); }
static inline uint64_t reg_rsp(struct regcache *rc) { return reg_read(rc, HV_REG_RSP); }
static inline void reg_set_rsp(struct regcache *rc, uint64_t v) { reg_write(rc, HV_REG_RSP, v); }
static inline uint64_t reg_cr0(struct regcache *rc) { return reg_read(rc, HV_REG_CR0); }
static inline uint64_t reg_cr3(struct regcache *rc) { return reg_read(rc, HV_REG_CR3); }
static inline void reg_set_cr3(struct regcache *rc, uint64_t v) { reg_write(rc, HV_REG_CR3, v); }
static inline uint64_t reg_cr4(struct regcache *rc) { return reg_read(rc, HV_REG_CR4); }
static inline uint64_t reg_exit_qual(struct regcache *rc)
{
    return reg_read(rc, HV_REG_EXIT_QUALIFICATION);
}

/* Guest-visible CR0/CR4: host-owned bits (set in mask) come from the read shadow. */
static inline uint64_t reg_read_cr0_shadowed(struct regcache *rc, uint64_t mask, uint64_t shadow)
{
    return (reg_cr0(rc) & ~mask) | (shadow & mask);
}
static inline uint64_t reg_read_cr4_shadowed(struct regcache *rc, uint64_t mask, uint64_t shadow)
{
    return (reg_cr4(rc) & ~mask) | (shadow & mask);
}

/*
 * With unrestricted guest (always the case in hv) GUEST_RFLAGS is exactly the
 * guest's RFLAGS. Without it, real mode runs as vm86 with VM and IOPL forced on,
 * which the guest must not see; like KVM's rmode path, hide them.
 */
static inline uint64_t reg_rflags(struct regcache *rc)
{
    uint64_t v = reg_read(rc, HV_REG_RFLAGS);

    if (!rc->unrestricted_guest && rc->vm86_active)
        v &= ~(X86_EFLAGS_VM | X86_EFLAGS_IOPL);
    return v;
}
static inline void reg_set_rflags(struct regcache *rc, uint64_t v)
{
    if (!rc->unrestricted_guest && rc->vm86_active)
        v |= X86_EFLAGS_VM | X86_EFLAGS_IOPL;
    reg_write(rc, HV_REG_RFLAGS, v);
}

/* Blocking by STI and by MOV SS (SDM 25.4.2, Table 25-3): they last for one instruction. */
#define HV_INTR_SHADOW_MASK 3ull

void reg_single_step_trap(struct regcache *rc);

/* Step over the instruction that caused the exit (of len bytes, when the exit gives no
 * length). As on the CPU, completing it ends any blocking by STI or MOV SS that it ran
 * under, and with RFLAGS.TF it raises the single-step trap (KVM: skip_emulated_instruction). */
static inline void reg_advance_rip(struct regcache *rc, uint64_t len)
{
    uint64_t intr = reg_read(rc, HV_REG_INTR_STATE);

    reg_set_rip(rc, reg_rip(rc) + len);
    if (intr & HV_INTR_SHADOW_MASK)
        reg_write(rc, HV_REG_INTR_STATE, intr & ~HV_INTR_SHADOW_MASK);
    if (reg_read(rc, HV_REG_RFLAGS) & X86_EFLAGS_TF)
        reg_single_step_trap(rc);
}
static inline void reg_skip_instruction(struct regcache *rc)
{
    reg_advance_rip(rc, reg_read(rc, HV_REG_EXIT_INSTR_LEN));
}
#endif /* __ASSEMBLER__ */
#endif
