/*
 * Host tests for nested/gva.c: L1's linear addresses (the memory operands of its VMX
 * instructions) translated through L1's own paging structures, built in L1's RAM
 * (nested_harness.c), as the SDM's chapter 4 walks them: 4-level, PAE and 32-bit paging,
 * the #PF error code of each failure (4.7), reserved bits, accessed and dirty flags (4.8),
 * and copies to and from L1 memory that fault before they change anything.
 */
#include <string.h>
#include "lib/x86.h"
#include "nested/gva.h"
#include "tests/unit/nested_harness.h"
#include "vmx/vmx_bits.h"

#define P 1ull
#define W 2ull
#define US 4ull
#define A (1ull << 5)
#define D (1ull << 6)
#define PS (1ull << 7)
#define XD (1ull << 63)
#define PF_P 1u
#define PF_W 2u
#define PF_RSVD 8u
#define CR4_PSE (1ull << 4)
#define CR4_SMAP (1ull << 21)
#define EFLAGS_AC (1ull << 18)

static unsigned next_pg;
static uint64_t root;

static uint64_t table(void) { return GPA(next_pg++); }

enum mode { M64, MPAE, M32 };
static void mode(enum mode m, uint64_t cr0_extra_clear)
{
    nh_reset_ram();
    next_pg = PG_FREE;
    root = table();
    fake_vmcs_set(GUEST_CR0, L1_CR0 & ~cr0_extra_clear);
    fake_vmcs_set(GUEST_CR3, root);
    fake_vmcs_set(GUEST_CR4, m == M32 ? (L1_CR4 & ~CR4_PAE) | CR4_PSE : L1_CR4);
    fake_vmcs_set(GUEST_IA32_EFER, m == M64 ? L1_EFER : 0);
    fake_vmcs_set(GUEST_RFLAGS, 0x202);
    for (int i = 0; i < 4; i++)
        fake_vmcs_set(GUEST_PDPTR0 + 2 * i, 0);
}

/* 4-level (or PAE below the PDPTE: top = 2) mapping of gva; returns the leaf entry. */
static uint64_t *map(int top, uint64_t gva, uint64_t target, int level, uint64_t leaf, uint64_t tflags)
{
    uint64_t t = root;
    if (top == 2) { /* PAE: the PDPTE lives in the PDPTE registers (vmcs01's GUEST_PDPTRn) */
        uint32_t f = GUEST_PDPTR0 + 2 * ((gva >> 30) & 3);
        if (!(fake_vmcs_get(f) & P))
            fake_vmcs_set(f, table() | P);
        t = fake_vmcs_get(f) & ~0xfffull;
    }
    for (int l = top; l > level; l--) {
        uint64_t *e = &gpa_u64(t)[(gva >> (12 + 9 * (l - 1))) & 511];
        if (!*e)
            *e = table() | tflags;
        t = *e & 0x000ffffffffff000ull;
    }
    uint64_t *e = &gpa_u64(t)[(gva >> (12 + 9 * (level - 1))) & 511];
    *e = target | leaf | (level > 1 ? PS : 0);
    return e;
}

static int walk(uint64_t gva, bool write, uint64_t *gpa, uint32_t *err)
{
    regcache_reset(&rc);
    *gpa = ~0ull;
    *err = ~0u;
    return gva_to_gpa(&nv, gva, write, gpa, err);
}

#define OK(gva, write, want)                                                                              \
    do {                                                                                                  \
        uint64_t g_;                                                                                      \
        uint32_t e_;                                                                                      \
        int r_ = walk(gva, write, &g_, &e_);                                                              \
        CHECK(r_ == 0 && g_ == (want), "%s %#llx: %d gpa %#llx, want %#llx", (write) ? "write" : "read", \
              ULL(gva), r_, ULL(g_), ULL(want));                                                          \
    } while (0)
#define FAULT(gva, write, want_err, what)                                                                  \
    do {                                                                                                   \
        uint64_t g_;                                                                                       \
        uint32_t e_;                                                                                       \
        int r_ = walk(gva, write, &g_, &e_);                                                               \
        CHECK(r_ == -1 && e_ == (want_err), "%s: %d error %#x, want #PF(%#x)", what, r_, e_, (want_err)); \
    } while (0)

