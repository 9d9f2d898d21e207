/* VM-exit entry from the assembly stub, the dispatch table, and fatal exits. */
#include "exit.h"
#include "../lib/log.h"
#include "../lib/prof.h"
#include "../vmx/vmx_bits.h"
#include "fatal.h"
#include "host.h"
#include "vmcs01.h"

static const exit_handler_fn handlers[EXIT_REASON_MAX + 1] = {
    [EXIT_REASON_EXCEPTION_NMI] = handle_exception_nmi,
    [EXIT_REASON_TRIPLE_FAULT] = handle_triple_fault,
    [EXIT_REASON_INIT_SIGNAL] = handle_init,
    [EXIT_REASON_SIPI_SIGNAL] = handle_sipi,
    [EXIT_REASON_NMI_WINDOW] = handle_nmi_window,
    [EXIT_REASON_CPUID] = handle_cpuid,
    [EXIT_REASON_GETSEC] = handle_ud,
    [EXIT_REASON_INVD] = handle_invd,
    [EXIT_REASON_VMCALL] = handle_vmcall,
    [EXIT_REASON_VMCLEAR] = handle_vmx_insn,
    [EXIT_REASON_VMLAUNCH] = handle_vmx_insn,
    [EXIT_REASON_VMPTRLD] = handle_vmx_insn,
    [EXIT_REASON_VMPTRST] = handle_vmx_insn,
    [EXIT_REASON_VMREAD] = handle_vmx_insn,
    [EXIT_REASON_VMRESUME] = handle_vmresume,
    [EXIT_REASON_VMWRITE] = handle_vmx_insn,
    [EXIT_REASON_VMXOFF] = handle_vmx_insn,
    [EXIT_REASON_VMXON] = handle_vmx_insn,
    [EXIT_REASON_INVEPT] = handle_vmx_insn,
    [EXIT_REASON_INVVPID] = handle_vmx_insn,
    [EXIT_REASON_VMFUNC] = handle_ud,
    [EXIT_REASON_CR_ACCESS] = handle_cr_access,
    [EXIT_REASON_IO_INSTRUCTION] = handle_io,
    [EXIT_REASON_MSR_READ] = handle_rdmsr,
    [EXIT_REASON_MSR_WRITE] = handle_wrmsr,
    [EXIT_REASON_MONITOR_TRAP_FLAG] = handle_mtf,
    [EXIT_REASON_EPT_VIOLATION] = handle_ept_violation,
    [EXIT_REASON_XSETBV] = handle_xsetbv,
};

exit_handler_fn exit_handler_for(uint32_t r) { return r <= EXIT_REASON_MAX ? handlers[r] : NULL; }

const char *exit_reason_name(uint32_t r)
{
    static const char *const n[EXIT_REASON_MAX + 1] = {
        [0] = "exception/NMI", [1] = "external interrupt", [2] = "triple fault", [3] = "INIT", [4] = "SIPI",
        [7] = "interrupt window", [8] = "NMI window", [9] = "task switch", [10] = "CPUID", [11] = "GETSEC",
        [12] = "HLT", [13] = "INVD", [14] = "INVLPG", [16] = "RDTSC", [18] = "VMCALL", [19] = "VMCLEAR",
        [20] = "VMLAUNCH", [21] = "VMPTRLD", [22] = "VMPTRST", [23] = "VMREAD", [24] = "VMRESUME",
        [25] = "VMWRITE", [26] = "VMXOFF", [27] = "VMXON", [28] = "CR access", [29] = "DR access",
        [30] = "I/O", [31] = "RDMSR", [32] = "WRMSR", [33] = "invalid guest state", [34] = "MSR loading",
        [36] = "MWAIT", [37] = "monitor trap flag", [39] = "MONITOR", [40] = "PAUSE", [41] = "machine-check event",
        [43] = "TPR below threshold", [44] = "APIC access", [45] = "virtualized EOI", [46] = "GDTR/IDTR access",
        [47] = "LDTR/TR access", [48] = "EPT violation",
        [49] = "EPT misconfiguration", [50] = "INVEPT", [51] = "RDTSCP", [52] = "preemption timer",
        [53] = "INVVPID", [54] = "WBINVD", [55] = "XSETBV", [56] = "APIC write", [57] = "RDRAND", [58] = "INVPCID",
        [59] = "VMFUNC", [61] = "RDSEED", [62] = "PML full", [63] = "XSAVES", [64] = "XRSTORS",
    };
    return r <= EXIT_REASON_MAX && n[r] ? n[r] : "?";
}

unsigned guest_cpl(struct vcpu *v) { return (vm_read(v, GUEST_SS_AR_BYTES) >> 5) & 3; }

