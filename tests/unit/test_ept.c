/* Host tests for vmx/ept.c: identity map, hidden hv ranges (not present, or mapped
 * read/execute-only to one hidden page), MTRR memory types, page sizes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/unit/test_util.h"
#include "vmx/ept.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)

/* ---- page allocator: host pages stand in for physical ones ---- */
#define MAX_PAGES 4096
static void *live[MAX_PAGES];
static unsigned nlive, nallocs;
static long fail_after = -1; /* allocations that succeed before NULL; -1 = never fail */

static void *alloc_page(void)
{
    if (fail_after >= 0 && nallocs >= (unsigned long)fail_after)
        return NULL;
    void *p = aligned_alloc(4096, 4096);
    if (!p || nlive == MAX_PAGES)
        abort();
    memset(p, 0, 4096);
    live[nlive++] = p;
    nallocs++;
    return p;
}

static void free_page(void *p)
{
    for (unsigned i = 0; i < nlive; i++)
        if (live[i] == p) {
            live[i] = live[--nlive];
            free(p);
            return;
        }
    abort(); /* double free or foreign pointer */
}

static void alloc_reset(long fail) { nallocs = 0; fail_after = fail; }

/* ---- MTRRs: default WB, PC-like fixed ranges, PCI hole UC, a WC frame buffer ---- */
static void mtrrs(struct mtrr_state *s, bool enabled)
{
    memset(s, 0, sizeof(*s));
    s->enabled = enabled;
    s->fixed_enabled = enabled;
    s->def_type = MT_WB;
    s->phys_bits = 39;
    for (unsigned i = 0; i < 88; i++)
        s->fixed[i] = i < 16 ? MT_WB : MT_UC;                        /* 0-9FFFF WB */
    for (unsigned i = 24; i < 32; i++)
        s->fixed[i] = MT_WP;                                          /* C0000-C7FFF */
    uint64_t pm = (1ull << 39) - 1;
    s->nvar = 3;
    s->var[0].base = 0xc0000000 | MT_UC;
    s->var[0].mask = (~(GiB - 1) & pm) | MTRR_PHYSMASK_VALID;
    s->var[1].base = 0x80000000 | MT_WC;
    s->var[1].mask = (~(256 * MiB - 1) & pm) | MTRR_PHYSMASK_VALID;
    s->var[2].base = 0x140000000 | MT_UC; /* 2M of UC in the middle of high RAM */
    s->var[2].mask = (~(2 * MiB - 1) & pm) | MTRR_PHYSMASK_VALID;
}

static const struct hv_mem_range map[] = {
    { 0, 0x9f000, HV_MEM_RAM, 0 },
    { 0x9f000, 0x61000, HV_MEM_RESERVED, 0 },
    { 0x100000, 0x6f00000, HV_MEM_RAM, 0 },
    { 0x7000000, 8 * MiB, HV_MEM_HV, 0 },          /* hv's region: 4 whole 2M pages */
    { 0x7800000, 0x1800123, HV_MEM_RAM, 0 },
    { 0x9000123, 0x2000, HV_MEM_HV, 0 },           /* unaligned: hides 0x9000000-0x9002fff */
    { 0x9002123, 0x76ffdedd, HV_MEM_RAM, 0 },
    { 0xe0000000, 256 * MiB, HV_MEM_MMIO, 0 },
    { 0xfec00000, 0x1000, HV_MEM_MMIO, 0 },
    { 0x100000000, 2 * GiB - 4096, HV_MEM_RAM, 0 }, /* top 6 GiB - 4K -> limit 6 GiB */
};
#define NMAP (sizeof(map) / sizeof(map[0]))

static bool expect_hidden(uint64_t page)
{
    for (unsigned i = 0; i < NMAP; i++)
        if (map[i].type == HV_MEM_HV && page < map[i].base + map[i].size && map[i].base < page + 4096)
            return true;
    return false;
}