static void test_4level(void)
{
    nh_setup(false);
    mode(M64, 0);
    uint64_t data = GPA(100);
    map(4, 0x00007f0012345000ull, data, 1, P | W, P | W);
    OK(0x00007f0012345678ull, false, data + 0x678);
    OK(0x00007f0012345ff8ull, true, data + 0xff8);
    map(4, 0xffff800000001000ull, GPA(101), 1, P | W, P | W);
    OK(0xffff800000001008ull, false, GPA(101) + 8);
    map(4, 0x0000004000200000ull, 0x7fe00000ull, 2, P | W, P | W);
    OK(0x0000004000212345ull, true, 0x7fe12345ull);
    map(4, 0x0000008040000000ull, 0x40000000ull, 3, P | W, P | W);
    OK(0x00000080789abcdeull, false, 0x789abcdeull);
    /* the PAT bit (12) of a large page is no address bit */
    map(4, 0x0000004000400000ull, 0x7fc00000ull | (1ull << 12), 2, P | W, P | W);
    OK(0x0000004000400010ull, false, 0x7fc00010ull);
    /* not present at each level: P = 0, W/R as the access */
    FAULT(0x0000010000000000ull, false, 0, "PML4E not present");
    FAULT(0x00007f0052345000ull, true, PF_W, "PDPTE not present (write)");
    FAULT(0x00007f0012545000ull, false, 0, "PDE not present");
    FAULT(0x00007f0012346000ull, true, PF_W, "PTE not present (write)");
}

static void test_write_protect(void)
{
    nh_setup(false);
    mode(M64, 0);
    map(4, 0x1000, GPA(100), 1, P, P | W);       /* read-only leaf */
    map(4, 0x40000000, GPA(101), 1, P | W, P);   /* read-only tables */
    OK(0x1010, false, GPA(100) + 0x10);
    FAULT(0x1010, true, PF_P | PF_W, "write to a read-only PTE, CR0.WP = 1");
    FAULT(0x40000000, true, PF_P | PF_W, "write through read-only tables");
    mode(M64, CR0_WP);
    map(4, 0x1000, GPA(100), 1, P, P);
    OK(0x1010, true, GPA(100) + 0x10); /* a supervisor write ignores R/W with CR0.WP = 0 */
}

/* SDM 4.7: P = 0 "if there is no translation for the linear address because the P flag was 0
 * in one of the paging-structure entries", whatever the rights of the entries above it. */
static void test_not_present_before_rights(void)
{
    nh_setup(false);
    mode(M64, 0);
    map(4, 0x200000, GPA(100), 1, P | W, P); /* read-only PML4E, PDPTE, PDE */
    FAULT(0x201000, true, PF_W, "write, read-only PML4E, PTE not present");
}

/* SDM 4.7 (RSVD) and the 4-level entry formats (Tables 4-15..4-20): reserved bits in a
 * present entry fault with P = 1 and RSVD = 1; in a not-present entry they do not count. */
static void test_reserved_bits(void)
{
    nh_setup(false);
    const struct { uint64_t gva; int level, at; uint64_t bits; bool nxe; const char *what; } cases[] = {
        {0x1000, 1, 4, PS, true, "PS in a PML4E"},
        {0x1000, 1, 1, 1ull << 39, true, "PTE address bit 39 (MAXPHYADDR 39)"},
        {0x1000, 1, 2, 1ull << 51, true, "PDE bit 51"},
        {0x1000, 1, 1, XD, false, "XD with EFER.NXE = 0"},
        {0x200000, 2, 2, 1ull << 13, true, "2 MiB page bit 13"},
        {0x40000000, 3, 3, 1ull << 20, true, "1 GiB page bit 20"},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mode(M64, 0);
        fake_vmcs_set(GUEST_IA32_EFER, cases[i].nxe ? L1_EFER : L1_EFER & ~(1ull << 11));
        uint64_t target = cases[i].level == 3 ? 0x40000000 : cases[i].level == 2 ? 0x200000 : GPA(100);
        map(4, cases[i].gva, target, cases[i].level, P | W, P | W);
        /* find the entry at level "at" and set the bits */
        uint64_t t = root, *e = NULL;
        for (int l = 4; l >= cases[i].at; l--) {
            e = &gpa_u64(t)[(cases[i].gva >> (12 + 9 * (l - 1))) & 511];
            t = *e & 0x000ffffffffff000ull;
        }
        *e |= cases[i].bits;
        FAULT(cases[i].gva, false, PF_P | PF_RSVD, cases[i].what);
        FAULT(cases[i].gva, true, PF_P | PF_W | PF_RSVD, cases[i].what);
        *e &= ~P;
        FAULT(cases[i].gva, false, 0, "not present: reserved bits do not count");
    }
    mode(M64, 0);
    map(4, 0x1000, GPA(100), 1, P | W | XD, P | W);
    OK(0x1000, false, GPA(100)); /* XD is an ordinary bit with EFER.NXE = 1 */
}

