/* A VMCS in plain memory for host tests: supplies vmcs_read/vmcs_write (see
 * vmx/vmcs.h under HV_HOST_TEST) and counts every access. VMPTRLD and VMCLEAR are
 * faked too (vmx/vmx.h under HV_HOST_TEST): one fake VMCS per pointer, so a test sees
 * which VMCS a field went to. After a reset the current VMCS is the one of pointer 0. */
#ifndef TESTS_UNIT_FAKE_VMCS_H
#define TESTS_UNIT_FAKE_VMCS_H
#include <stdbool.h>
#include <stdint.h>
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

#define FAKE_VMCS_NONE (~0ull) /* fake_vmcs_current() with no current VMCS */

extern uint64_t fake_vmcs_reads;
extern uint64_t fake_vmcs_writes;
/* VMWRITEs to read-only exit-information fields (fail on real hardware). */
extern uint64_t fake_vmcs_ro_writes;
/* Accesses with an encoding that cannot be a VMCS field. */
extern uint64_t fake_vmcs_bad_fields;
/* VMREAD/VMWRITE with no current VMCS (VMfailInvalid on real hardware). */
extern uint64_t fake_vmcs_no_current;

/* Forget every VMCS, every field and every counter. */
void fake_vmcs_reset(void);
/* Set/get a field of the current VMCS without counting an access. */
void fake_vmcs_set(uint32_t field, uint64_t v);
uint64_t fake_vmcs_get(uint32_t field);
uint32_t fake_vmcs_read_count(uint32_t field);
uint32_t fake_vmcs_write_count(uint32_t field);
/* The same for the VMCS of pointer pa, current or not. */
void fake_vmcs_set_in(uint64_t pa, uint32_t field, uint64_t v);
uint64_t fake_vmcs_get_in(uint64_t pa, uint32_t field);
uint32_t fake_vmcs_write_count_in(uint64_t pa, uint32_t field);
/* The current VMCS pointer, and how often pa was VMCLEARed / VMPTRLDed since the reset. */
uint64_t fake_vmcs_current(void);
uint32_t fake_vmcs_clear_count(uint64_t pa);
uint32_t fake_vmcs_load_count(uint64_t pa);
#endif
