/* The guest's INIT/SIPI IPIs as hv latches them (hv/apic.c), and the xAPIC store decoder. */
#ifndef HV_APIC_H
#define HV_APIC_H
#include <stdbool.h>
#include <stdint.h>
#include "vcpu.h"

/* struct vcpu .sipi, per target: set by senders, consumed by the target's INIT/SIPI handling. */
#define APIC_SIPI_INIT_SENT (1u << 8)  /* an INIT was sent to it: the next SIPI is its start */
#define APIC_SIPI_WAITING   (1u << 9)  /* it handled its INIT and waits for a SIPI */
#define APIC_SIPI_VALID     (1u << 10) /* a SIPI came: its vector is bits 7:0 */

/* A write of the ICR (xAPIC: its low half, dest = ICR high bits 31:24; x2APIC: MSR 0x830,
 * dest = bits 63:32): latches INIT and SIPI for their targets before hv forwards the write. */
void apic_icr_write(struct vcpu *v, uint32_t lo, uint32_t dest, bool x2apic);

/* A store to the xAPIC page: MOV r/m32, r32 (89), MOV r/m32, imm32 (C7 /0), XCHG r/m32, r32
 * (87), MOV moffs32, EAX (A3), with segment and REX prefixes; 16-bit addressing is not decoded. */
struct apic_store {
    int reg;       /* source GPR (x86 number), -1 for an immediate */
    uint32_t imm;
    bool xchg;
    unsigned len;  /* instruction length */
};
int apic_decode_store(const uint8_t *bytes, unsigned n, bool long_mode, bool addr32_default, struct apic_store *st);
/* An EPT violation of a write to the xAPIC page: the store performed for the guest. */
bool apic_mmio_write(struct vcpu *v, uint64_t gpa);
#endif