/* PAE paging: the PDPTEs are the ones loaded with CR3 (SDM 4.4.1), which the VM exit saved
 * in vmcs01's PDPTE fields (EPT on: 28.3.4); memory at CR3 may have changed since. */
static void test_pae(void)
{
    nh_setup(false);
    mode(MPAE, 0);
    map(2, 0x40201000, GPA(100), 1, P | W, P | W);
    map(2, 0xc0400000, 0x7fe00000, 2, P | W, P | W);
    gpa_u64(root)[1] = 0; /* memory at CR3 differs from the registers */
    OK(0x40201abc, false, GPA(100) + 0xabc);
    OK(0xc0412345, true, 0x7fe12345);
    FAULT(0x80000000, false, 0, "PDPTE register not present");
    FAULT(0x40202000, true, PF_W, "PAE PTE not present");
    uint64_t *pde = map(2, 0x40600000, 0x7fc00000, 2, P | W, P | W);
    *pde |= 1ull << 62; /* PAE entries: bits 62:MAXPHYADDR reserved (Table 4-10) */
    FAULT(0x40600000, false, PF_P | PF_RSVD, "PAE PDE bit 62");
}

static void test_32bit(void)
{
    nh_setup(false);
    mode(M32, 0);
    uint32_t *pd = gpa_ptr(root), *pt = gpa_ptr(GPA(60));
    pd[1] = (uint32_t)GPA(60) | P | W;
    pt[2] = (uint32_t)GPA(100) | P;
    OK(0x00402345, false, GPA(100) + 0x345);
    FAULT(0x00402345, true, PF_P | PF_W, "32-bit paging, read-only PTE");
    FAULT(0x00403000, false, 0, "32-bit PTE not present");
    FAULT(0x00800000, true, PF_W, "32-bit PDE not present");
    pd[3] = 0x7fc00000u | P | W | PS; /* 4 MiB page */
    OK(0x00cabcde, true, 0x7fcabcdeull);
    pd[1023] = (uint32_t)GPA(60) | P | W; /* the last entry: 4 bytes, the page after is not RAM */
    ram_hole = root + 4096;
    OK(0xffc02345, false, GPA(100) + 0x345);
    ram_hole = 0;
    /* without CR4.PSE the PS bit is ignored: the PDE points at a page table */
    fake_vmcs_set(GUEST_CR4, L1_CR4 & ~CR4_PAE);
    pd[6] = (uint32_t)GPA(60) | P | W | PS;
    OK(0x01802345, false, GPA(100) + 0x345);
    /* paging off: linear is physical, 32 bits */
    fake_vmcs_set(GUEST_CR0, L1_CR0 & ~CR0_PG);
    OK(0x12345678ull, true, 0x12345678ull);
}

/* 4 MiB pages above 4 GiB (PSE-36, SDM Table 4-4): PDE bits (M-20):13 are physical-address
 * bits (M-1):32, M = MIN(MAXPHYADDR, 40); bits 21:(M-19) are reserved. */
static void test_32bit_pse36(void)
{
    nh_setup(false);
    mode(M32, 0);
    uint32_t *pd = gpa_ptr(root);
    pd[4] = 0x7fc00000u | (0x15u << 13) | P | PS;
    OK(0x01012345, false, 0x157fc12345ull);
    pd[5] = 0x7fc00000u | (1u << 21) | P | PS;
    FAULT(0x01400000, false, PF_P | PF_RSVD, "4 MiB page bit 21");
    pd[5] = 0x7fc00000u | (1u << 20) | P | PS;
    FAULT(0x01400000, false, PF_P | PF_RSVD, "4 MiB page bit 20 (M = 39)");
    nv.phys_bits = 46; /* M = 40: bit 20 is an address bit */
    pd[5] = 0x7fc00000u | (0x81u << 13) | P | PS;
    OK(0x01400000, false, 0x817fc00000ull);
}