/* Walks every 4K page of [0, limit) and checks it against the map and MTRRs. */
static void check_every_page(const struct ept *e, const struct mtrr_state *s, const char *what)
{
    unsigned bad = 0, hidden = 0;
    uint64_t first_bad = 0;
    for (uint64_t gpa = 0; gpa < e->limit; gpa += 4096) {
        int level = 0;
        uint64_t *p = ept_walk(e, gpa, &level);
        bool ok;
        if (expect_hidden(gpa)) {
            hidden++;
            ok = p && ept_is_hidden(e, gpa) && ept_is_hidden(e, gpa + 4095);
            if (e->hidden_page)
                /* R|X, no W, WB, ignore PAT, no large bit, the one hidden page. */
                ok = ok && level == 1 && *p == (e->hidden_page | EPT_R | EPT_X | EPT_MT(MT_WB) | EPT_IGNORE_PAT) &&
                     ept_hidden_leaf(e, gpa) == p && ept_hidden_leaf(e, gpa + 4095) == p;
            else
                ok = ok && !(*p & EPT_RWX) && ept_hidden_leaf(e, gpa) == NULL;
        } else {
            uint64_t sz = 1ull << (12 + 9 * (level - 1));
            ok = p && level >= 1 && level <= 3 && (*p & EPT_RWX) == EPT_RWX &&
                 (*p & EPT_ADDR_MASK & ~(sz - 1)) + (gpa & (sz - 1)) == gpa &&
                 (*p & EPT_ADDR_MASK & (sz - 1)) == 0 &&
                 ((*p & EPT_MT_MASK) >> EPT_MT_SHIFT) == (uint64_t)mtrr_type(s, gpa) &&
                 !(*p & EPT_IGNORE_PAT) && ((level == 1) == !(*p & EPT_LARGE)) &&
                 !ept_is_hidden(e, gpa) && ept_hidden_leaf(e, gpa) == NULL;
        }
        if (!ok && !bad++)
            first_bad = gpa;
    }
    CHECK(bad == 0, "%s: %u bad pages, first at %#llx", what, bad, (unsigned long long)first_bad);
    CHECK(hidden == 2048 + 3, "%s: %u hidden pages", what, hidden);
    CHECK(e->leaves_hidden == (e->hidden_page ? 2048 + 3 : 0), "%s: %llu hidden leaves", what,
          (unsigned long long)e->leaves_hidden);
    /* Nothing is mapped at or above the limit. */
    int level;
    uint64_t *p = ept_walk(e, e->limit, &level);
    CHECK(p && !(*p & EPT_RWX), "%s: limit %#llx mapped", what, (unsigned long long)e->limit);
}

static int level_of(const struct ept *e, uint64_t gpa)
{
    int level = 0;
    uint64_t *p = ept_walk(e, gpa, &level);
    return p && (*p & EPT_RWX) ? level : -level;
}

static int type_of(const struct ept *e, uint64_t gpa)
{
    int level;
    uint64_t *p = ept_walk(e, gpa, &level);
    return p ? (int)((*p & EPT_MT_MASK) >> EPT_MT_SHIFT) : -1;
}

