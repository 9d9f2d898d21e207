/* MTRR decoding (SDM Vol. 3A 12.11). Freestanding: no libc beyond <string.h>. */
#include "mtrr.h"
#include <stddef.h>
#include <string.h>

#define MSR_IA32_MTRRCAP       0xfe
#define MSR_IA32_MTRR_DEF_TYPE 0x2ff

/* Upper bound on recursion nodes per aligned block in range_block(). Sane
 * (contiguous) masks need at most ~2 * 16 MTRRs * 52 levels; only weird
 * non-contiguous masks could exceed it, and then the answer is a safe -1. */
#define BLOCK_BUDGET 4096

static bool valid_type(unsigned t)
{
    return t == MT_UC || t == MT_WC || t == MT_WT || t == MT_WP || t == MT_WB;
}

/* A reserved encoding cannot be programmed (WRMSR #GPs, 12.11.2.2), but if one
 * shows up anyway, UC is the type that cannot corrupt anything. */
static int sanitize(unsigned t) { return valid_type(t) ? (int)t : MT_UC; }

static unsigned type_bit(unsigned t) { return 1u << sanitize(t); }

/* Combines the types of all variable ranges that match (12.11.4.1). */
static int resolve(const struct mtrr_state *s, unsigned hits)
{
    if (!hits)
        return sanitize(s->def_type);
    if (hits & (1u << MT_UC))
        return MT_UC;                          /* UC wins over everything */
    if (!(hits & (hits - 1)))
        return __builtin_ctz(hits);            /* all matches agree */
    if (hits == ((1u << MT_WT) | (1u << MT_WB)))
        return MT_WT;                          /* WT beats WB */
    return MT_UC;                              /* undefined by the SDM: be safe */
}

/* Physical address bits a PhysBase/PhysMask compares (12.11.2.3). */
static uint64_t addr_bits(const struct mtrr_state *s)
{
    unsigned pb = s->phys_bits == 0 ? 36 : s->phys_bits > 52 ? 52 : s->phys_bits;
    return ((1ull << pb) - 1) & ~0xfffull;
}

static bool var_valid(const struct mtrr_state *s, unsigned i)
{
    return s->var[i].mask & MTRR_PHYSMASK_VALID;
}

/* Index into fixed[] of the fixed range holding addr (< 1 MiB), 12.11.2.2. */
static unsigned fixed_index(uint64_t addr)
{
    if (addr < 0x80000)
        return (unsigned)(addr >> 16);                       /* 8 x 64K */
    if (addr < 0xc0000)
        return 8 + (unsigned)((addr - 0x80000) >> 14);       /* 16 x 16K */
    return 24 + (unsigned)((addr - 0xc0000) >> 12);          /* 64 x 4K */
}

static uint64_t fixed_granule(uint64_t addr)
{
    return addr < 0x80000 ? 0x10000 : addr < 0xc0000 ? 0x4000 : 0x1000;
}

void mtrr_read(struct mtrr_state *s, uint64_t (*rdmsr)(uint32_t), uint8_t phys_bits)
{
    static const uint32_t fixed_msrs[11] = {
        MSR_MTRR_FIX64K_00000, MSR_MTRR_FIX16K_80000, MSR_MTRR_FIX16K_A0000,
        MSR_MTRR_FIX4K_C0000 + 0, MSR_MTRR_FIX4K_C0000 + 1, MSR_MTRR_FIX4K_C0000 + 2,
        MSR_MTRR_FIX4K_C0000 + 3, MSR_MTRR_FIX4K_C0000 + 4, MSR_MTRR_FIX4K_C0000 + 5,
        MSR_MTRR_FIX4K_C0000 + 6, MSR_MTRR_FIX4K_C0000 + 7,
    };
    memset(s, 0, sizeof(*s));
    /* 36 bits when CPUID.80000008H is absent (12.11.2.3); EPT caps at 52. */
    s->phys_bits = phys_bits == 0 ? 36 : phys_bits > 52 ? 52 : phys_bits;

    uint64_t cap = rdmsr(MSR_IA32_MTRRCAP);
    uint64_t def = rdmsr(MSR_IA32_MTRR_DEF_TYPE);
    s->enabled = def & MTRR_DEF_E;
    s->def_type = (uint8_t)(def & MTRR_DEF_TYPE_MASK);
    /* FE only counts while E is set (12.11.2.1); the fixed MSRs exist only
     * if MTRRCAP.FIX says so, and reading absent ones would #GP. */
    s->fixed_enabled = (cap & MTRRCAP_FIX) && (def & MTRR_DEF_FE) && s->enabled;
    if (cap & MTRRCAP_FIX) {
        for (unsigned m = 0; m < 11; m++) {
            uint64_t v = rdmsr(fixed_msrs[m]);
            for (unsigned b = 0; b < 8; b++)
                s->fixed[m * 8 + b] = (uint8_t)(v >> (8 * b));
        }
    }
    unsigned vcnt = (unsigned)(cap & MTRRCAP_VCNT_MASK);
    s->nvar = vcnt > MTRR_MAX_VAR ? MTRR_MAX_VAR : vcnt;
    for (unsigned i = 0; i < s->nvar; i++) {
        s->var[i].base = rdmsr(MSR_MTRR_PHYSBASE0 + 2 * i);
        s->var[i].mask = rdmsr(MSR_MTRR_PHYSBASE0 + 2 * i + 1);
    }
}

