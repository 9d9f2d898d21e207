/*
 * hvlog: print hv's log ring from inside its guest (Linux, or any x86-64 user space), for
 * machines without a serial port. Build: gcc -O2 -o hvlog tests/tools/hvlog.c. Run: ./hvlog
 * (hv.cfg guest_log=any lets user space call it, as the stick image's hv.cfg sets; the default,
 * guest_log=kernel, is CPL 0 only).
 * Uses HV_HC_LOG_READ (docs/hypercalls.md): 24 bytes a VMCALL from a stream position.
 * -f: keep following the log, as tail -f does.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cpuid.h>
#include "../../hv/hypercall.h"

int main(int argc, char **argv)
{
    int follow = argc > 1 && !strcmp(argv[1], "-f");
    unsigned a, b, c, d;
    char sig[13] = {0};
    __cpuid(HV_CPUID_LEAF_BASE, a, b, c, d);
    memcpy(sig, &b, 4), memcpy(sig + 4, &c, 4), memcpy(sig + 8, &d, 4);
    if (strcmp(sig, HV_CPUID_SIGNATURE)) {
        fprintf(stderr, "hvlog: not running under hv (CPUID 0x40000000 signature \"%s\")\n", sig);
        return 1;
    }
    uint64_t pos = 0;
    for (;;) {
        uint64_t rax = HV_HC_LOG_READ, rbx = pos, rcx = 0, rdx = 0, rsi = 0, rdi = 0;
        __asm__ volatile("vmcall" : "+a"(rax), "+b"(rbx), "+c"(rcx), "+d"(rdx), "+S"(rsi), "+D"(rdi) : : "memory");
        if ((int64_t)rax < 0) {
            fprintf(stderr, "hvlog: hv refused (%lld): guest_log=off in hv.cfg?\n", (long long)rax);
            return 1;
        }
        if (rsi > pos && pos)
            printf("[hvlog: %llu bytes lost: the ring wrapped]\n", (unsigned long long)(rsi - pos));
        if (!rax) {
            if (!follow)
                break;
            fflush(stdout);
            usleep(200000);
            continue;
        }
        uint64_t w[3] = {rbx, rcx, rdx};
        fwrite(w, 1, rax > 24 ? 24 : rax, stdout);
        pos = rsi + rax;
    }
    return 0;
}