static void test_build_1g(void)
{
    struct mtrr_state s;
    struct ept e = { 0 };
    mtrrs(&s, true);
    alloc_reset(-1);
    int rc = ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page);
    CHECK(rc == 0, "build rc %d", rc);
    CHECK(e.limit == 6 * GiB, "limit %#llx", (unsigned long long)e.limit);
    CHECK(e.pages_used == nallocs && nlive == nallocs, "pages_used %llu, allocs %u",
          (unsigned long long)e.pages_used, nallocs);
    CHECK(e.pages_used < 20, "%llu table pages", (unsigned long long)e.pages_used);
    CHECK(e.nhidden == 2, "nhidden %u", e.nhidden);
    CHECK((e.eptp & 0xfff) == 0x1e && (e.eptp & EPT_ADDR_MASK) == (uintptr_t)e.pml4, "eptp %#llx",
          (unsigned long long)e.eptp);
    check_every_page(&e, &s, "1g");

    CHECK(level_of(&e, 0) == 1 && level_of(&e, 0x1ff000) == 1, "first 2M split into 4K (fixed MTRRs)");
    CHECK(type_of(&e, 0xa0000) == MT_UC && type_of(&e, 0xc0000) == MT_WP && type_of(&e, 0) == MT_WB,
          "fixed-range types");
    CHECK(level_of(&e, 0x200000) == 2, "2M page after the first 2M");
    CHECK(level_of(&e, 0x7000000) == -2 && level_of(&e, 0x77ff000) == -2, "hidden 2M pages not present");
    CHECK(level_of(&e, 0x7800000) == 2, "RAM right after hv");
    CHECK(level_of(&e, 0x9000000) == -1 && level_of(&e, 0x9002000) == -1 && level_of(&e, 0x9003000) == 1,
          "unaligned hidden range rounded outwards to pages");
    CHECK(level_of(&e, 0x8fff000) == 2 && level_of(&e, 0x91ff000) == 1, "only the 2M holding the unaligned range is split");
    CHECK(level_of(&e, 1 * GiB) == 3 && type_of(&e, 1 * GiB) == MT_WB, "1G WB page");
    CHECK(level_of(&e, 3 * GiB) == 3 && type_of(&e, 0xfec00000) == MT_UC, "PCI hole: 1G UC page");
    CHECK(level_of(&e, 0x80000000) == 2 && type_of(&e, 0x80000000) == MT_WC, "WC 2M");
    CHECK(level_of(&e, 0x90000000) == 2 && type_of(&e, 0x90000000) == MT_WB, "WB after WC");
    CHECK(level_of(&e, 4 * GiB) == 3, "high RAM 1G");
    CHECK(level_of(&e, 5 * GiB) == 2 && type_of(&e, 5 * GiB) == MT_UC && type_of(&e, 5 * GiB + 2 * MiB) == MT_WB,
          "UC 2M inside high RAM splits its 1G");
    CHECK(e.leaves_1g == 3, "1G leaves %llu", (unsigned long long)e.leaves_1g);

    uint64_t eptp_ad = ept_make_eptp((uintptr_t)e.pml4, true);
    CHECK(eptp_ad == (e.eptp | EPTP_AD), "A/D eptp %#llx", (unsigned long long)eptp_ad);
    CHECK(ept_walk(&e, EPT_MAX_LIMIT, NULL) == NULL, "walk beyond 48 bits");
    ept_free(&e, free_page);
    CHECK(nlive == 0 && e.pml4 == NULL, "%u pages leaked by ept_free", nlive);
}

static void test_build_2m(void)
{
    struct mtrr_state s;
    struct ept e = { 0 };
    mtrrs(&s, true);
    alloc_reset(-1);
    CHECK(ept_build_identity(&e, map, NMAP, 0, &s, false, alloc_page) == 0, "build 2m");
    check_every_page(&e, &s, "2m");
    CHECK(e.leaves_1g == 0 && level_of(&e, 1 * GiB) == 2, "no 1G pages");
    CHECK(e.pages_used <= 2 + 6 + 4, "%llu table pages", (unsigned long long)e.pages_used);
    ept_free(&e, free_page);
    CHECK(nlive == 0, "%u pages leaked", nlive);
}

static void test_mtrr_disabled(void)
{
    struct mtrr_state s;
    struct ept e = { 0 };
    mtrrs(&s, false);
    alloc_reset(-1);
    CHECK(ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page) == 0, "build, MTRRs off");
    check_every_page(&e, &s, "disabled");
    CHECK(type_of(&e, 0) == MT_UC && level_of(&e, 0) == 2, "first 2M: one UC page, level %d", level_of(&e, 0));
    CHECK(level_of(&e, 1 * GiB) == 3 && type_of(&e, 4 * GiB) == MT_UC, "UC 1G pages");
    ept_free(&e, free_page);
}

static void test_alloc_failure(void)
{
    struct mtrr_state s;
    struct ept e = { 0 };
    mtrrs(&s, true);
    alloc_reset(-1);
    CHECK(ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page) == 0, "reference build");
    unsigned need = nallocs;
    ept_free(&e, free_page);
    unsigned wrong = 0;
    for (unsigned n = 0; n < need; n++) {
        alloc_reset(n);
        int rc = ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page);
        if (rc != -1 || e.eptp != 0 || e.pages_used != n)
            wrong++;
        ept_free(&e, free_page);
        if (nlive)
            wrong++;
    }
    CHECK(wrong == 0, "%u of %u failing builds misbehaved", wrong, need);
    alloc_reset(need);
    CHECK(ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page) == 0, "exactly enough pages");
    ept_free(&e, free_page);
}

