#include "regcache.h"
#include "lib/log.h"
#include "vmx/vmcs.h"
#include "vmx/vmx_bits.h"

/*
 * One-time warnings, keyed by a string (helper name or condition). A bug in a
 * hot path would otherwise flood the serial log once per exit. Two CPUs racing
 * on the same new key can at worst print it twice, which is harmless.
 */
#define WARN_KEYS 32
static const char *warned[WARN_KEYS];
static bool warned_overflow;

static bool same_str(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* True the first time key is seen. */
static bool first_time(const char *key)
{
    for (int i = 0; i < WARN_KEYS; i++) {
        if (!warned[i]) {
            warned[i] = key;
            return true;
        }
        if (warned[i] == key || same_str(warned[i], key))
            return false;
    }
    /* Table full: say so once rather than repeat every warning forever. */
    if (warned_overflow)
        return false;
    warned_overflow = true;
    return true;
}

void regcache_warn_reset(void)
{
    for (int i = 0; i < WARN_KEYS; i++)
        warned[i] = NULL;
    warned_overflow = false;
}

void regcache_warn_bad_index(int idx, const char *fn)
{
    if (first_time(fn))
        log_warn("regcache: bad register index %d in %s", idx, fn);
}

void regcache_init(struct regcache *rc, bool unrestricted_guest)
{
    *rc = (struct regcache){ .unrestricted_guest = unrestricted_guest };
    rc->avail = HV_REGS_STUB_MASK;
}

uint32_t regcache_vmcs_field(enum hv_reg reg)
{
    return (unsigned)reg < HV_NR_REGS ? regcache_fields[reg] : HV_NO_VMCS_FIELD; /* bad indexes too */
}

void regcache_cache_reg(struct regcache *rc, enum hv_reg reg)
{
    uint32_t field;

    if (!reg_index_ok(reg, __func__))
        return;
    field = regcache_fields[reg];
    if (field == HV_NO_VMCS_FIELD) {
        /* A stub-saved GPR lost its avail bit: regs[] is still the truth. */
        if (first_time("regcache: stub GPR"))
            log_warn("regcache: GPR %d was not available", (int)reg);
    } else {
        rc->regs[reg] = vmcs_read(field);
        rc->vmreads++;
    }
    rc->avail |= HV_REG_BIT(reg);
}

void reg_write_slow(struct regcache *rc, enum hv_reg reg, uint64_t val)
{
    if (!reg_index_ok(reg, "reg_write"))
        return;
    if (reg == HV_REG_CR3) {
        /* While L2 runs, vmcs02.GUEST_CR3 is written by nested/ only (from vmcs12 at every
         * nested VM-Enter). A CR3 write here would be a value that reaches neither vmcs02
         * nor vmcs12: refused, loudly, and the cache keeps agreeing with the VMCS. */
        if (rc->guest_cr3_owned_by_nested) {
            rc->refused_cr3_writes++;
            if (first_time("regcache: nested CR3"))
                log_err("regcache: CR3 write (%#llx) refused: nested owns GUEST_CR3 while L2 runs",
                        (unsigned long long)val);
            return;
        }
        /* Rewriting the value the VMCS already has must not cost a VMWRITE. */
        if ((rc->avail & HV_REG_BIT(reg)) && rc->regs[reg] == val)
            return;
    }
    rc->regs[reg] = val;
    reg_mark_dirty(rc, reg);
}

void regcache_set_exit_info(struct regcache *rc, enum hv_reg reg, uint64_t val)
{
    if (!reg_index_ok(reg, __func__) || !(HV_REG_BIT(reg) & HV_REGS_EXIT_INFO_MASK))
        return;
    rc->regs[reg] = val;
    rc->avail |= HV_REG_BIT(reg); /* never dirty: regcache_reset forgets it at the next exit */
}

void regcache_reset_lost(struct regcache *rc)
{
    uint64_t lost = rc->dirty & HV_REGS_WRITABLE_MASK;

    if (lost && first_time("regcache: lost dirty"))
        log_warn("regcache: reset drops unflushed registers %#llx", (unsigned long long)lost);
}

/* One test and, for a dirty register, one VMWRITE each, straight-line (a loop over the bitmap
 * cost about 10 instructions per register; the exit and entry paths flush 6 or 7). */
void regcache_flush_dirty(struct regcache *rc)
{
    uint64_t todo = rc->dirty & HV_REGS_VMCS_MASK, n = 0;

    if ((todo & HV_REGS_EXIT_INFO_MASK) && first_time("regcache: read-only dirty"))
        log_warn("regcache: read-only exit info marked dirty %#llx, not written",
                 (unsigned long long)(todo & HV_REGS_EXIT_INFO_MASK));
    if (rc->guest_cr3_owned_by_nested)
        todo &= ~HV_REG_BIT(HV_REG_CR3);
#define FLUSH(r)                                              \
    if (todo & HV_REG_BIT(r)) { /* from regs[]: a memory operand */ \
        vmcs_write_mem(regcache_fields[r], &rc->regs[r]);     \
        n++;                                                  \
    }
    FLUSH(HV_REG_RSP)
    FLUSH(HV_REG_RIP)
    FLUSH(HV_REG_RFLAGS)
    FLUSH(HV_REG_CR0)
    FLUSH(HV_REG_CR3)
    FLUSH(HV_REG_CR4)
    if (todo & (HV_REG_BIT(HV_REG_PDPTR0) | HV_REG_BIT(HV_REG_PDPTR1) | HV_REG_BIT(HV_REG_PDPTR2) |
                HV_REG_BIT(HV_REG_PDPTR3))) {
        FLUSH(HV_REG_PDPTR0)
        FLUSH(HV_REG_PDPTR1)
        FLUSH(HV_REG_PDPTR2)
        FLUSH(HV_REG_PDPTR3)
    }
    FLUSH(HV_REG_INTR_STATE)
#undef FLUSH
    _Static_assert(HV_REGS_WRITABLE_MASK ==
                       (HV_REG_BIT(HV_REG_RSP) | HV_REG_BIT(HV_REG_RIP) | HV_REG_BIT(HV_REG_RFLAGS) |
                        HV_REG_BIT(HV_REG_CR0) | HV_REG_BIT(HV_REG_CR3) | HV_REG_BIT(HV_REG_CR4) |
                        HV_REG_BIT(HV_REG_PDPTR0) | HV_REG_BIT(HV_REG_PDPTR1) | HV_REG_BIT(HV_REG_PDPTR2) |
                        HV_REG_BIT(HV_REG_PDPTR3) | HV_REG_BIT(HV_REG_INTR_STATE)),
                   "regcache_flush_dirty writes every writable register");
    rc->vmwrites += n;
    rc->dirty = 0;
}

void regcache_redeliver_event(struct regcache *rc, bool nmi_unblocked_by_iret)
{
    uint32_t idt = (uint32_t)reg_read(rc, HV_REG_IDT_VECTORING_INFO);
    if (idt & (1u << 31)) { /* valid */
        vmcs_write(VM_ENTRY_INTR_INFO_FIELD, idt & ~(1u << 12)); /* bit 12 is undefined on entry */
        rc->vmwrites++;
        if (idt & (1u << 11)) { /* deliver error code */
            vmcs_write(VM_ENTRY_EXCEPTION_ERROR_CODE, reg_read(rc, HV_REG_IDT_VECTORING_ERROR_CODE));
            rc->vmwrites++;
        }
        vmcs_write(VM_ENTRY_INSTRUCTION_LEN, reg_read(rc, HV_REG_EXIT_INSTR_LEN));
        rc->vmwrites++;
    } else if (nmi_unblocked_by_iret) {
        reg_write(rc, HV_REG_INTR_STATE, reg_read(rc, HV_REG_INTR_STATE) | (1u << 3));
    }
}

/* The completed instruction's single-step trap (RFLAGS.TF; SDM 18.3.1.4): the CPU left it to
 * hv with the exit, so it goes into the pending debug exceptions (BS, bit 14), which the CPU
 * delivers as a #DB trap right after VM entry (26.7.3). With DEBUGCTL.BTF, TF traps only on
 * branches, and no instruction hv completes is one. */
void reg_single_step_trap(struct regcache *rc)
{
    rc->vmreads++;
    if (vmcs_read(GUEST_IA32_DEBUGCTL) & (1ull << 1))
        return;
    vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, vmcs_read(GUEST_PENDING_DBG_EXCEPTIONS) | PENDING_DBG_BS);
    rc->vmreads++;
    rc->vmwrites++;
}
