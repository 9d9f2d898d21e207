#ifndef HV_CPU_H
#define HV_CPU_H
#include <stdbool.h>
#include <stdint.h>
struct cpu_ident {
    char vendor[13];
    char brand[49];
    uint32_t family, model, stepping;
    uint8_t phys_bits;
    bool gbpages;
};
void cpu_identify(struct cpu_ident *id);
#endif