static void test_limits_and_hidden(void)
{
    struct mtrr_state s;
    struct ept e = { 0 };
    mtrrs(&s, true);
    alloc_reset(-1);

    CHECK(ept_identity_limit(NULL, 0, 0) == 4 * GiB, "minimum limit 4G");
    CHECK(ept_identity_limit(map, NMAP, 9 * GiB + 1) == 10 * GiB, "explicit limit rounds up");
    CHECK(ept_build_identity(&e, NULL, 0, 0, &s, true, alloc_page) == 0 && e.limit == 4 * GiB, "empty map");
    CHECK(level_of(&e, 0x7000000) == 2 && !ept_is_hidden(&e, 0x7000000), "nothing hidden");
    ept_free(&e, free_page);

    /* Beyond MAXPHYADDR (39 bits = 512 GiB) the entries would be misconfigured. */
    struct hv_mem_range far = { 600 * GiB, 4096, HV_MEM_MMIO, 0 };
    CHECK(ept_build_identity(&e, &far, 1, 0, &s, true, alloc_page) == -1 && nlive == 0, "limit > MAXPHYADDR");
    CHECK(ept_build_identity(&e, map, NMAP, 0, NULL, true, alloc_page) == -1, "no MTRR state");

    /* Nine disjoint hidden ranges do not fit; nine touching ones merge into one. */
    struct hv_mem_range h[10];
    for (unsigned i = 0; i < 9; i++)
        h[i] = (struct hv_mem_range){ (i + 1) * 64 * MiB, 4096, HV_MEM_HV, 0 };
    CHECK(ept_build_identity(&e, h, 9, 0, &s, true, alloc_page) == -1 && nlive == 0, "9 disjoint hidden");
    for (unsigned i = 0; i < 9; i++)
        h[i] = (struct hv_mem_range){ 64 * MiB + (8 - i) * 4096, 4096, HV_MEM_HV, 0 };
    h[9] = (struct hv_mem_range){ 64 * MiB + 2 * 4096, 0x10, HV_MEM_HV, 0 }; /* overlapping */
    CHECK(ept_build_identity(&e, h, 10, 0, &s, true, alloc_page) == 0, "9 touching hidden");
    CHECK(e.nhidden == 1 && e.hidden[0].base == 64 * MiB && e.hidden[0].end == 64 * MiB + 9 * 4096,
          "merged into [%#llx, %#llx)", (unsigned long long)e.hidden[0].base, (unsigned long long)e.hidden[0].end);
    CHECK(level_of(&e, 64 * MiB + 8 * 4096) == -1 && level_of(&e, 64 * MiB + 9 * 4096) == 1, "merged edges");
    ept_free(&e, free_page);

    /* A hidden range covering a whole GiB leaves the PDPTE not present. */
    struct hv_mem_range g = { 1 * GiB, 1 * GiB, HV_MEM_HV, 0 };
    CHECK(ept_build_identity(&e, &g, 1, 0, &s, true, alloc_page) == 0, "hidden GiB");
    CHECK(level_of(&e, 1 * GiB) == -3 && level_of(&e, 2 * GiB) == 2, "hidden GiB not present");
    ept_free(&e, free_page);
    CHECK(nlive == 0, "%u pages leaked", nlive);
}

#define HIDDEN_PAGE 0x7001000ull /* a page of hv's own region, as hv would pick */

/* Non-hidden pages map exactly as in the not-present build: same entry, same level. */
static void check_same_outside_hidden(const struct ept *a, const struct ept *b, const char *what)
{
    unsigned bad = 0;
    uint64_t first_bad = 0;
    for (uint64_t gpa = 0; gpa < a->limit; gpa += 4096) {
        if (expect_hidden(gpa))
            continue;
        int la = 0, lb = 0;
        uint64_t *pa = ept_walk(a, gpa, &la), *pb = ept_walk(b, gpa, &lb);
        if (!pa || !pb || la != lb || *pa != *pb)
            if (!bad++)
                first_bad = gpa;
    }
    CHECK(bad == 0, "%s: %u pages differ from the not-present build, first at %#llx", what, bad,
          (unsigned long long)first_bad);
}

