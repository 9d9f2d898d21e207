/* EPT01: the identity map hv gives its guest (SDM Vol. 3C 29.3), host-tested.
 * Every guest-physical address below the limit maps to the same host-physical
 * address with RWX, with the memory type the MTRRs give it on bare metal,
 * except hv's own memory (HV_MEM_HV), which is left not present: every guest
 * access to it exits with an EPT violation that hv/ emulates (reads see zeros,
 * writes are dropped, the first attempt is logged). */
#ifndef VMX_EPT_H
#define VMX_EPT_H
#include <stdbool.h>
#include <stdint.h>
#include "../hv/handoff.h"
#include "mtrr.h"

/* EPT paging-structure entry bits (29.3.2, tables 29-1..29-6). */
#define EPT_R             (1ull << 0)
#define EPT_W             (1ull << 1)
#define EPT_X             (1ull << 2)
#define EPT_RWX           (EPT_R | EPT_W | EPT_X)
#define EPT_MT_SHIFT      3             /* leaf memory type, bits 5:3 */
#define EPT_MT_MASK       (7ull << EPT_MT_SHIFT)
#define EPT_MT(t)         ((uint64_t)(t) << EPT_MT_SHIFT)
#define EPT_IGNORE_PAT    (1ull << 6)
#define EPT_LARGE         (1ull << 7)   /* PDPTE: 1 GiB page, PDE: 2 MiB page */
#define EPT_ACCESSED      (1ull << 8)
#define EPT_DIRTY         (1ull << 9)
#define EPT_ADDR_MASK     0x000ffffffffff000ull /* bits 51:12 */

/* EPTP (25.6.11). */
#define EPTP_MT_WB        6ull          /* paging-structure memory type, bits 2:0 */
#define EPTP_PWL4         (3ull << 3)   /* page-walk length - 1, bits 5:3 */
#define EPTP_AD           (1ull << 6)   /* enable accessed/dirty flags */

#define EPT_MAX_HIDDEN 8
#define EPT_PAGE_1G (1ull << 30)
#define EPT_PAGE_2M (1ull << 21)
#define EPT_PAGE_4K (1ull << 12)
#define EPT_MAX_LIMIT (1ull << 48)      /* what a 4-level walk translates */

struct ept_range {
    uint64_t base, end; /* [base, end), 4 KiB aligned */
};

struct ept {
    uint64_t *pml4;          /* VA == PA (identity-mapped host) */
    uint64_t eptp;           /* 0 until a build succeeds */
    uint64_t pages_used;     /* table pages taken from alloc_page */
    uint64_t limit;          /* [0, limit) is mapped (except hidden) */
    uint64_t leaves_1g, leaves_2m, leaves_4k;
    unsigned nhidden;
    struct ept_range hidden[EPT_MAX_HIDDEN]; /* sorted, merged, page-rounded outwards */
};

static inline uint64_t ept_make_eptp(uint64_t pml4_pa, bool ad)
{
    return (pml4_pa & EPT_ADDR_MASK) | EPTP_MT_WB | EPTP_PWL4 | (ad ? EPTP_AD : 0);
}

/* max(4 GiB, top of mem[], min_limit) rounded up to 1 GiB. */
uint64_t ept_identity_limit(const struct hv_mem_range *mem, unsigned nmem, uint64_t min_limit);

/*
 * Builds the identity map of [0, ept_identity_limit(mem, nmem, limit)).
 * Pass limit 0 to let the memory map decide. Leaves are 1 GiB (if use_1g),
 * 2 MiB or 4 KiB: the largest page whose range has one MTRR type and does not
 * touch a hidden range. HV_MEM_HV ranges are hidden (rounded outwards to whole
 * pages, so no byte of hv is reachable). alloc_page returns a zeroed 4 KiB page
 * with VA == PA, or NULL. Returns 0, or -1 (allocation failure, more than
 * EPT_MAX_HIDDEN disjoint hidden ranges, limit beyond MAXPHYADDR or 2^48,
 * mtrr NULL); after a failure the partial tables are still reachable from
 * e->pml4 for ept_free(), and e->eptp is 0.
 */
int ept_build_identity(struct ept *e, const struct hv_mem_range *mem, unsigned nmem,
                       uint64_t limit, const struct mtrr_state *mtrr, bool use_1g,
                       void *(*alloc_page)(void));

/* Is gpa in a range hidden at build time (i.e. not present in EPT)? */
bool ept_is_hidden(const struct ept *e, uint64_t gpa);

/* The entry that translates gpa: a leaf (level 3 = 1 GiB, 2 = 2 MiB, 1 = 4 KiB)
 * or the first non-present entry on the walk (*level says where). NULL if gpa
 * is beyond a 4-level walk or there are no tables. */
uint64_t *ept_walk(const struct ept *e, uint64_t gpa, int *level);

/* Returns every table page to free_page (tests; hv never frees EPT01). */
void ept_free(struct ept *e, void (*free_page)(void *));
#endif