void inject_exception(struct vcpu *v, uint8_t vector, bool has_error, uint32_t error)
{
    /* L2's exception, raised by hv for an instruction it emulates: L1 intercepts it as the
     * CPU would have let it (SDM 25.2). */
    if (v->nested.guest_mode && nested_l1_wants_exception(&v->nv, vector, error)) {
        nested_reflect_exception(&v->nv, vector, has_error, error, 0);
        return;
    }
    vm_write(v, VM_ENTRY_INTR_INFO_FIELD,
             INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | vector | (has_error ? INTR_INFO_DELIVER_CODE : 0));
    if (has_error)
        vm_write(v, VM_ENTRY_EXCEPTION_ERROR_CODE, error);
}

/*
 * NMIs. vmcs01 and vmcs02 run with "NMI exiting" and "virtual NMIs": every NMI comes to
 * hv, as an NMI exit or in root mode (host_exception), and is held in nmi_pending (one, as
 * the CPU latches one). It goes to whoever owns it as soon as that one can take it: to L1
 * as an NMI VM exit when L2 runs and L1 set "NMI exiting", else to the running guest by
 * injection. Until then hv asks for the NMI window (its own NMI-window exiting).
 */
static bool nmi_blocked(struct vcpu *v, bool exit_to_l1)
{
    if (vm_read(v, VM_ENTRY_INTR_INFO_FIELD) & INTR_INFO_VALID)
        return true; /* an event is being injected: it goes first */
    /* A single-step trap pending (hv completed an instruction under TF): an injection would
     * lose it (SDM 26.7.3), and it goes before an NMI (a trap on the previous instruction). */
    if (vm_read(v, GUEST_PENDING_DBG_EXCEPTIONS) & PENDING_DBG_BS)
        return true;
    uint64_t block = GUEST_INTR_STI | GUEST_INTR_MOV_SS | GUEST_INTR_NMI;
    /* With L1's virtual NMIs, L2's NMI blocking is virtual: the NMI still exits to L1. */
    if (exit_to_l1 && nested_l1_virtual_nmis(&v->nv))
        block &= ~(uint64_t)GUEST_INTR_NMI;
    return reg_read(&v->rc, HV_REG_INTR_STATE) & block;
}

/* An NMI exit to L1 waits only for STI/MOV SS blocking or an injection (nmi_blocked), but
 * with L2 virtual-NMI blocked (now, or by the NMI being injected) vmcs02's NMI window stays
 * shut until L2's IRET: hv takes the next instruction boundary instead, with MTF (a pending
 * MTF exit follows an injected event's delivery, SDM 25.5.2). */
static bool nmi_needs_mtf(struct vcpu *v, bool to_l1)
{
    if (!to_l1 || !nested_l1_virtual_nmis(&v->nv) ||
        !((uint32_t)(hv.msrs.procbased >> 32) & CPU_BASED_MONITOR_TRAP_FLAG))
        return false;
    uint32_t inj = (uint32_t)vm_read(v, VM_ENTRY_INTR_INFO_FIELD);
    return (reg_read(&v->rc, HV_REG_INTR_STATE) & GUEST_INTR_NMI) ||
           (inj & (INTR_INFO_VALID | INTR_INFO_TYPE_MASK)) == (INTR_INFO_VALID | INTR_TYPE_NMI);
}