static void test_hidden_page(void)
{
    struct mtrr_state s;
    for (int mode = 0; mode < 3; mode++) {
        const char *what = mode == 0 ? "hp 1g" : mode == 1 ? "hp 2m" : "hp disabled";
        bool use_1g = mode != 1;
        mtrrs(&s, mode != 2);
        alloc_reset(-1);
        struct ept ref = { 0 }, e = { 0 };
        CHECK(ept_build_identity(&ref, map, NMAP, 0, &s, use_1g, alloc_page) == 0, "%s: reference", what);
        e.hidden_page = HIDDEN_PAGE;
        CHECK(ept_build_identity(&e, map, NMAP, 0, &s, use_1g, alloc_page) == 0, "%s: build", what);
        CHECK(e.hidden_page == HIDDEN_PAGE, "%s: hidden_page kept across the build", what);
        check_every_page(&e, &s, what);
        check_same_outside_hidden(&e, &ref, what);
        /* 8 MiB of hv = four hidden 2M pages, each now one PT; the unaligned
         * range's 2M was split already. */
        CHECK(e.pages_used == ref.pages_used + 4, "%s: %llu table pages vs %llu", what,
              (unsigned long long)e.pages_used, (unsigned long long)ref.pages_used);
        CHECK(e.leaves_1g == ref.leaves_1g && e.leaves_2m == ref.leaves_2m && e.leaves_4k == ref.leaves_4k,
              "%s: identity leaf counts changed", what);
        CHECK(level_of(&e, 0x7000000) == 1 && level_of(&e, 0x77ff000) == 1 && level_of(&e, 0x9002000) == 1,
              "%s: hidden pages are 4K leaves", what);
        CHECK(type_of(&e, 0x7000000) == MT_WB, "%s: hidden leaf WB", what);
        CHECK(e.eptp == ept_make_eptp((uintptr_t)e.pml4, false), "%s: eptp", what);
        ept_free(&ref, free_page);
        ept_free(&e, free_page);
        CHECK(nlive == 0, "%s: %u pages leaked", what, nlive);
    }

    /* Retargeting one hidden leaf (hv: single-step a dropped write into a scratch page). */
    struct ept e = { .hidden_page = HIDDEN_PAGE };
    mtrrs(&s, true);
    alloc_reset(-1);
    CHECK(ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page) == 0, "retarget build");
    uint64_t *leaf = ept_hidden_leaf(&e, 0x7123456);
    CHECK(leaf && *leaf == (HIDDEN_PAGE | EPT_HIDDEN_LEAF), "hidden leaf %p", (void *)leaf);
    CHECK(!(EPT_HIDDEN_LEAF & EPT_W) && (EPT_HIDDEN_LEAF & EPT_R) && (EPT_HIDDEN_LEAF & EPT_X),
          "EPT_HIDDEN_LEAF is R|X");
    int level = 0;
    CHECK(ept_walk(&e, 0x7123000, &level) == leaf && level == 1, "leaf is the walk's PTE");
    CHECK(ept_hidden_leaf(&e, 0x7124000) != leaf && ept_hidden_leaf(&e, 0x7122fff) != leaf,
          "one leaf per page");
    uint64_t scratch = 0x12345000;
    *leaf = scratch | EPT_HIDDEN_LEAF | EPT_W;
    CHECK((*ept_walk(&e, 0x7123fff, NULL) & EPT_ADDR_MASK) == scratch, "retargeted");
    CHECK((*ept_walk(&e, 0x7124000, NULL) & EPT_ADDR_MASK) == HIDDEN_PAGE, "neighbour untouched");
    CHECK(ept_hidden_leaf(&e, 0x7123000) == leaf, "retargeted leaf still found");
    *leaf = HIDDEN_PAGE | EPT_HIDDEN_LEAF;
    CHECK(ept_hidden_leaf(&e, 0x6fff000) == NULL && ept_hidden_leaf(&e, 0x7800000) == NULL &&
          ept_hidden_leaf(&e, 0x9003000) == NULL && ept_hidden_leaf(&e, EPT_MAX_LIMIT) == NULL,
          "no hidden leaf outside hidden ranges");
    ept_free(&e, free_page);
    CHECK(ept_hidden_leaf(&e, 0x7123000) == NULL, "no hidden leaf without tables");

    /* Not-present mode: no leaf to retarget. */
    e.hidden_page = 0;
    CHECK(ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page) == 0, "np build");
    CHECK(ept_hidden_leaf(&e, 0x7123000) == NULL && ept_hidden_leaf(&e, 0x9000000) == NULL,
          "no hidden leaf in not-present mode");
    ept_free(&e, free_page);

    /* A bad hidden page is refused. */
    e.hidden_page = HIDDEN_PAGE + 8;
    CHECK(ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page) == -1 && e.eptp == 0, "unaligned hidden page");
    ept_free(&e, free_page);
    e.hidden_page = 1ull << 39; /* MAXPHYADDR 39 */
    CHECK(ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page) == -1, "hidden page beyond MAXPHYADDR");
    ept_free(&e, free_page);
    e.hidden_page = (1ull << 39) - 4096;
    CHECK(ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page) == 0, "highest hidden page");
    ept_free(&e, free_page);

    /* A fully hidden GiB is built down to 512 PTs. */
    struct hv_mem_range g = { 1 * GiB, 1 * GiB, HV_MEM_HV, 0 };
    e.hidden_page = HIDDEN_PAGE;
    CHECK(ept_build_identity(&e, &g, 1, 0, &s, true, alloc_page) == 0, "hp hidden GiB");
    CHECK(e.leaves_hidden == 512 * 512 && level_of(&e, 1 * GiB) == 1 && level_of(&e, 2 * GiB - 4096) == 1 &&
          (*ept_walk(&e, 1 * GiB + 5 * MiB, NULL) & EPT_ADDR_MASK) == HIDDEN_PAGE && level_of(&e, 2 * GiB) == 2,
          "hidden GiB as 4K leaves");
    CHECK(e.pages_used < 1 + 1 + 4 + 2 + 1 + 512 + 4, "%llu table pages", (unsigned long long)e.pages_used);
    ept_free(&e, free_page);

    /* Allocation failures with hidden_page behave like without. */
    e.hidden_page = HIDDEN_PAGE;
    alloc_reset(-1);
    CHECK(ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page) == 0, "hp reference build");
    unsigned need = nallocs, wrong = 0;
    ept_free(&e, free_page);
    for (unsigned n = 0; n < need; n++) {
        alloc_reset(n);
        e.hidden_page = HIDDEN_PAGE;
        int rc = ept_build_identity(&e, map, NMAP, 0, &s, true, alloc_page);
        if (rc != -1 || e.eptp != 0 || e.pages_used != n)
            wrong++;
        ept_free(&e, free_page);
        if (nlive)
            wrong++;
    }
    CHECK(wrong == 0, "hp: %u of %u failing builds misbehaved", wrong, need);
    alloc_reset(-1);
    CHECK(nlive == 0, "%u pages leaked", nlive);
}

