/* Instructions that always exit: XSETBV, INVD, GETSEC, VMCALL, and the VMX
 * instructions (nested/ emulates them; with nested=off they raise #UD). */
#include "../lib/log.h"
#include "../lib/prof.h"
#include "exit.h"
#include "host.h"
#include "hypercall.h"
#include "version.h"

void handle_ud(struct vcpu *v) { inject_ud(v); }

void handle_vmx_insn(struct vcpu *v)
{
    if (!hv.nested) {
        inject_ud(v); /* no VMX for this guest: as on a CPU without it */
        return;
    }
    uint32_t reason = (uint32_t)reg_read(&v->rc, HV_REG_EXIT_REASON) & 0xffff;
    nested_handle_vmx_insn(&v->nv, reason);
    if (reason == EXIT_REASON_VMXOFF)
        init_after_vmxoff(v);
    else if (v->nested.guest_mode) /* L1's VMLAUNCH/VMRESUME entered L2 */
        init_after_vmentry(v);
}

/* L1's VMRESUME: handle_vmx_insn's work for it, dispatched straight (issue 9: one of the two
 * L0 exits of every nested round trip). */
void handle_vmresume(struct vcpu *v)
{
    if (!hv.nested) {
        inject_ud(v);
        return;
    }
    PROF("enter: dispatch");
    nested_handle_vmresume(&v->nv);
    if (v->init_blocked && v->nested.guest_mode) /* L1's VMRESUME entered L2 */
        init_after_vmentry(v);
}

void handle_invd(struct vcpu *v)
{
    /* INVD would discard hv's own dirty cache lines too: write them back instead. */
    __asm__ volatile("wbinvd" ::: "memory");
    reg_skip_instruction(&v->rc);
}

void handle_xsetbv(struct vcpu *v)
{
    uint64_t *g = v->rc.regs;
    uint64_t val = (g[HV_REG_RDX] << 32) | (uint32_t)g[HV_REG_RAX];
    /* The CPU checks the value: a fault in hv becomes the guest's #GP. */
    if (guest_cpl(v) != 0 || safe_xsetbv((uint32_t)g[HV_REG_RCX], val)) {
        inject_gp(v);
        return;
    }
    reg_skip_instruction(&v->rc);
}

/* HV_HC_LOG_READ: 24 bytes of hv's log ring in RBX, RCX, RDX (hv/hypercall.h). */
static void hc_log_read(struct vcpu *v)
{
    uint64_t *g = v->rc.regs, pos = g[HV_REG_RBX], head, w[3] = {0, 0, 0};
    if (hv.guest_log == HV_GUEST_LOG_OFF) {
        g[HV_REG_RAX] = (uint64_t)HV_HC_ERR_DENIED;
    } else {
        size_t n = log_ring_read(&pos, (char *)w, sizeof(w), &head);
        g[HV_REG_RAX] = n;
        g[HV_REG_RBX] = w[0];
        g[HV_REG_RCX] = w[1];
        g[HV_REG_RDX] = w[2];
        g[HV_REG_RSI] = pos;
        g[HV_REG_RDI] = head;
    }
    reg_skip_instruction(&v->rc);
}

void handle_vmcall(struct vcpu *v)
{
    uint64_t *g = v->rc.regs;
    if ((uint32_t)g[HV_REG_RAX] == HV_HC_LOG_READ && hv.guest_log != HV_GUEST_LOG_KERNEL) {
        hc_log_read(v); /* guest_log=any: a root tool in the guest's user space reads the log */
        return;
    }
    uint32_t fn = (uint32_t)g[HV_REG_RAX];
    /* test_hooks=on (tests only): the benchmarks' user-space programs (tests/linux) read the
     * exit counts around what they time. */
    bool user_stats = hv.test_hooks && (fn == HV_HC_GET_EXITS || fn == HV_HC_PRINT_STATS);
    if (guest_cpl(v) != 0 && !user_stats) {
        inject_ud(v); /* hypercalls are for the guest's kernel only */
        return;
    }
    switch (fn) {
    case HV_HC_LOG_READ: /* guest_log=kernel, CPL 0 */
        hc_log_read(v);
        return;
    case HV_HC_VERSION:
        g[HV_REG_RAX] = HV_VERSION_NUM;
        g[HV_REG_RBX] = 0x76687668; /* "hvhv" */
        break;
    case HV_HC_PRINT_STATS:
        log_info("cpu%u: exit statistics requested by the guest", v->id);
        stats_print_all("hypercall");
        g[HV_REG_RAX] = 0;
        break;
    case HV_HC_GET_EXITS:
        PROF_REPORT("window"); /* a benchmark window's breakdown (lib/prof.h) */
        g[HV_REG_RAX] = v->stats.total;
        break;
    case HV_HC_HIDDEN_WRITES:
        g[HV_REG_RAX] = hidden_writes_total();
        g[HV_REG_RBX] = hidden_self_check(v);
        break;
    case HV_HC_TEST_FATAL:
        if (hv.test_hooks) /* hv.cfg test_hooks=on only: a test of the fatal path */
            exit_fatal(v, "test hook: the guest asked for a fatal error (test_hooks=on in hv.cfg)");
        g[HV_REG_RAX] = (uint64_t)HV_HC_ERR_UNKNOWN; /* as any function hv does not know */
        break;
    default:
        g[HV_REG_RAX] = (uint64_t)HV_HC_ERR_UNKNOWN;
    }
    reg_skip_instruction(&v->rc);
}
