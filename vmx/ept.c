/* EPT01 identity map (SDM Vol. 3C 29.3). Freestanding: no libc beyond <string.h>. */
#include "ept.h"
#include <stddef.h>
#include <string.h>

/* Host memory is identity-mapped, so a table's physical address is its pointer. */
static uint64_t *table_of(uint64_t entry) { return (uint64_t *)(uintptr_t)(entry & EPT_ADDR_MASK); }

/* Bytes one entry maps at level 1 (PTE) .. 4 (PML4E). */
static uint64_t level_size(int level) { return 1ull << (12 + 9 * (level - 1)); }

/* An entry is not present when bits 2:0 are all clear (29.3.2). */
static bool present(uint64_t entry) { return entry & EPT_RWX; }

/* Leaves: bit 7 set in a PDPTE/PDE, any present PTE (tables 29-2, 29-4, 29-6). */
static bool is_leaf(uint64_t entry, int level) { return level == 1 || (entry & EPT_LARGE); }

uint64_t ept_identity_limit(const struct hv_mem_range *mem, unsigned nmem, uint64_t min_limit)
{
    /* 4 GiB at least: the legacy MMIO below 4 GiB (APIC, IOAPIC, HPET, flash)
     * is often missing from the firmware's memory map. */
    uint64_t top = min_limit > (4ull << 30) ? min_limit : 4ull << 30;
    for (unsigned i = 0; i < nmem; i++) {
        if (!mem[i].size)
            continue;
        uint64_t end = mem[i].size > UINT64_MAX - mem[i].base ? UINT64_MAX : mem[i].base + mem[i].size;
        if (end > top)
            top = end;
    }
    if (top > UINT64_MAX - (EPT_PAGE_1G - 1))
        return UINT64_MAX;
    return (top + EPT_PAGE_1G - 1) & ~(EPT_PAGE_1G - 1);
}

/* Adds [base, end) to the sorted list of hidden ranges, merging it with every
 * range it overlaps or touches, so "inside one range" means "fully hidden". */
static int add_hidden(struct ept *e, uint64_t base, uint64_t end)
{
    unsigned n = 0;
    struct ept_range keep[EPT_MAX_HIDDEN];
    for (unsigned i = 0; i < e->nhidden; i++) {
        struct ept_range r = e->hidden[i];
        if (r.base <= end && base <= r.end) {
            base = r.base < base ? r.base : base;
            end = r.end > end ? r.end : end;
        } else {
            keep[n++] = r;
        }
    }
    if (n == EPT_MAX_HIDDEN)
        return -1;
    unsigned pos = 0;
    while (pos < n && keep[pos].base < base)
        pos++;
    for (unsigned i = 0; i < pos; i++)
        e->hidden[i] = keep[i];
    e->hidden[pos] = (struct ept_range){ base, end };
    for (unsigned i = pos; i < n; i++)
        e->hidden[i + 1] = keep[i];
    e->nhidden = n + 1;
    return 0;
}

bool ept_is_hidden(const struct ept *e, uint64_t gpa)
{
    for (unsigned i = 0; i < e->nhidden; i++)
        if (gpa >= e->hidden[i].base && gpa < e->hidden[i].end)
            return true;
    return false;
}

enum overlap { NONE, PARTIAL, FULL };

static enum overlap hidden_overlap(const struct ept *e, uint64_t base, uint64_t end)
{
    enum overlap o = NONE;
    for (unsigned i = 0; i < e->nhidden; i++) {
        const struct ept_range *r = &e->hidden[i];
        if (r->base <= base && end <= r->end)
            return FULL;
        if (r->base < end && base < r->end)
            o = PARTIAL;
    }
    return o;
}

struct build {
    struct ept *e;
    const struct mtrr_state *mtrr;
    bool use_1g;
    void *(*alloc_page)(void);
};

/* Allocates a table and links it into *slot before it is filled, so that the
 * tree stays walkable (and freeable) whatever happens next. */
static uint64_t *new_table(struct build *b, uint64_t *slot)
{
    uint64_t *t = b->alloc_page();
    if (!t)
        return NULL;
    b->e->pages_used++;
    if ((uintptr_t)t & (EPT_PAGE_4K - 1))
        return NULL; /* the allocator broke its contract; the page is lost */
    if (slot)
        *slot = (uint64_t)(uintptr_t)t | EPT_RWX; /* bits 7:3 reserved in non-leaves */
    return t;
}

/*
 * Fills the table at `level` that maps [base, base + 512 * level_size(level)).
 * Each entry becomes: nothing (beyond the limit, or fully hidden with no
 * hidden_page), a leaf when its range is one MTRR type and touches no hidden
 * page, a hidden_page leaf for a hidden PTE, else a table.
 * An identity leaf's type is the MTRR type and ignore-PAT stays clear, so the
 * effective type is combined with the guest's PAT as on bare metal (29.3.7.2).
 * A hidden_page leaf is WB with ignore-PAT: hv's page, seen as hv sees it.
 */
