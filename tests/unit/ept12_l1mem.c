/* L1's memory for EPT02 host tests (ept12_l1mem.h). */
#include "ept12_l1mem.h"
#include <stdlib.h>
#include <string.h>
#include "vmx/ept.h"

uint8_t *l1;
unsigned l1_next;

bool hv_gpa_is_ram(uint64_t gpa, uint64_t len)
{
    return gpa >= L1(0) && len <= 4096ull * L1_MEM_PAGES && gpa - L1(0) <= 4096ull * L1_MEM_PAGES - len;
}

static void *allocated[128];
static unsigned nallocated;
void *hv_alloc_page(void)
{
    if (nallocated == 128)
        return NULL;
    void *p = aligned_alloc(4096, 4096);
    memset(p, 0, 4096);
    return allocated[nallocated++] = p;
}

int l1mem_identity_page(uint64_t gpa, uint64_t *host, uint64_t *max)
{
    *host = gpa;
    *max = EPT_RWX;
    return 0;
}

void l1mem_init(void) { l1 = aligned_alloc(4096, 4096ull * L1_MEM_PAGES); }

void l1mem_reset(void)
{
    memset(l1, 0, 4096ull * L1_MEM_PAGES);
    l1_next = 1;
}

void l1mem_free(void)
{
    for (unsigned i = 0; i < nallocated; i++)
        free(allocated[i]);
    nallocated = 0;
    free(l1);
    l1 = NULL;
}