void deliver_pending_nmi(struct vcpu *v)
{
    v->nmi_arrived = false; /* every held NMI is considered now */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (!v->nmi_pending || vm_read(v, GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_WAIT_SIPI)
        return; /* wait-for-SIPI blocks NMIs: it stays held */
    bool to_l1 = v->nested.guest_mode && nested_exit_on_nmi(&v->nv);
    if (to_l1 && v->nested.l2_nmi_blocked)
        return; /* until the nested VM exit, after which L1 takes it (SDM 26.6.1) */
    if (nmi_blocked(v, to_l1)) {
        uint32_t want = nmi_needs_mtf(v, to_l1) ? CPU_BASED_MONITOR_TRAP_FLAG : CPU_BASED_NMI_WINDOW_EXITING;
        if (vmx_virtual_nmi_pin(hv.msrs.pinbased)) /* else: at the next exit */
            vm_write(v, CPU_BASED_VM_EXEC_CONTROL, vm_read(v, CPU_BASED_VM_EXEC_CONTROL) | want);
        return;
    }
    v->nmi_pending = false;
    if (to_l1) {
        v->stats.nmis_to_l1++;
        nested_reflect_nmi(&v->nv);
        return;
    }
    v->stats.nmis_injected++;
    vm_write(v, VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
}

/* hv's NMI window (one L1 asked for is reflected before this). */
void handle_nmi_window(struct vcpu *v)
{
    vm_write(v, CPU_BASED_VM_EXEC_CONTROL, vm_read(v, CPU_BASED_VM_EXEC_CONTROL) & ~CPU_BASED_NMI_WINDOW_EXITING);
}

/* Exit reason 0 that hv keeps: an NMI (hv's exception bitmaps are empty; L2's exceptions that
 * L1's bitmap selects are reflected before this). */
void handle_exception_nmi(struct vcpu *v)
{
    uint32_t info = (uint32_t)reg_read(&v->rc, HV_REG_EXIT_INTR_INFO);
    if ((info & (INTR_INFO_VALID | INTR_INFO_TYPE_MASK)) != (INTR_INFO_VALID | INTR_TYPE_NMI))
        exit_fatal(v, "exception exit hv did not ask for");
    v->nmi_pending = true;
    v->stats.nmis++;
    /* An NMI arrives between instructions, but should an event's delivery have been cut
     * short, it is delivered again first (SDM 27.2.4). */
    regcache_redeliver_event(&v->rc, false);
}

/* The exit stub found an NMI held after vmexit_handler's last look (hv/entry.asm). */
struct vcpu *vmexit_nmi_late(struct vcpu *v)
{
    /* The exit may have been the stub's CPUID fast path, which leaves the cache as an earlier
     * exit left it: nothing cached may be trusted. */
    regcache_reset(&v->rc);
    deliver_pending_nmi(v);
    regcache_flush(&v->rc);
    return v;
}

/* The end of every exit: deliver_pending_nmi, inline for the common case of no NMI held
 * (nmi_arrived is cleared before nmi_pending is looked at, as there: an NMI that comes after
 * the look is the exit stub's), then the register cache's VMWRITEs. */
static inline struct vcpu *exit_done(struct vcpu *v)
{
    v->nmi_arrived = false;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (__builtin_expect(v->nmi_pending, 0))
        deliver_pending_nmi(v);
    regcache_flush(&v->rc);
    PROF("exit: NMI check, cache flush");
    return v;
}

/* A guest triple fault is the guest's shutdown, not a failure of hv: the platform resets,
 * as a chipset does at shutdown (OSes reboot this way as a last resort). */
void handle_triple_fault(struct vcpu *v)
{
    log_err("cpu%u: guest triple fault: resetting the platform", v->id);
    vmcs01_dump_guest(v);
    platform_reset("guest triple fault");
}

struct vcpu *vmexit_handler(struct vcpu *v)
{
    PROF_BEGIN();
    fatal_check_stop(v); /* another CPU hit a fatal error (its INIT IPI brought this exit) */
    v->launch_pending = false;
    if (hv.dma_poll)
        hv.dma_poll(); /* rate-limited: no interrupt tells hv of a DMA fault */
    regcache_reset(&v->rc);
    uint32_t reason = (uint32_t)reg_read(&v->rc, HV_REG_EXIT_REASON);
    uint32_t basic = reason & 0xffff;
    v->stats.total++;
    if (basic <= EXIT_REASON_MAX)
        v->stats.by_reason[basic]++;
    /* hv's steps (an I/O instruction run natively, a dropped write) end first, whatever the
     * exit: nothing of them may outlive it, nor reach L1 (both calls return false at once
     * without a step: tested here, as most exits have none) */
    if (__builtin_expect(v->io_step || v->step.active, 0)) {
        bool step_done = io_step_exit(v, basic);
        step_done |= hidden_step_exit(v, basic);
        if (step_done)
            return exit_done(v);
    }
    PROF("exit: handler to dispatch");
    if (v->nested.guest_mode) {
        v->stats.l2_exits++;
        if (basic == EXIT_REASON_INIT_SIGNAL) /* L1's INIT exit: a SIPI latched for it is not hv's to use */
            __atomic_store_n(&v->sipi, 0, __ATOMIC_RELEASE);
        if (reason & VMX_EXIT_REASON_ENTRY_FAIL)
            log_err("cpu%u: hv built a vmcs02 the CPU refused (exit reason 0x%x): L1's VM entry fails", v->id, reason);
        else
            nested_vmcs02_accepted(&v->nested);
        if (nested_l2_exit(&v->nv, reason))
            return exit_done(v); /* an NMI held for L2 or L1 is L1's if L1 runs now */
    }
    if (reason & VMX_EXIT_REASON_ENTRY_FAIL) {
        v->stats.entry_failures++;
        exit_fatal(v, "VM entry failed");
    }
    exit_handler_fn fn = exit_handler_for(basic);
    if (!fn)
        exit_fatal(v, "unexpected VM exit");
    fn(v);
    return exit_done(v);
}

struct vcpu *vmresume_failed(struct vcpu *v)
{
    uint32_t err = (uint32_t)vmcs_read(VM_INSTRUCTION_ERROR);
    io_step_end(v); /* no exit will end them: nothing of hv's may stay writable or unintercepted */
    hidden_step_end(v);
    if (v->nested.guest_mode) {
        /* vmcs12 passed hv's checks but the CPU refused vmcs02: L1's VMLAUNCH/VMRESUME
         * fails as the CPU would have failed it, and hv keeps running. */
        log_err("cpu%u: the CPU refused vmcs02 (VM-instruction error %u): L1's VM entry fails instead", v->id, err);
        nested_hw_refused(&v->nv, err);
        v->launch_pending = false;
        deliver_pending_nmi(v); /* a window asked for in the abandoned vmcs02 is gone */
        regcache_flush(&v->rc);
        return v;
    }
    log_err("cpu%u: VM entry failed, VM-instruction error %u", v->id, err);
    exit_fatal(v, "VM entry failed");
}
