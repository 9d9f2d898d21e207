/* A VMCS in plain memory for host tests: supplies vmcs_read/vmcs_write (see
 * vmx/vmcs.h under HV_HOST_TEST) and counts every access. */
#ifndef TESTS_UNIT_FAKE_VMCS_H
#define TESTS_UNIT_FAKE_VMCS_H
#include <stdint.h>
#include "vmx/vmcs.h"

extern uint64_t fake_vmcs_reads;
extern uint64_t fake_vmcs_writes;
/* VMWRITEs to read-only exit-information fields (fail on real hardware). */
extern uint64_t fake_vmcs_ro_writes;
/* Accesses with an encoding that cannot be a VMCS field. */
extern uint64_t fake_vmcs_bad_fields;

/* Zero every field and every counter; bank 0 current. */
void fake_vmcs_reset(void);
/* Make VMCS number bank (0 or 1) current, as VMPTRLD does (e.g. vmcs01 and vmcs02). */
void fake_vmcs_select(unsigned bank);
/* Set/get a field without counting an access. */
void fake_vmcs_set(uint32_t field, uint64_t v);
uint64_t fake_vmcs_get(uint32_t field);
uint32_t fake_vmcs_read_count(uint32_t field);
uint32_t fake_vmcs_write_count(uint32_t field);
#endif
