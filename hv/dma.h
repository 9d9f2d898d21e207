/* Device isolation: hv's DMA-remapping setup from the DMAR table (docs/architecture.md,
 * "Device isolation"). */
#ifndef HV_DMA_H
#define HV_DMA_H
#include <stdbool.h>
#include "../lib/mem_range.h"
#include "handoff.h"

/* Finds, checks and enables every remapping unit (dma_protect=on); logs why not otherwise.
 * Returns the number of units with translation on. */
unsigned dma_init(struct hv_handoff *h);
bool dma_active(void);
/* The units' register pages, as HV_MEM_HV ranges (EPT01 hides them); returns how many. */
unsigned dma_register_ranges(struct hv_mem_range *out, unsigned max);
/* Renames the DMAR table so the guest finds no unit to reprogram (hide), or back. */
void dma_hide_table(bool hide);
/* Reads and logs the fault records of every unit; any CPU, never waits for another. */
void dma_poll(void);
/* At most every 2^24 TSC ticks: for VM exits. */
void dma_poll_rate_limited(void);
/* Translation off on every unit (the firmware's ExitBootServices when hv is not virtualizing). */
void dma_stop(void);
#endif
