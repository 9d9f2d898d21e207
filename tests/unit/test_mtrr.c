/* Host tests for vmx/mtrr.c: decoding, precedence (SDM 12.11.4.1), range uniformity. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/unit/test_util.h"
#include "vmx/mtrr.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)
#define KiB (1ull << 10)

/* ---- fake MSRs ---- */
static struct { uint32_t msr; uint64_t val; } msrs[64];
static unsigned nmsrs, bad_reads;

static void msr_reset(void) { nmsrs = 0; bad_reads = 0; }
static void msr_set(uint32_t msr, uint64_t val)
{
    msrs[nmsrs].msr = msr;
    msrs[nmsrs++].val = val;
}
/* Reading an MSR that does not exist would #GP on hardware: count it. */
static uint64_t fake_rdmsr(uint32_t msr)
{
    for (unsigned i = 0; i < nmsrs; i++)
        if (msrs[i].msr == msr)
            return msrs[i].val;
    bad_reads++;
    return 0;
}

static uint64_t bytes8(uint8_t t) { return 0x0101010101010101ull * t; }

/* PhysMask for a naturally aligned power-of-two range, valid bit set. */
static uint64_t vmask(uint64_t size, unsigned pb) { return (~(size - 1) & ((1ull << pb) - 1) & ~0xfffull) | MTRR_PHYSMASK_VALID; }

static void set_var(unsigned n, uint64_t base, uint64_t size, uint8_t type, unsigned pb)
{
    msr_set(MSR_MTRR_PHYSBASE0 + 2 * n, base | type);
    msr_set(MSR_MTRR_PHYSBASE0 + 2 * n + 1, vmask(size, pb));
}

/* Config A: default WB, PC-like fixed ranges, overlapping variable ranges. */
static void config_a(uint64_t def_flags)
{
    msr_reset();
    msr_set(0xfe, 8 | MTRRCAP_FIX | (1u << 10));
    msr_set(0x2ff, MT_WB | def_flags);
    msr_set(MSR_MTRR_FIX64K_00000, bytes8(MT_WB));              /* 0-7FFFF */
    msr_set(MSR_MTRR_FIX16K_80000, bytes8(MT_WB));              /* 80000-9FFFF */
    msr_set(MSR_MTRR_FIX16K_A0000, bytes8(MT_UC));              /* VGA */
    msr_set(MSR_MTRR_FIX4K_C0000 + 0, bytes8(MT_WP));           /* C0000-C7FFF video BIOS */
    for (unsigned i = 1; i < 6; i++)
        msr_set(MSR_MTRR_FIX4K_C0000 + i, bytes8(MT_UC));       /* C8000-EFFFF */
    msr_set(MSR_MTRR_FIX4K_C0000 + 6, bytes8(MT_WP));           /* F0000-F7FFF */
    msr_set(MSR_MTRR_FIX4K_C0000 + 7, 0x0605050505050505ull);   /* FF000 is WB */
    set_var(0, 0xc0000000, 1 * GiB, MT_UC, 39);   /* PCI hole */
    set_var(1, 0x80000000, 256 * MiB, MT_WC, 39); /* frame buffer */
    set_var(2, 0x90000000, 16 * MiB, MT_WT, 39);
    set_var(3, 0x90000000, 256 * MiB, MT_WB, 39); /* WT beats WB in 0x90000000+16M */
    set_var(4, 0xc0000000, 16 * MiB, MT_WB, 39);  /* UC beats WB */
    set_var(5, 0xa0000000, 16 * MiB, MT_WC, 39);
    set_var(6, 0xa0000000, 16 * MiB, MT_WP, 39);  /* WC+WP: undefined -> UC */
    msr_set(MSR_MTRR_PHYSBASE0 + 14, 0 | MT_UC);  /* 7: valid bit clear -> ignored */
    msr_set(MSR_MTRR_PHYSBASE0 + 15, vmask(4 * GiB, 39) & ~MTRR_PHYSMASK_VALID);
}

