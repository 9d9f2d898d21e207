#include "fake_vmcs.h"

/* Encodings are 15 bits wide (SDM B.1), so a flat table covers them all. */
#define FAKE_VMCS_SLOTS 0x8000u

#define FAKE_VMCS_BANKS 2u

static uint64_t banks[FAKE_VMCS_BANKS][FAKE_VMCS_SLOTS];
static uint64_t *values = banks[0];
static uint32_t reads[FAKE_VMCS_SLOTS];
static uint32_t writes[FAKE_VMCS_SLOTS];

uint64_t fake_vmcs_reads;
uint64_t fake_vmcs_writes;
uint64_t fake_vmcs_ro_writes;
uint64_t fake_vmcs_bad_fields;

static int slot(uint32_t field)
{
    return field < FAKE_VMCS_SLOTS ? (int)field : -1;
}

/* Like hardware: 16- and 32-bit fields keep only their low bits. */
static uint64_t field_trunc(uint32_t field, uint64_t v)
{
    switch (VMCS_FIELD_WIDTH(field)) {
    case VMCS_WIDTH_16: return v & 0xffff;
    case VMCS_WIDTH_32: return v & 0xffffffffu;
    default: return v;
    }
}

void fake_vmcs_reset(void)
{
    for (uint32_t b = 0; b < FAKE_VMCS_BANKS; b++)
        for (uint32_t i = 0; i < FAKE_VMCS_SLOTS; i++)
            banks[b][i] = 0;
    values = banks[0];
    for (uint32_t i = 0; i < FAKE_VMCS_SLOTS; i++)
        reads[i] = writes[i] = 0;
    fake_vmcs_reads = fake_vmcs_writes = 0;
    fake_vmcs_ro_writes = fake_vmcs_bad_fields = 0;
}

void fake_vmcs_select(unsigned bank) { values = banks[bank < FAKE_VMCS_BANKS ? bank : 0]; }

void fake_vmcs_set(uint32_t field, uint64_t v)
{
    int s = slot(field);

    if (s >= 0)
        values[s] = field_trunc(field, v);
}

uint64_t fake_vmcs_get(uint32_t field)
{
    int s = slot(field);

    return s >= 0 ? values[s] : 0;
}

uint32_t fake_vmcs_read_count(uint32_t field)
{
    int s = slot(field);

    return s >= 0 ? reads[s] : 0;
}

uint32_t fake_vmcs_write_count(uint32_t field)
{
    int s = slot(field);

    return s >= 0 ? writes[s] : 0;
}

uint64_t vmcs_read(uint32_t field)
{
    int s = slot(field);

    fake_vmcs_reads++;
    if (s < 0) {
        fake_vmcs_bad_fields++;
        return 0;
    }
    reads[s]++;
    return values[s];
}

void vmcs_write(uint32_t field, uint64_t val)
{
    int s = slot(field);

    fake_vmcs_writes++;
    if (s < 0) {
        fake_vmcs_bad_fields++;
        return;
    }
    if (VMCS_FIELD_TYPE(field) == 1)
        fake_vmcs_ro_writes++;
    writes[s]++;
    values[s] = field_trunc(field, val);
}
