/*
 * When hv itself cannot go on (an exit it has no answer for, an exception in hv, a VM entry
 * of its own VMCS that the CPU refuses): one report on the serial log, every line starting
 * "hv: FATAL: ", then what hv.cfg's on_fatal= says: halt (the default: every CPU stops, so
 * the log can be read) or reset the platform. Bad guest input never comes here: it gets the
 * architectural answer.
 */
#include "fatal.h"
#include <stdio.h>
#include "../lib/log.h"
#include "../lib/x86.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx_bits.h"
#include "exit.h"
#include "host.h"
#include "vmcs01.h"

#define BACKTRACE_MAX 16
#define FRAMES_PER_LINE 6

unsigned fatal_backtrace(uint64_t rbp, uint64_t lo, uint64_t hi, uint64_t *ret, unsigned max)
{
    unsigned n = 0;
    while (n < max && lo < hi && hi - lo >= 16 && rbp >= lo && rbp <= hi - 16 && !(rbp & 7)) {
        const uint64_t *frame = (const uint64_t *)(uintptr_t)rbp;
        if (!frame[1])
            break;
        ret[n++] = frame[1];
        if (frame[0] <= rbp)
            break; /* callers' frames lie above: anything else ends the chain */
        rbp = frame[0];
    }
    return n;
}

static void report(struct vcpu *v, const char *why, uint64_t rip, uint64_t rbp)
{
    struct regcache *rc = &v->rc;
    uint32_t reason = (uint32_t)reg_read(rc, HV_REG_EXIT_REASON);
    log_fatal("cpu%u: %s", v->id, why);
    log_fatal("cpu%u: exit reason %u%s (%s), qualification 0x%llx, VM-instruction error %llu, %s", v->id,
              reason & 0xffff, reason & VMX_EXIT_REASON_ENTRY_FAIL ? " VM-entry failure" : "",
              exit_reason_name(reason & 0xffff), (unsigned long long)reg_exit_qual(rc),
              (unsigned long long)vmcs_read(VM_INSTRUCTION_ERROR),
              v->nested.guest_mode ? "while L2 ran (vmcs02)" : "guest L1 (vmcs01)");
    log_fatal("cpu%u: guest rip 0x%llx rsp 0x%llx cr0 0x%llx cr3 0x%llx cr4 0x%llx", v->id,
              (unsigned long long)reg_rip(rc), (unsigned long long)reg_rsp(rc), (unsigned long long)reg_cr0(rc),
              (unsigned long long)reg_cr3(rc), (unsigned long long)reg_cr4(rc));
    uint64_t base = hv.ho ? hv.ho->image_base : 0;
    log_fatal("cpu%u: hv rip 0x%llx; hv is loaded at 0x%llx: addr2line -f -e build/core.elf ADDRESS-0x%llx "
              "names an address (here 0x%llx)", v->id, (unsigned long long)rip, (unsigned long long)base,
              (unsigned long long)base, (unsigned long long)(rip - base));
    uint64_t ret[BACKTRACE_MAX];
    uint64_t lo = (uint64_t)(uintptr_t)v->stack;
    unsigned n = v->stack ? fatal_backtrace(rbp, lo, lo + HOST_STACK_SIZE, ret, BACKTRACE_MAX) : 0;
    if (!n)
        log_fatal("cpu%u: backtrace: no frame on hv's stack at rbp 0x%llx", v->id, (unsigned long long)rbp);
    for (unsigned i = 0; i < n; i += FRAMES_PER_LINE) {
        char line[160];
        int k = 0;
        for (unsigned j = i; j < n && j < i + FRAMES_PER_LINE; j++)
            k += snprintf(line + k, sizeof(line) - (size_t)k, " 0x%llx", (unsigned long long)ret[j]);
        log_fatal("cpu%u: backtrace (raw return addresses, innermost first)%s:%s", v->id, i ? ", continued" : "",
                  line);
    }
}

__attribute__((noreturn)) static void finish(struct vcpu *v)
{
    if (hv.on_fatal == HV_ON_FATAL_RESET) {
        log_fatal("cpu%u: resetting the platform (on_fatal=reset in hv.cfg)", v->id);
        platform_reset("fatal error");
    }
    uint32_t others = hv.nvcpus > 1 ? hv.nvcpus - 1 : 0;
    if (others)
        host_stop_other_cpus();
    for (unsigned long i = 0; i < (1ul << 26) && __atomic_load_n(&hv.cpus_stopped, __ATOMIC_ACQUIRE) < others; i++)
        cpu_relax();
    log_fatal("cpu%u: halted; %u of %u other CPU(s) stopped (on_fatal=halt in hv.cfg; on_fatal=reset resets instead)",
              v->id, __atomic_load_n(&hv.cpus_stopped, __ATOMIC_ACQUIRE), others);
    cpu_halt_forever();
}

__attribute__((noreturn)) void hv_fatal(struct vcpu *v, const char *why, uint64_t rip, uint64_t rbp)
{
    uint32_t me = v->id + 1, first = 0;
    log_enter_fatal();
    if (!__atomic_compare_exchange_n(&hv.fatal_cpu, &first, me, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        if (first != me)
            fatal_stop_this_cpu(v); /* another CPU reports */
        log_fatal("cpu%u: %s, during the report of a fatal error", v->id, why);
        finish(v);
    }
    report(v, why, rip, rbp);
    vmcs01_dump_guest(v);
    stats_print_all("fatal error");
    finish(v);
}

__attribute__((noreturn)) void fatal_stop_this_cpu(struct vcpu *v)
{
    log_enter_fatal();
    log_fatal("cpu%u: stopped: cpu%u hit a fatal error", v->id, __atomic_load_n(&hv.fatal_cpu, __ATOMIC_ACQUIRE) - 1);
    __atomic_add_fetch(&hv.cpus_stopped, 1, __ATOMIC_RELEASE);
    cpu_halt_forever();
}

__attribute__((noreturn, noinline)) void exit_fatal(struct vcpu *v, const char *why)
{
    hv_fatal(v, why, (uint64_t)(uintptr_t)__builtin_return_address(0), (uint64_t)(uintptr_t)__builtin_frame_address(0));
}