static void test_read(void)
{
    struct mtrr_state s;
    config_a(MTRR_DEF_E | MTRR_DEF_FE);
    mtrr_read(&s, fake_rdmsr, 39);
    CHECK(bad_reads == 0, "%u reads of absent MSRs", bad_reads);
    CHECK(s.enabled && s.fixed_enabled, "E=%d FE=%d", s.enabled, s.fixed_enabled);
    CHECK(s.def_type == MT_WB, "def %u", s.def_type);
    CHECK(s.nvar == 8, "nvar %u", s.nvar);
    CHECK(s.phys_bits == 39, "pb %u", s.phys_bits);
    CHECK(s.fixed[0] == MT_WB && s.fixed[16] == MT_UC && s.fixed[24] == MT_WP, "fixed decode");
    CHECK(s.fixed[87] == MT_WB && s.fixed[86] == MT_WP, "last 4K MSR bytes: %u %u", s.fixed[86], s.fixed[87]);
    CHECK(s.var[1].base == (0x80000000 | MT_WC), "var1 base %#llx", (unsigned long long)s.var[1].base);

    /* No FIX capability: the fixed MSRs must not be read; VCNT clamps to 16. */
    msr_reset();
    msr_set(0xfe, 0xff);
    msr_set(0x2ff, MT_UC | MTRR_DEF_E | MTRR_DEF_FE);
    for (unsigned i = 0; i < 32; i++)
        msr_set(MSR_MTRR_PHYSBASE0 + i, 0);
    mtrr_read(&s, fake_rdmsr, 0);
    CHECK(bad_reads == 0, "%u reads of absent MSRs without FIX", bad_reads);
    CHECK(!s.fixed_enabled && s.enabled, "FE ignored without FIX");
    CHECK(s.nvar == MTRR_MAX_VAR, "nvar clamp %u", s.nvar);
    CHECK(s.phys_bits == 36, "pb default %u", s.phys_bits);
}

static void test_types(void)
{
    struct mtrr_state s;
    config_a(MTRR_DEF_E | MTRR_DEF_FE);
    mtrr_read(&s, fake_rdmsr, 39);
    static const struct { uint64_t addr; int type; } cases[] = {
        { 0, MT_WB }, { 0x9ffff, MT_WB }, { 0xa0000, MT_UC }, { 0xbffff, MT_UC },
        { 0xc0000, MT_WP }, { 0xc7fff, MT_WP }, { 0xc8000, MT_UC }, { 0xeffff, MT_UC },
        { 0xf0000, MT_WP }, { 0xfe000, MT_WP }, { 0xff000, MT_WB }, { 0x100000, MT_WB },
        { 0x7fffffff, MT_WB }, { 0x80000000, MT_WC }, { 0x8fffffff, MT_WC },
        { 0x90000000, MT_WT }, { 0x90ffffff, MT_WT }, { 0x91000000, MT_WB },
        { 0xa0000000, MT_UC }, { 0xa1000000, MT_WB }, { 0xc0000000, MT_UC },
        { 0xc0ffffff, MT_UC }, { 0xfee00000, MT_UC }, { 0x100000000, MT_WB },
        /* Mask compares bits < 39 only: 2^39 + 0xc0000000 aliases the PCI hole. */
        { (1ull << 39) + 0xc0000000, MT_UC },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int t = mtrr_type(&s, cases[i].addr);
        CHECK(t == cases[i].type, "type(%#llx) = %d, want %d", (unsigned long long)cases[i].addr, t, cases[i].type);
    }

    /* FE clear: below 1 MiB falls to the variable ranges / default type. */
    config_a(MTRR_DEF_E);
    mtrr_read(&s, fake_rdmsr, 39);
    CHECK(!s.fixed_enabled, "FE clear");
    CHECK(mtrr_type(&s, 0xa0000) == MT_WB, "no fixed: default WB at A0000");
    CHECK(mtrr_range_type(&s, 0, 2 * MiB) == MT_WB, "no fixed: first 2M uniform");

    /* E clear: everything UC (12.11.2.1), even with FE set. */
    config_a(MTRR_DEF_FE);
    mtrr_read(&s, fake_rdmsr, 39);
    CHECK(!s.enabled && !s.fixed_enabled, "disabled");
    CHECK(mtrr_type(&s, 0) == MT_UC && mtrr_type(&s, 0x100000000) == MT_UC, "disabled -> UC");
    CHECK(mtrr_range_type(&s, 0, 64 * GiB) == MT_UC, "disabled range -> UC");

    /* A reserved type value is treated as UC. */
    struct mtrr_state r = { .enabled = true, .def_type = 2, .phys_bits = 36 };
    CHECK(mtrr_type(&r, 0x1000) == MT_UC, "reserved default -> UC");
}

