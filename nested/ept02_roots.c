/* The per-vCPU cache of EPT02s, one per EPT12 root in use (nested/ept02.h). */
#include "ept02.h"
#include "nested.h"

static uint64_t root_of(uint64_t eptp) { return eptp & EPT_ADDR_MASK; }

struct ept02 *ept02_roots_get(struct ept02_roots *r, uint64_t eptp12, unsigned max_pages, unsigned min_pages,
                              uint64_t ept_caps, uint8_t phys_bits, ept02_l1_page_fn l1_page)
{
    int slot = -1;
    for (int i = 0; i < EPT02_ROOTS && slot < 0; i++)
        if (r->ctx[i] && r->used[i] && r->ctx[i]->eptp12 != EPT02_NO_EPT12 &&
            root_of(r->ctx[i]->eptp12) == root_of(eptp12))
            slot = i;
    for (int i = 0; i < EPT02_ROOTS && slot < 0; i++)
        if (!r->used[i])
            slot = i; /* never used (perhaps allocated by an attempt that ran out of memory) */
    if (slot < 0) {
        slot = 0;
        for (int i = 1; i < EPT02_ROOTS; i++)
            if (r->used[i] < r->used[slot])
                slot = i;
        r->evictions++;
    }
    if (!r->ctx[slot] && !(r->ctx[slot] = hv_alloc_page()))
        return NULL;
    struct ept02 *e = r->ctx[slot];
    /* Idempotent: after running out of memory once, a later call tries again. */
    if (ept02_init(e, max_pages, min_pages, ept_caps, phys_bits, l1_page))
        return NULL;
    ept02_use(e, eptp12); /* an evicted EPT02 changes root: cleared, flush pending */
    r->used[slot] = ++r->clock;
    return e;
}

bool ept02_roots_touch(struct ept02_roots *r, const struct ept02 *e, uint64_t eptp12)
{
    if (!e || e->eptp12 != eptp12)
        return false;
    for (int i = 0; i < EPT02_ROOTS; i++)
        if (r->ctx[i] == e && r->used[i]) {
            r->used[i] = ++r->clock;
            return true;
        }
    return false;
}

bool ept02_roots_invept(struct ept02_roots *r, uint64_t type, uint64_t eptp)
{
    bool any = false;
    for (int i = 0; i < EPT02_ROOTS; i++)
        if (r->ctx[i] && r->used[i] && ept02_invept(r->ctx[i], type, eptp))
            any = true;
    return any;
}