static int fill(struct build *b, uint64_t *table, int level, uint64_t base)
{
    struct ept *e = b->e;
    uint64_t size = level_size(level);
    for (unsigned i = 0; i < 512; i++) {
        uint64_t a = base + i * size;
        if (a >= e->limit)
            break;
        if (level <= 3) {
            /* limit is 1 GiB aligned, so [a, a + size) is below it. */
            enum overlap h = hidden_overlap(e, a, a + size);
            if (h == FULL && !e->hidden_page)
                continue;
            if (h == NONE && (level < 3 || b->use_1g)) {
                int mt = level == 1 ? mtrr_type(b->mtrr, a) : mtrr_range_type(b->mtrr, a, size);
                if (mt >= 0) {
                    table[i] = a | EPT_RWX | EPT_MT(mt) | (level > 1 ? EPT_LARGE : 0);
                    if (level == 3)
                        e->leaves_1g++;
                    else if (level == 2)
                        e->leaves_2m++;
                    else
                        e->leaves_4k++;
                    continue;
                }
            }
            /* Hidden ranges are page aligned, so a PTE is never PARTIAL, and a
             * single 4 KiB page always has one MTRR type; if that ever broke,
             * not present is the safe answer. */
            if (level == 1) {
                if (h == FULL) {
                    table[i] = e->hidden_page | EPT_HIDDEN_LEAF;
                    e->leaves_hidden++;
                }
                continue;
            }
        }
        uint64_t *sub = new_table(b, &table[i]);
        if (!sub || fill(b, sub, level - 1, a) < 0)
            return -1;
    }
    return 0;
}

int ept_build_identity(struct ept *e, const struct hv_mem_range *mem, unsigned nmem,
                       uint64_t limit, const struct mtrr_state *mtrr, bool use_1g,
                       void *(*alloc_page)(void))
{
    uint64_t hidden_page = e->hidden_page; /* an input: survives the reset */
    memset(e, 0, sizeof(*e));
    e->hidden_page = hidden_page;
    if (!mtrr || !alloc_page || (nmem && !mem))
        return -1;
    e->limit = ept_identity_limit(mem, nmem, limit);
    unsigned pb = mtrr->phys_bits == 0 ? 36 : mtrr->phys_bits > 52 ? 52 : mtrr->phys_bits;
    /* Addresses beyond MAXPHYADDR in an entry are an EPT misconfiguration (29.3.3.1). */
    if (e->limit > EPT_MAX_LIMIT || e->limit > (1ull << pb))
        return -1;
    if ((hidden_page & (EPT_PAGE_4K - 1)) || hidden_page >= (1ull << pb))
        return -1;

    for (unsigned i = 0; i < nmem; i++) {
        if (mem[i].type != HV_MEM_HV || !mem[i].size)
            continue;
        /* Round outwards: a page holding any byte of hv is hidden whole. */
        uint64_t end = mem[i].size > UINT64_MAX - mem[i].base ? UINT64_MAX : mem[i].base + mem[i].size;
        end = end > UINT64_MAX - (EPT_PAGE_4K - 1) ? UINT64_MAX & ~(EPT_PAGE_4K - 1)
                                                  : (end + EPT_PAGE_4K - 1) & ~(EPT_PAGE_4K - 1);
        if (add_hidden(e, mem[i].base & ~(EPT_PAGE_4K - 1), end) < 0)
            return -1;
    }

    struct build b = { e, mtrr, use_1g, alloc_page };
    e->pml4 = new_table(&b, NULL);
    if (!e->pml4 || fill(&b, e->pml4, 4, 0) < 0)
        return -1;
    /* A/D flags are left off; the caller ORs in EPTP_AD if the CPU has them. */
    e->eptp = ept_make_eptp((uint64_t)(uintptr_t)e->pml4, false);
    return 0;
}

uint64_t ept_full_limit(unsigned phys_bits, bool use_1g, uint64_t max_pages)
{
    unsigned bits = phys_bits == 0 ? 36 : phys_bits > 48 ? 48 : phys_bits < 32 ? 32 : phys_bits;
    uint64_t limit = 1ull << bits;
    uint64_t per_page = use_1g ? level_size(4) : level_size(3); /* a PDPT of 1G leaves, a PD of 2M */
    while (limit > (4ull << 30) && (limit + per_page - 1) / per_page > max_pages)
        limit >>= 1;
    return limit;
}

/* Copies table src (at `level`, mapping from base) into a new page linked into *slot
 * first, then, below it, every table whose range touches a hidden range. */