static void test_ranges(void)
{
    struct mtrr_state s;
    config_a(MTRR_DEF_E | MTRR_DEF_FE);
    mtrr_read(&s, fake_rdmsr, 39);
    CHECK(mtrr_range_type(&s, 0, 2 * MiB) == -1, "fixed ranges split the first 2M");
    CHECK(mtrr_range_type(&s, 0, 0xa0000) == MT_WB, "0-9FFFF WB");
    CHECK(mtrr_range_type(&s, 0x9f000, 0x2000) == -1, "across A0000");
    CHECK(mtrr_range_type(&s, 0xc0000, 0x8000) == MT_WP, "C0000-C7FFF WP");
    CHECK(mtrr_range_type(&s, 0xff000, 0x1000) == MT_WB, "FF000 WB");
    CHECK(mtrr_range_type(&s, 0xff000, 0x2000) == MT_WB, "FF000-100FFF WB (fixed + default)");
    CHECK(mtrr_range_type(&s, 0xfe000, 0x3000) == -1, "FE000-100FFF mixed");
    CHECK(mtrr_range_type(&s, 2 * MiB, 2 * MiB) == MT_WB, "2M WB");
    CHECK(mtrr_range_type(&s, 1 * GiB, 1 * GiB) == MT_WB, "1G WB");
    CHECK(mtrr_range_type(&s, 3 * GiB, 1 * GiB) == MT_UC, "PCI hole UC (WB inside loses)");
    CHECK(mtrr_range_type(&s, 2 * GiB, 1 * GiB) == -1, "2G-3G mixed");
    CHECK(mtrr_range_type(&s, 0x80000000, 256 * MiB) == MT_WC, "WC 256M");
    CHECK(mtrr_range_type(&s, 0x8fe00000, 4 * MiB) == -1, "WC/WT edge");
    CHECK(mtrr_range_type(&s, 0x90000000, 16 * MiB) == MT_WT, "WT 16M");
    CHECK(mtrr_range_type(&s, 0x90000000, 32 * MiB) == -1, "WT/WB edge");
    CHECK(mtrr_range_type(&s, 0xbfe00000, 4 * MiB) == -1, "WB/UC edge at 3G");
    CHECK(mtrr_range_type(&s, 4 * GiB, 60 * GiB) == MT_WB, "4G-64G WB, unaligned size");
    CHECK(mtrr_range_type(&s, 0x7ffff123, 1) == MT_WB, "unaligned 1 byte");
    CHECK(mtrr_range_type(&s, 0x7ffff123, 0x1000) == -1, "unaligned 1 page across 2G");
    CHECK(mtrr_range_type(&s, 0x1000, 0) == -1, "empty");
    CHECK(mtrr_range_type(&s, UINT64_MAX - 0xfff, UINT64_MAX) >= -1, "overflowing size does not hang");

    /* Typical firmware: default UC, RAM covered by WB variable ranges. */
    msr_reset();
    msr_set(0xfe, 4);
    msr_set(0x2ff, MT_UC | MTRR_DEF_E);
    set_var(0, 0, 2 * GiB, MT_WB, 36);
    set_var(1, 2 * GiB, 1 * GiB, MT_WB, 36);
    set_var(2, 4 * GiB, 4 * GiB, MT_WB, 36);
    set_var(3, 8 * GiB, 512 * MiB, MT_WB, 36);
    mtrr_read(&s, fake_rdmsr, 36);
    CHECK(bad_reads == 0, "no FIX: %u bad reads", bad_reads);
    CHECK(mtrr_range_type(&s, 0, 3 * GiB) == MT_WB, "0-3G WB across two MTRRs");
    CHECK(mtrr_range_type(&s, 3 * GiB, 1 * GiB) == MT_UC, "3G-4G default UC");
    CHECK(mtrr_range_type(&s, 4 * GiB, 4 * GiB) == MT_WB, "4G-8G WB");
    CHECK(mtrr_range_type(&s, 8 * GiB, 1 * GiB) == -1, "8G-9G half WB");
    CHECK(mtrr_range_type(&s, 8 * GiB, 512 * MiB) == MT_WB, "8G-8.5G WB");
    CHECK(mtrr_range_type(&s, 8 * GiB + 512 * MiB, 512 * MiB) == MT_UC, "8.5G-9G UC");
    CHECK(mtrr_range_type(&s, 8 * GiB - 256 * MiB, 512 * MiB) == MT_WB, "across 8G, both WB");
}