/* Paging structures in memory L1 cannot see (hv's) read as not present. */
static void test_hv_memory(void)
{
    nh_setup(false);
    mode(M64, 0);
    map(4, 0x1000, GPA(100), 1, P | W, P | W);
    ram_hole = gpa_u64(root)[0] & ~0xfffull; /* the PDPT */
    FAULT(0x1000, false, 0, "PDPT in hv's memory");
    ram_hole = 0;
    uint64_t *pdpte = gpa_u64(gpa_u64(root)[0] & ~0xfffull);
    pdpte[0] = (1ull << 38) | P | W; /* a page directory outside RAM */
    FAULT(0x1000, false, 0, "page directory outside RAM");
}

/* The accessed flag of every entry used, the dirty flag of the leaf on a write (SDM 4.8);
 * nothing for a walk that faults. */
static void test_accessed_dirty(void)
{
    nh_setup(false);
    mode(M64, 0);
    uint64_t *pte = map(4, 0x1000, GPA(100), 1, P | W, P | W);
    uint64_t *pml4e = &gpa_u64(root)[0], *pdpte = &gpa_u64(*pml4e & ~0xfffull)[0];
    uint64_t *pde = &gpa_u64(*pdpte & ~0xfffull)[0];
    FAULT(0x2000, false, 0, "PTE not present");
    CHECK(!(*pml4e & A) && !(*pde & A), "a faulting walk sets no accessed flag: %#llx %#llx", ULL(*pml4e),
          ULL(*pde));
    OK(0x1000, false, GPA(100));
    CHECK((*pml4e & A) && (*pdpte & A) && (*pde & A) && (*pte & A), "accessed: %#llx %#llx %#llx %#llx",
          ULL(*pml4e), ULL(*pdpte), ULL(*pde), ULL(*pte));
    CHECK(!(*pte & D) && !(*pde & D), "a read sets no dirty flag: %#llx", ULL(*pte));
    OK(0x1000, true, GPA(100));
    CHECK((*pte & D) && !(*pde & D) && !(*pml4e & D), "a write sets the leaf's dirty flag only: %#llx %#llx",
          ULL(*pte), ULL(*pde));
    uint64_t *big = map(4, 0x40000000, 0x40000000, 2, P | W, P | W);
    OK(0x40000000, true, 0x40000000);
    CHECK((*big & (A | D)) == (A | D), "2 MiB leaf: %#llx", ULL(*big));
    mode(M32, 0);
    uint32_t *pd = gpa_ptr(root), *pt = gpa_ptr(GPA(60));
    pd[1] = (uint32_t)GPA(60) | P | W;
    pt[2] = (uint32_t)GPA(100) | P | W;
    OK(0x00402000, true, GPA(100));
    CHECK((pd[1] & A) && !(pd[1] & D) && (pt[2] & (A | D)) == (A | D), "32-bit: PDE %#x PTE %#x", pd[1], pt[2]);
}

/* Supervisor-mode access prevention (SDM 4.6.1): with CR4.SMAP = 1 and RFLAGS.AC = 0, L1's
 * (supervisor) data accesses to a user-mode page fault with P = 1. */
static void test_smap(void)
{
    nh_setup(false);
    mode(M64, 0);
    map(4, 0x1000, GPA(100), 1, P | W | US, P | W | US); /* a user-mode page */
    map(4, 0x40000000, GPA(101), 1, P | W | US, P | W); /* U/S = 0 above: supervisor */
    OK(0x1000, false, GPA(100));
    fake_vmcs_set(GUEST_CR4, L1_CR4 | CR4_SMAP);
    FAULT(0x1000, false, PF_P, "SMAP read of a user page");
    FAULT(0x1000, true, PF_P | PF_W, "SMAP write of a user page");
    OK(0x40000000, true, GPA(101));
    fake_vmcs_set(GUEST_RFLAGS, 0x202 | EFLAGS_AC);
    OK(0x1000, true, GPA(100));
}

/* Copies: a fault on any page comes before anything is written (faults are restartable,
 * SDM 6.5); CR2 is the first byte of the page that faulted. */
