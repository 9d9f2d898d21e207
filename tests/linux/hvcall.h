/*
 * For the benchmarks of the test-linux initramfs (/init, /kvmtest; user space): the TSC,
 * and hv's exit counts where hv lets user space read them (hv.cfg test_hooks=on; else
 * VMCALL at CPL 3 raises #UD, SIGILL here, and the call reports failure).
 */
#ifndef TESTS_LINUX_HVCALL_H
#define TESTS_LINUX_HVCALL_H
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include "../../hv/hypercall.h"

static inline uint64_t tsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* CPUID 0x40000000 answers hv's signature: running under hv. */
static inline int hv_present(void)
{
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(HV_CPUID_LEAF_BASE), "c"(0));
    return b == 0x76687668 && c == 0x76687668 && d == 0x76687668; /* "hvhv" three times */
}

static sigjmp_buf hvcall_jmp;
static void hvcall_sigill(int sig)
{
    (void)sig;
    siglongjmp(hvcall_jmp, 1);
}

/* VMCALL FN; 0 and *out = RAX if hv answered, -1 if it raised #UD (or hv is absent). */
static inline int hv_user_call(uint32_t fn, uint64_t *out)
{
    if (!hv_present())
        return -1;
    struct sigaction sa = {.sa_handler = hvcall_sigill}, old, old_segv;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGILL, &sa, &old);
    sigaction(SIGSEGV, &sa, &old_segv); /* #GP instead of #UD elsewhere (another hypervisor) */
    volatile int rc = -1; /* across siglongjmp */
    if (!sigsetjmp(hvcall_jmp, 1)) {
        uint64_t rax = fn;
        __asm__ volatile("vmcall" : "+a"(rax) : : "rbx", "rcx", "rdx", "memory");
        if (out)
            *out = rax;
        rc = 0;
    }
    sigaction(SIGILL, &old, NULL);
    sigaction(SIGSEGV, &old_segv, NULL);
    return rc;
}
#endif
