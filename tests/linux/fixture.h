/* The test-linux ACPI fixture: a UEFI app run as hv's next stage that installs the
 * Bochs platform's ACPI tables, then starts the Linux kernel. */
#ifndef HV_TEST_FIXTURE_H
#define HV_TEST_FIXTURE_H
#include <efi.h>
#include <efilib.h>

#define HV_FIX_MAX_CPUS 64

/* One "acpi-fixture: " line on COM1. Supports %s %u %llu %llx only (checked by GCC). */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* acpi_tables.c: route the SCI and install FACS, DSDT, FADT and MADT. */
EFI_STATUS install_acpi_tables(const UINT32 *apic_ids, UINTN ncpus);
#endif