/* ---- EPT01 over the whole physical-address width (a 64-bit BAR placed high) ---- */

/* A server-like layout: default UC, RAM WB below 8 GiB, MAXPHYADDR bits. */
static void mtrrs_high(struct mtrr_state *s, unsigned bits)
{
    memset(s, 0, sizeof(*s));
    s->enabled = true;
    s->def_type = MT_UC;
    s->phys_bits = (uint8_t)bits;
    uint64_t pm = (1ull << bits) - 1;
    s->nvar = 2;
    s->var[0].base = 0 | MT_WB;
    s->var[0].mask = (~(4 * GiB - 1) & pm) | MTRR_PHYSMASK_VALID;
    s->var[1].base = 4 * GiB | MT_WB;
    s->var[1].mask = (~(4 * GiB - 1) & pm) | MTRR_PHYSMASK_VALID;
}

static void test_full_width(void)
{
    CHECK(ept_full_limit(46, true, 128) == 1ull << 46, "46 bits, 1G: %#llx", (unsigned long long)ept_full_limit(46, true, 128));
    CHECK(ept_full_limit(40, true, 2) == 1ull << 40, "40 bits (Bochs): 1 TiB");
    CHECK(ept_full_limit(52, true, 512) == 1ull << 48, "52 bits: what a 4-level walk reaches, 2^48");
    CHECK(ept_full_limit(0, true, 1) == 1ull << 36, "no CPUID leaf: 36 bits");
    CHECK(ept_full_limit(46, true, 32) == 1ull << 44, "page budget halves the width: %#llx",
          (unsigned long long)ept_full_limit(46, true, 32));
    CHECK(ept_full_limit(46, false, 64) == 64 * GiB, "2M leaves: one PD per GiB");
    CHECK(ept_full_limit(46, false, 0) == 4 * GiB, "never below 4 GiB");

    struct mtrr_state s;
    mtrrs_high(&s, 46);
    static const struct hv_mem_range m[] = {
        { 0, 0x7000000, HV_MEM_RAM, 0 },
        { 0x7000000, 8 * MiB, HV_MEM_HV, 0 },
        { 0x7800000, 0x78800000, HV_MEM_RAM, 0 },
        { 4 * GiB, 4 * GiB, HV_MEM_RAM, 0 },
    };
    struct ept e = { .hidden_page = HIDDEN_PAGE };
    alloc_reset(-1);
    int rc = ept_build_identity(&e, m, 4, ept_full_limit(46, true, 128), &s, true, alloc_page);
    CHECK(rc == 0 && e.limit == 1ull << 46, "build to 2^46: rc %d limit %#llx", rc, (unsigned long long)e.limit);
    uint64_t bar = (1ull << 45) + 0x1234000; /* a 64-bit BAR the firmware placed high */
    int level = 0;
    uint64_t *p = ept_walk(&e, bar, &level);
    CHECK(p && level == 3 && (*p & EPT_RWX) == EPT_RWX && (*p & EPT_ADDR_MASK) == (bar & ~(GiB - 1)) &&
              ((*p & EPT_MT_MASK) >> EPT_MT_SHIFT) == MT_UC,
          "high BAR: identity, 1G, UC (level %d, entry %#llx)", level, p ? (unsigned long long)*p : 0ull);
    p = ept_walk(&e, (1ull << 46) - 4096, &level);
    CHECK(p && (*p & EPT_RWX) == EPT_RWX && level == 3, "last GiB below 2^46 mapped");
    CHECK(type_of(&e, 6 * GiB) == MT_WB && type_of(&e, 9 * GiB) == MT_UC, "MTRR types: RAM WB, above it UC");
    p = ept_walk(&e, 1ull << 46, &level);
    CHECK(p && !(*p & EPT_RWX), "nothing at 2^46");
    /* PML4, 128 PDPTs, the low 4 GiB's PDs and PTs (hv's 8 MiB: 4 PTs). */
    CHECK(e.pages_used <= 1 + 128 + 4 + 8, "%llu table pages for 64 TiB", (unsigned long long)e.pages_used);
    ept_free(&e, free_page);

    /* MAXPHYADDR 52: 2^48 (512 PDPTs). */
    mtrrs_high(&s, 52);
    e.hidden_page = HIDDEN_PAGE;
    CHECK(ept_build_identity(&e, m, 4, ept_full_limit(52, true, 512), &s, true, alloc_page) == 0 &&
              e.limit == EPT_MAX_LIMIT,
          "build to 2^48: limit %#llx", (unsigned long long)e.limit);
    CHECK(level_of(&e, EPT_MAX_LIMIT - GiB) == 3 && e.pages_used <= 1 + 512 + 4 + 8, "%llu table pages for 256 TiB",
          (unsigned long long)e.pages_used);
    ept_free(&e, free_page);
    CHECK(nlive == 0, "%u pages leaked", nlive);
}

