/* hv's memory: one region reserved by boot/, handed out as zeroed 4 KiB pages
 * (VMCS, EPT tables, stacks) from the top and as malloc's sbrk arena from the bottom. */
#ifndef LIB_PAGES_H
#define LIB_PAGES_H
#include <stddef.h>
#include <stdint.h>

#define PAGE_SIZE 4096ull

void pages_init(uint64_t base, uint64_t size);
void *page_alloc(size_t npages);    /* zeroed, page aligned; NULL when exhausted */
void *sbrk_region(ptrdiff_t incr);  /* malloc's arena grows upwards */
uint64_t pages_used(void);          /* bytes taken by pages and the arena together */
uint64_t pages_total(void);
#endif