/* ---- randomized cross-check against a per-page brute force ---- */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int brute(const struct mtrr_state *s, uint64_t base, uint64_t size)
{
    int t = -1;
    for (uint64_t a = base & ~0xfffull; a < base + size; a += 0x1000) {
        int pt = mtrr_type(s, a);
        if (t >= 0 && pt != t)
            return -1;
        t = pt;
    }
    return t;
}

static void test_random(void)
{
    static const uint8_t types[] = { MT_UC, MT_WC, MT_WT, MT_WP, MT_WB };
    unsigned mismatches = 0, checks = 0, uniform = 0;
    for (unsigned cfg = 0; cfg < 200; cfg++) {
        struct mtrr_state s;
        memset(&s, 0, sizeof(s));
        s.enabled = true;
        s.fixed_enabled = cfg & 1;
        s.phys_bits = 36;
        s.def_type = types[rnd() % 5];
        for (unsigned i = 0; i < 88; i++)
            s.fixed[i] = (cfg & 2) ? MT_WB : types[rnd() % 5];
        s.nvar = 1 + rnd() % 10;
        for (unsigned i = 0; i < s.nvar; i++) {
            uint64_t size = 1ull << (12 + rnd() % 12);          /* 4K .. 8M */
            uint64_t base = (rnd() % (16 * MiB)) & ~(size - 1);
            uint64_t mask = vmask(size, 36);
            if (cfg % 7 == 3 && i == 0)
                mask &= ~(1ull << 22);                           /* non-contiguous mask */
            if (rnd() % 8 == 0)
                mask &= ~MTRR_PHYSMASK_VALID;
            s.var[i].base = base | types[rnd() % 5];
            s.var[i].mask = mask;
        }
        for (unsigned q = 0; q < 40; q++) {
            uint64_t base, size;
            if (q & 1) {
                unsigned k = 12 + rnd() % 11;                    /* aligned 4K .. 4M */
                size = 1ull << k;
                base = (rnd() % (20 * MiB)) & ~(size - 1);
            } else {
                base = rnd() % (20 * MiB);
                size = 1 + rnd() % (3 * MiB);
            }
            int want = brute(&s, base, size), got = mtrr_range_type(&s, base, size);
            checks++;
            uniform += want >= 0;
            if (got != want) {
                if (!mismatches)
                    fprintf(stderr, "cfg %u: range(%#llx, %#llx) = %d, brute force %d\n", cfg,
                            (unsigned long long)base, (unsigned long long)size, got, want);
                mismatches++;
            }
        }
    }
    CHECK(mismatches == 0, "%u of %u random ranges disagree with brute force", mismatches, checks);
    CHECK(uniform > checks / 10 && uniform < checks - checks / 10, "only %u of %u uniform: weak test", uniform, checks);
}

int main(void)
{
    test_read();
    test_types();
    test_ranges();
    test_random();
    return test_summary();
}