/* ---- per-CPU clones: their own path to hv's pages, everything else shared ---- */

static void test_clone(void)
{
    struct mtrr_state s;
    mtrrs(&s, true);
    alloc_reset(-1);
    struct ept base = { .hidden_page = HIDDEN_PAGE }, c0, c1;
    CHECK(ept_build_identity(&base, map, NMAP, 0, &s, true, alloc_page) == 0, "clone: base");
    unsigned before = nlive;
    CHECK(ept_clone_hidden(&c0, &base, alloc_page) == 0 && ept_clone_hidden(&c1, &base, alloc_page) == 0, "two clones");
    /* hv's 8 MiB (4 PTs) and the unaligned range (1 PT) share one PD: PML4 + PDPT + PD + 5 PT. */
    CHECK(c0.pages_used == 8 && c1.pages_used == 8 && nlive == before + 16, "clone pages %llu, %llu",
          (unsigned long long)c0.pages_used, (unsigned long long)c1.pages_used);
    CHECK(c0.eptp == ept_make_eptp((uintptr_t)c0.pml4, false) && c0.eptp != base.eptp && c1.eptp != c0.eptp,
          "own EPTPs");
    CHECK(c0.limit == base.limit && c0.nhidden == base.nhidden && c0.hidden_page == base.hidden_page, "same map");
    /* Every page translates exactly as in base. */
    unsigned bad = 0;
    for (uint64_t gpa = 0; gpa < base.limit; gpa += 4096) {
        int lb = 0, lc = 0;
        uint64_t *pb = ept_walk(&base, gpa, &lb), *pc = ept_walk(&c0, gpa, &lc);
        if (!pb || !pc || lb != lc || *pb != *pc)
            bad++;
    }
    CHECK(bad == 0, "%u pages differ between base and clone", bad);
    /* Hidden leaves are per clone; other tables are shared. */
    uint64_t *lb = ept_hidden_leaf(&base, 0x7123000), *l0 = ept_hidden_leaf(&c0, 0x7123000),
             *l1 = ept_hidden_leaf(&c1, 0x7123000);
    CHECK(lb && l0 && l1 && lb != l0 && l0 != l1 && lb != l1, "three distinct hidden leaves");
    CHECK(ept_hidden_leaf(&c0, 0x9001000) && ept_hidden_leaf(&c0, 0x9001000) != ept_hidden_leaf(&base, 0x9001000),
          "unaligned range's leaf cloned too");
    int level;
    CHECK(ept_walk(&c0, 0x1000, &level) == ept_walk(&base, 0x1000, &level) && level == 1,
          "the first 2M's PT (fixed MTRRs, no hv page) is shared");
    CHECK(ept_walk(&c0, 0x200000, NULL) != ept_walk(&base, 0x200000, NULL), "the PD holding hv's pages is copied");
    CHECK(ept_walk(&c0, 1 * GiB, &level) != ept_walk(&base, 1 * GiB, NULL) && level == 3, "the PDPT is copied");
    CHECK(ept_walk(&c0, 5 * GiB + 4 * MiB, &level) == ept_walk(&base, 5 * GiB + 4 * MiB, NULL) && level == 2,
          "the PD of another GiB is shared");
    *l0 = 0x12345000 | EPT_HIDDEN_LEAF | EPT_W;
    CHECK(*lb == (HIDDEN_PAGE | EPT_HIDDEN_LEAF) && *l1 == (HIDDEN_PAGE | EPT_HIDDEN_LEAF),
          "retargeting cpu0's leaf leaves base and cpu1 read-only");
    *l0 = HIDDEN_PAGE | EPT_HIDDEN_LEAF;
    ept_free_clone(&c1, &base, free_page);
    CHECK(nlive == before + 8 && c1.pml4 == NULL && c1.eptp == 0, "freeing one clone frees its 8 pages only");
    CHECK(*ept_walk(&c0, 0x7000000, NULL) == (HIDDEN_PAGE | EPT_HIDDEN_LEAF), "other clone intact");
    ept_free_clone(&c0, &base, free_page);
    CHECK(nlive == before, "clones freed");

    /* Allocation failure at every step: -1, eptp 0, nothing leaked, base untouched. */
    unsigned wrong = 0;
    for (long n = 0; n < 8; n++) {
        alloc_reset(n);
        if (ept_clone_hidden(&c0, &base, alloc_page) != -1 || c0.eptp != 0 || c0.pages_used != (uint64_t)n)
            wrong++;
        ept_free_clone(&c0, &base, free_page);
        if (nlive != before)
            wrong++;
    }
    CHECK(wrong == 0, "%u of 8 failing clones misbehaved", wrong);
    alloc_reset(-1);
    struct ept none = { 0 };
    CHECK(ept_clone_hidden(&c0, &none, alloc_page) == -1, "clone of nothing");
    ept_free(&base, free_page);
    CHECK(nlive == 0, "%u pages leaked", nlive);
}

int main(void)
{
    test_build_1g();
    test_build_2m();
    test_mtrr_disabled();
    test_alloc_failure();
    test_limits_and_hidden();
    test_hidden_page();
    test_full_width();
    test_clone();
    return test_summary();
}