int mtrr_type(const struct mtrr_state *s, uint64_t addr)
{
    if (!s->enabled)
        return MT_UC;
    if (s->fixed_enabled && addr < MTRR_FIXED_END)
        return sanitize(s->fixed[fixed_index(addr)]);
    uint64_t bits = addr_bits(s);
    unsigned hits = 0;
    for (unsigned i = 0; i < s->nvar; i++) {
        if (!var_valid(s, i))
            continue;
        uint64_t m = s->var[i].mask & bits;
        if ((addr & m) == (s->var[i].base & m))
            hits |= type_bit(s->var[i].base & 0xff);
    }
    return resolve(s, hits);
}

/* Type of [b, b + size) with size <= 1 MiB, all below 1 MiB: at most 88 steps. */
static int fixed_block(const struct mtrr_state *s, uint64_t b, uint64_t size)
{
    int t = -1;
    for (uint64_t a = b; a < b + size; a = (a | (fixed_granule(a) - 1)) + 1) {
        int ft = sanitize(s->fixed[fixed_index(a)]);
        if (t >= 0 && ft != t)
            return -1;
        t = ft;
    }
    return t;
}

/*
 * Type of the naturally aligned block [b, b + 2^k), k >= 12, or -1.
 * For a mask-based range and such a block the answer is exact: mask bits >= k
 * are fixed by b, so they decide "misses entirely"; if they match, the range
 * covers the block entirely when the mask has no bits < k, and only part of it
 * otherwise. A partial cover splits the block in halves; for a contiguous mask
 * only the halves holding the range's edges recurse further.
 */
static int range_block(const struct mtrr_state *s, uint64_t b, unsigned k, int *budget)
{
    if (--*budget < 0)
        return -1;
    uint64_t size = 1ull << k;
    if (s->fixed_enabled && b < MTRR_FIXED_END && size <= MTRR_FIXED_END)
        return fixed_block(s, b, size);
    /* A block straddling 1 MiB is fixed below and variable above: split. */
    bool partial = s->fixed_enabled && b < MTRR_FIXED_END;
    uint64_t bits = addr_bits(s);
    unsigned hits = 0;
    for (unsigned i = 0; i < s->nvar && !partial; i++) {
        if (!var_valid(s, i))
            continue;
        uint64_t m = s->var[i].mask & bits;
        if ((b ^ s->var[i].base) & m & ~(size - 1))
            continue;
        if (m & (size - 1))
            partial = true;
        else
            hits |= type_bit(s->var[i].base & 0xff);
    }
    if (!partial || k <= 12)
        return resolve(s, hits);
    int lo = range_block(s, b, k - 1, budget);
    if (lo < 0)
        return -1;
    int hi = range_block(s, b + size / 2, k - 1, budget);
    return hi == lo ? lo : -1;
}

int mtrr_range_type(const struct mtrr_state *s, uint64_t base, uint64_t size)
{
    if (size == 0)
        return -1;
    if (!s->enabled)
        return MT_UC;
    /* Types are uniform within a 4 KiB page: work on whole pages. */
    uint64_t last = size - 1 > UINT64_MAX - base ? UINT64_MAX : base + size - 1;
    last |= 0xfff;
    uint64_t a = base & ~0xfffull;
    int t = -1;
    /* Cover [a, last] with the fewest naturally aligned power-of-two blocks. */
    for (;;) {
        unsigned k = a ? (unsigned)__builtin_ctzll(a) : 63;
        if (k > 63)
            k = 63;
        while (k > 12 && (1ull << k) - 1 > last - a)
            k--;
        int budget = BLOCK_BUDGET;
        int bt = range_block(s, a, k, &budget);
        if (bt < 0 || (t >= 0 && bt != t))
            return -1;
        t = bt;
        if (last - a == (1ull << k) - 1)
            return t;
        a += 1ull << k;
    }
}
