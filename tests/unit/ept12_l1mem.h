/*
 * L1's memory for host tests of EPT02 (test_ept02_ad.c, test_ept02_mbec.c): one host buffer
 * of L1_MEM_PAGES pages whose host addresses are L1-physical ones, hv_gpa_is_ram over it,
 * hv_alloc_page from the host heap, and hv's EPT01 as an identity callback.
 */
#ifndef TESTS_UNIT_EPT12_L1MEM_H
#define TESTS_UNIT_EPT12_L1MEM_H
#include <stdbool.h>
#include <stdint.h>

#define L1_MEM_PAGES 32
extern uint8_t *l1;      /* the buffer, page 0 the EPT12 root */
extern unsigned l1_next; /* the next free page for EPT12 tables */
static inline uint64_t L1(unsigned page) { return (uint64_t)(uintptr_t)(l1 + 4096ull * page); }

void l1mem_init(void);                     /* allocate the buffer */
void l1mem_reset(void);                    /* zero it; tables from page 1 */
void l1mem_free(void);                     /* the buffer and every page hv_alloc_page gave */
int l1mem_identity_page(uint64_t gpa, uint64_t *host, uint64_t *max); /* ept02_l1_page_fn: RWX */
#endif
