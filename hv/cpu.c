#include "cpu.h"
#include <string.h>
#include "../lib/x86.h"

void cpu_identify(struct cpu_ident *id)
{
    memset(id, 0, sizeof(*id));
    struct cpuid_regs r;
    cpuid_vendor(id->vendor);
    uint32_t a = cpuid(1, 0).eax;
    /* SDM Vol. 2A CPUID: display family/model fold in the extended fields. */
    id->family = (a >> 8) & 0xf;
    id->model = (a >> 4) & 0xf;
    id->stepping = a & 0xf;
    if (id->family == 0xf)
        id->family += (a >> 20) & 0xff;
    if (id->family == 0x6 || id->family >= 0xf)
        id->model |= ((a >> 16) & 0xf) << 4;
    uint32_t maxext = cpuid(0x80000000, 0).eax;
    id->phys_bits = 36;
    if (maxext >= 0x80000008)
        id->phys_bits = cpuid(0x80000008, 0).eax & 0xff;
    if (maxext >= 0x80000001)
        id->gbpages = cpuid(0x80000001, 0).edx & (1u << 26);
    if (maxext >= 0x80000004) {
        for (uint32_t i = 0; i < 3; i++) {
            r = cpuid(0x80000002 + i, 0);
            memcpy(id->brand + 16 * i, &r, 16);
        }
        char *b = id->brand;
        while (*b == ' ')
            b++;
        memmove(id->brand, b, strlen(b) + 1);
    }
}
