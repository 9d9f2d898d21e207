#include "pages.h"
#include <string.h>
#include "spinlock.h"

static uint64_t lo, hi, brk, top;
static spinlock_t lock;

void pages_init(uint64_t base, uint64_t size)
{
    lo = brk = (base + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    hi = top = (base + size) & ~(PAGE_SIZE - 1);
}

void *page_alloc(size_t npages)
{
    uint64_t bytes = npages * PAGE_SIZE;
    void *p = NULL;
    spin_lock(&lock);
    if (npages && bytes / PAGE_SIZE == npages && top - brk >= bytes) {
        top -= bytes;
        p = (void *)(uintptr_t)top;
    }
    spin_unlock(&lock);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void *sbrk_region(ptrdiff_t incr)
{
    void *p = (void *)-1;
    spin_lock(&lock);
    if (incr >= 0 ? (uint64_t)incr <= top - brk : (uint64_t)-incr <= brk - lo) {
        p = (void *)(uintptr_t)brk;
        brk += (uint64_t)incr;
    }
    spin_unlock(&lock);
    return p;
}

uint64_t pages_used(void) { return (brk - lo) + (hi - top); }
uint64_t pages_total(void) { return hi - lo; }
