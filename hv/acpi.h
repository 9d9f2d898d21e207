#ifndef HV_ACPI_H
#define HV_ACPI_H
#include <stdint.h>
/* The ACPI PM1a control port: from the FADT when the RSDP is known, else from the
 * chipset (PIIX4 PM function, ICH9 LPC PMBASE). 0 if none found. */
/* The first table with this signature in the XSDT (RSDT for ACPI 1.0); 0 if none. */
uint64_t acpi_find_table(uint64_t rsdp, const char *sig);
uint16_t acpi_pm1a_cnt(uint64_t rsdp, const char **source);
#endif
