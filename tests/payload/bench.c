/*
 * `make bench`: path length of one CPUID exit. Bochs counts about one TSC tick per
 * instruction, so rdtsc deltas are repeatable path lengths (not wall time).
 */
#include "payload.h"
#include "../../hv/hypercall.h"

static inline UINT64 tsc(void)
{
    UINT32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((UINT64)hi << 32) | lo;
}

static UINT64 cpuid_loop(UINTN n)
{
    UINT64 t0 = tsc();
    for (UINTN i = 0; i < n; i++) {
        UINT32 a = 0, b, c = 0, d;
        __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    }
    return tsc() - t0;
}

static UINT64 empty_loop(UINTN n)
{
    UINT64 t0 = tsc();
    for (UINTN i = 0; i < n; i++)
        __asm__ volatile("" ::: "memory");
    return tsc() - t0;
}

void bench(BOOLEAN hv_present)
{
    const UINTN n = 2000;
    UINT64 best = ~0ull, base = ~0ull;
    UINT64 exits0 = hv_present ? hv_vmcall(HV_HC_GET_EXITS) : 0;
    for (int run = 0; run < 5; run++) {
        UINT64 t = cpuid_loop(n), e = empty_loop(n);
        best = t < best ? t : best;
        base = e < base ? e : base;
    }
    UINT64 exits = hv_present ? hv_vmcall(HV_HC_GET_EXITS) - exits0 : 0;
    /* Report whole and hundredths: the formatter has no floating point. */
    UINT64 per = (best - base) * 100 / n;
    out("bench: cpuid %llu.%llu%llu cycles per iteration (loop overhead removed, best of 5 x %llu)",
        (unsigned long long)(per / 100), (unsigned long long)(per / 10 % 10), (unsigned long long)(per % 10),
        (unsigned long long)n);
    if (hv_present)
        out("bench: hv counted %llu exits for %llu CPUIDs", (unsigned long long)exits, (unsigned long long)(5 * n));
}
