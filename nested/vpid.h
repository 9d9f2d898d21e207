/*
 * VPIDs for L2 (vmcs02): hv tags L2's translations with a VPID of its own per (vCPU,
 * vmcs12 VPID), so they survive VM entries and exits as L1's VPIDs would on the CPU, and
 * L1's INVVPID becomes an INVVPID of hv's VPID. L1 and hv itself run with VPID 0000H
 * (vmcs01 has no VPID), so hv's VPIDs, 1..VPID02_SLOTS + 1, never tag their translations.
 *
 * This file is the pure part (a table per vCPU, no VMCS): nested/vpid.c puts it to use.
 */
#ifndef NESTED_VPID_H
#define NESTED_VPID_H
#include <stdbool.h>
#include <stdint.h>

#define VPID02_SLOTS 8
/* vmcs12 without "enable VPID": L2 shares VPID 0000H with L1, whose VM entries and exits
 * flush it (SDM 26.3.2.5, 28.5.5): hv gives such an L2 this VPID, flushed at every entry. */
#define VPID02_NO_VPID12 (VPID02_SLOTS + 1)

struct vpid02_table {
    uint16_t vpid12[VPID02_SLOTS]; /* slot i tags vmcs12 VPID vpid12[i] as VPID i + 1; 0: free */
    uint32_t last_use[VPID02_SLOTS];
    uint32_t clock;
    bool ready;                    /* hv's VPIDs were flushed once on this CPU (before first use) */
};

/* The VPID of hv's that tags vmcs12's VPID vpid12 (not 0), 0 if none does. */
uint16_t vpid02_lookup(const struct vpid02_table *t, uint16_t vpid12);
/* The VPID for vpid12 (not 0), which becomes the most recently used. A new vpid12 takes a
 * free slot, else the least recently used one: *flush is then true, and that VPID's
 * translations (another vpid12's) must go before L2 runs with it. */
uint16_t vpid02_get(struct vpid02_table *t, uint16_t vpid12, bool *flush);
/* Every slot free (after a flush of all of hv's VPIDs). */
void vpid02_forget(struct vpid02_table *t);
#endif