static void test_copy(void)
{
    nh_setup(false);
    mode(M64, 0);
    map(4, 0x10000, GPA(100), 1, P | W, P | W);
    map(4, 0x11000, GPA(102), 1, P | W, P | W);
    memcpy(gpa_ptr(GPA(100) + 0xff8), "01234567", 8);
    memcpy(gpa_ptr(GPA(102)), "89abcdef", 8);
    char buf[17] = {0};
    regcache_reset(&rc);
    CHECK(guest_read(&nv, 0x10ff8, buf, 16) == 0 && !memcmp(buf, "0123456789abcdef", 16) && !inj.count,
          "read across pages: %s", buf);
    regcache_reset(&rc);
    CHECK(guest_write(&nv, 0x10ffc, "ABCDEFGH", 8) == 0 && !memcmp(gpa_ptr(GPA(100) + 0xff8), "0123ABCD", 8) &&
              !memcmp(gpa_ptr(GPA(102)), "EFGHcdef", 8), "write across pages");
    /* hv's memory: reads zeros, writes are dropped */
    map(4, 0x30000, GPA(106), 1, P | W, P | W);
    memset(gpa_ptr(GPA(106)), 0x77, 16);
    ram_hole = GPA(106);
    memset(&inj, 0, sizeof(inj));
    memset(buf, 0x55, 16);
    regcache_reset(&rc);
    CHECK(guest_read(&nv, 0x30000, buf, 16) == 0 && buf[0] == 0 && buf[15] == 0 && !inj.count, "hv's memory reads 0");
    regcache_reset(&rc);
    CHECK(guest_write(&nv, 0x30000, "xxxx", 4) == 0 && *(uint8_t *)gpa_ptr(GPA(106)) == 0x77 && !inj.count,
          "writes to hv's memory dropped");
    ram_hole = 0;
}

static void test_copy_fault(void)
{
    nh_setup(false);
    mode(M64, 0);
    char buf[8];
    map(4, 0x10000, GPA(100), 1, P | W, P | W);
    map(4, 0x20000, GPA(104), 1, P | W, P | W);
    memcpy(gpa_ptr(GPA(104) + 0xff8), "01234567", 8);
    memset(&inj, 0, sizeof(inj));
    regcache_reset(&rc);
    CHECK(guest_write(&nv, 0x20ffc, "ABCDEFGH", 8) == -1 && inj.count == 1 && inj.vector == 14 &&
              inj.error == PF_W && inj.cr2 == 0x21000, "write into a missing page: #PF %#x cr2 %#llx", inj.error,
          ULL(inj.cr2));
    CHECK(!memcmp(gpa_ptr(GPA(104) + 0xff8), "01234567", 8), "nothing written before the fault");
    uint64_t *pte = &gpa_u64(gpa_u64(gpa_u64(gpa_u64(root)[0] & ~0xfffull)[0] & ~0xfffull)[0] & ~0xfffull)[0x20];
    CHECK((*pte & ~0xfffull) == GPA(104) && !(*pte & (A | D)), "the first page's PTE %#llx: no accessed/dirty flag",
          ULL(*pte));
    memset(&inj, 0, sizeof(inj));
    regcache_reset(&rc);
    CHECK(guest_read(&nv, 0x20ffc, buf, 8) == -1 && inj.error == 0 && inj.cr2 == 0x21000, "read: #PF %#x cr2 %#llx",
          inj.error, ULL(inj.cr2));
    /* a read-only second page: the write faults with P = 1, the first page unchanged */
    map(4, 0x21000, GPA(105), 1, P, P | W);
    memset(&inj, 0, sizeof(inj));
    regcache_reset(&rc);
    CHECK(guest_write(&nv, 0x20ffc, "ABCDEFGH", 8) == -1 && inj.error == (PF_P | PF_W) && inj.cr2 == 0x21000 &&
              !memcmp(gpa_ptr(GPA(104) + 0xff8), "01234567", 8), "write into a read-only page: #PF %#x", inj.error);
}

/* Every loop is bounded: self-referencing tables end after the levels of the mode. */
static void test_bounded(void)
{
    nh_setup(false);
    mode(M64, 0);
    gpa_u64(root)[0] = root | P | W; /* the PML4 maps itself at every level */
    OK(0x0000000000000008ull, false, root + 8);
}

static void test_bounded32(void)
{
    nh_setup(false);
    mode(M32, 0);
    uint32_t *pd = gpa_ptr(root);
    pd[0] = (uint32_t)root | P | W;
    OK(0x00000004, false, root + 4);
}

int main(void)
{
    test_4level();
    test_write_protect();
    test_hv_memory();
    test_copy();
    test_bounded();
    test_not_present_before_rights();
    test_reserved_bits();
    test_32bit();
    test_32bit_pse36();
    test_bounded32();
    test_pae();
    test_accessed_dirty();
    test_smap();
    test_copy_fault();
    return test_summary();
}
