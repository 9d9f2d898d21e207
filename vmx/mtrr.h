/* MTRR decoding (SDM Vol. 3A 12.11): pure logic over MSR values, host-tested.
 * The EPT builder asks it for the memory type of each page it maps, so a guest
 * under EPT sees the same memory types it would see on bare metal. */
#ifndef VMX_MTRR_H
#define VMX_MTRR_H
#include <stdbool.h>
#include <stdint.h>

/* Memory type encodings shared by MTRRs, PAT and EPT (SDM 12.11.1, 12.12.3). */
#define MT_UC 0
#define MT_WC 1
#define MT_WT 4
#define MT_WP 5
#define MT_WB 6

#define MSR_MTRR_PHYSBASE0   0x200 /* PhysBase n = 0x200 + 2n, PhysMask n = 0x201 + 2n */
#define MSR_MTRR_FIX64K_00000 0x250
#define MSR_MTRR_FIX16K_80000 0x258
#define MSR_MTRR_FIX16K_A0000 0x259
#define MSR_MTRR_FIX4K_C0000  0x268 /* .. 0x26f = FIX4K_F8000 */

#define MTRRCAP_VCNT_MASK     0xffull
#define MTRRCAP_FIX           (1ull << 8)
#define MTRR_DEF_TYPE_MASK    0xffull
#define MTRR_DEF_FE           (1ull << 10)
#define MTRR_DEF_E            (1ull << 11)
#define MTRR_PHYSMASK_VALID   (1ull << 11)

#define MTRR_MAX_VAR 16
#define MTRR_FIXED_END 0x100000ull /* fixed ranges cover [0, 1 MiB) */

struct mtrr_state {
    bool enabled;        /* IA32_MTRR_DEF_TYPE.E */
    bool fixed_enabled;  /* MTRRCAP.FIX && DEF_TYPE.FE && DEF_TYPE.E */
    uint8_t def_type;
    uint8_t fixed[88];   /* 11 fixed MSRs x 8 types, in address order */
    unsigned nvar;       /* min(MTRRCAP.VCNT, MTRR_MAX_VAR) */
    struct { uint64_t base, mask; } var[MTRR_MAX_VAR]; /* raw PhysBase/PhysMask MSRs */
    uint8_t phys_bits;   /* MAXPHYADDR, CPUID.80000008H:EAX[7:0] */
};

/* Reads the MTRR MSRs through rdmsr (tests pass a fake). Only MSRs that
 * MTRRCAP says exist are read. phys_bits 0 means 36 (SDM 12.11.2.3). */
void mtrr_read(struct mtrr_state *s, uint64_t (*rdmsr)(uint32_t), uint8_t phys_bits);

/* Effective MTRR type of one physical address (SDM 12.11.4.1). */
int mtrr_type(const struct mtrr_state *s, uint64_t addr);

/* The type shared by every byte of [base, base+size), or -1 if the range is
 * not uniform (or empty). Cost depends on the number of MTRRs, not on size. */
int mtrr_range_type(const struct mtrr_state *s, uint64_t base, uint64_t size);
#endif