static int clone_table(struct ept *c, const uint64_t *src, int level, uint64_t base, uint64_t *slot,
                       void *(*alloc_page)(void))
{
    uint64_t *t = alloc_page();
    if (!t)
        return -1;
    c->pages_used++;
    if ((uintptr_t)t & (EPT_PAGE_4K - 1))
        return -1; /* the allocator broke its contract; the page is lost */
    memcpy(t, src, EPT_PAGE_4K);
    if (slot)
        *slot = (uint64_t)(uintptr_t)t | (*slot & ~EPT_ADDR_MASK);
    else
        c->pml4 = t;
    uint64_t size = level_size(level);
    for (unsigned i = 0; level > 1 && i < 512; i++) {
        uint64_t a = base + i * size;
        if (!present(t[i]) || is_leaf(t[i], level) || hidden_overlap(c, a, a + size) == NONE)
            continue;
        if (clone_table(c, table_of(src[i]), level - 1, a, &t[i], alloc_page) < 0)
            return -1;
    }
    return 0;
}

int ept_clone_hidden(struct ept *clone, const struct ept *base, void *(*alloc_page)(void))
{
    *clone = *base;
    clone->pml4 = NULL;
    clone->eptp = 0;
    clone->pages_used = 0;
    if (!base->pml4 || !alloc_page || clone_table(clone, base->pml4, 4, 0, NULL, alloc_page) < 0)
        return -1;
    clone->eptp = ept_make_eptp((uint64_t)(uintptr_t)clone->pml4, false);
    return 0;
}

uint64_t *ept_walk(const struct ept *e, uint64_t gpa, int *level)
{
    if (!e->pml4 || gpa >= EPT_MAX_LIMIT)
        return NULL;
    uint64_t *t = e->pml4;
    for (int l = 4;; l--) {
        uint64_t *entry = &t[(gpa >> (12 + 9 * (l - 1))) & 511];
        if (!present(*entry) || is_leaf(*entry, l)) {
            if (level)
                *level = l;
            return entry;
        }
        t = table_of(*entry);
    }
}

int ept_write_protect_4k(struct ept *e, uint64_t gpa, void *(*alloc_page)(void))
{
    int level;
    uint64_t *entry;
    while ((entry = ept_walk(e, gpa, &level)) && present(*entry) && level > 1) {
        /* A large leaf: the same mapping in 512 smaller leaves of the same type. */
        uint64_t *t = alloc_page();
        if (!t)
            return -1;
        e->pages_used++;
        uint64_t size = level_size(level - 1), attr = *entry & ~EPT_ADDR_MASK & ~(uint64_t)EPT_LARGE;
        uint64_t base = *entry & EPT_ADDR_MASK & ~(level_size(level) - 1);
        for (unsigned i = 0; i < 512; i++)
            t[i] = (base + i * size) | attr | (level - 1 > 1 ? EPT_LARGE : 0);
        *entry = (uint64_t)(uintptr_t)t | EPT_RWX;
    }
    if (!entry || !present(*entry))
        return -1;
    *entry &= ~(uint64_t)EPT_W;
    return 0;
}

uint64_t *ept_hidden_leaf(const struct ept *e, uint64_t gpa)
{
    if (!e->hidden_page || !ept_is_hidden(e, gpa))
        return NULL;
    int level;
    uint64_t *p = ept_walk(e, gpa, &level);
    return p && level == 1 && present(*p) ? p : NULL;
}

static void free_table(uint64_t *t, int level, void (*free_page)(void *))
{
    for (unsigned i = 0; level > 1 && i < 512; i++)
        if (present(t[i]) && !is_leaf(t[i], level))
            free_table(table_of(t[i]), level - 1, free_page);
    free_page(t);
}

void ept_free(struct ept *e, void (*free_page)(void *))
{
    if (e->pml4)
        free_table(e->pml4, 4, free_page);
    e->pml4 = NULL;
    e->eptp = 0;
    e->pages_used = 0;
}

/* Frees the tables of c that are not base's (b: the table at the same place in base, or NULL). */
static void free_diff(uint64_t *c, const uint64_t *b, int level, void (*free_page)(void *))
{
    for (unsigned i = 0; level > 1 && i < 512; i++) {
        if (!present(c[i]) || is_leaf(c[i], level) || (b && c[i] == b[i]))
            continue;
        const uint64_t *bsub = b && present(b[i]) && !is_leaf(b[i], level) ? table_of(b[i]) : NULL;
        free_diff(table_of(c[i]), bsub, level - 1, free_page);
    }
    free_page(c);
}

void ept_free_clone(struct ept *clone, const struct ept *base, void (*free_page)(void *))
{
    if (clone->pml4)
        free_diff(clone->pml4, base->pml4, 4, free_page);
    clone->pml4 = NULL;
    clone->eptp = 0;
    clone->pages_used = 0;
}
