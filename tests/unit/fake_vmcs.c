#include "fake_vmcs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Encodings are 15 bits wide (SDM B.1), so a flat table covers them all. */
#define FAKE_VMCS_SLOTS 0x8000u
#define FAKE_VMCS_MAX 8

/* One VMCS per pointer, as the CPU keeps one per VMCS region: VMPTRLD makes one current,
 * VMCLEAR leaves none current if it names the current one. Only the fields a test touched
 * are listed, so a reset costs what the test used, not the 15-bit table. */
struct fake_vmcs {
    bool used;
    uint64_t pa;
    uint32_t clears, loads;
    uint64_t values[FAKE_VMCS_SLOTS];
    uint32_t reads[FAKE_VMCS_SLOTS];
    uint32_t writes[FAKE_VMCS_SLOTS];
    uint8_t touched_bm[FAKE_VMCS_SLOTS / 8];
    uint16_t touched[FAKE_VMCS_SLOTS];
    uint32_t ntouched;
};

static struct fake_vmcs vmcss[FAKE_VMCS_MAX];
static struct fake_vmcs *cur = &vmcss[0];

uint64_t fake_vmcs_reads;
uint64_t fake_vmcs_writes;
uint64_t fake_vmcs_ro_writes;
uint64_t fake_vmcs_bad_fields;
uint64_t fake_vmcs_no_current;

static int slot(uint32_t field)
{
    return field < FAKE_VMCS_SLOTS ? (int)field : -1;
}

static void touch(struct fake_vmcs *v, int s)
{
    if (v->touched_bm[s / 8] & (1u << (s % 8)))
        return;
    v->touched_bm[s / 8] |= (uint8_t)(1u << (s % 8));
    v->touched[v->ntouched++] = (uint16_t)s;
}

static void wipe(struct fake_vmcs *v)
{
    for (uint32_t i = 0; i < v->ntouched; i++) {
        uint16_t s = v->touched[i];
        v->values[s] = v->reads[s] = v->writes[s] = 0;
        v->touched_bm[s / 8] = 0;
    }
    v->ntouched = 0;
    v->used = false;
    v->pa = FAKE_VMCS_NONE;
    v->clears = v->loads = 0;
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
    for (unsigned i = 0; i < FAKE_VMCS_MAX; i++)
        if (vmcss[i].used || vmcss[i].ntouched || i == 0)
            wipe(&vmcss[i]);
    vmcss[0].used = true;
    vmcss[0].pa = 0; /* the VMCS current before any VMPTRLD: pointer 0 */
    cur = &vmcss[0];
    fake_vmcs_reads = fake_vmcs_writes = 0;
    fake_vmcs_ro_writes = fake_vmcs_bad_fields = fake_vmcs_no_current = 0;
}

static struct fake_vmcs *find(uint64_t pa, bool create)
{
    for (unsigned i = 0; i < FAKE_VMCS_MAX; i++)
        if (vmcss[i].used && vmcss[i].pa == pa)
            return &vmcss[i];
    if (!create)
        return NULL;
    for (unsigned i = 0; i < FAKE_VMCS_MAX; i++)
        if (!vmcss[i].used) {
            vmcss[i].used = true;
            vmcss[i].pa = pa;
            return &vmcss[i];
        }
    fprintf(stderr, "fake_vmcs: more than %d VMCS pointers in one test\n", FAKE_VMCS_MAX);
    abort();
}

enum vmx_status vmptrld(uint64_t pa)
{
    cur = find(pa, true);
    cur->loads++;
    return VMX_OK;
}

enum vmx_status vmclear(uint64_t pa)
{
    struct fake_vmcs *v = find(pa, true);
    v->clears++;
    if (v == cur)
        cur = NULL; /* SDM 31.3 VMCLEAR: the current-VMCS pointer becomes invalid */
    return VMX_OK;
}

uint64_t fake_vmcs_current(void) { return cur ? cur->pa : FAKE_VMCS_NONE; }

uint32_t fake_vmcs_clear_count(uint64_t pa)
{
    struct fake_vmcs *v = find(pa, false);
    return v ? v->clears : 0;
}

uint32_t fake_vmcs_load_count(uint64_t pa)
{
    struct fake_vmcs *v = find(pa, false);
    return v ? v->loads : 0;
}

void fake_vmcs_set_in(uint64_t pa, uint32_t field, uint64_t v)
{
    struct fake_vmcs *f = find(pa, true);
    int s = slot(field);

    if (s >= 0) {
        touch(f, s);
        f->values[s] = field_trunc(field, v);
    }
}

uint64_t fake_vmcs_get_in(uint64_t pa, uint32_t field)
{
    struct fake_vmcs *f = find(pa, false);
    int s = slot(field);

    return f && s >= 0 ? f->values[s] : 0;
}

uint32_t fake_vmcs_write_count_in(uint64_t pa, uint32_t field)
{
    struct fake_vmcs *f = find(pa, false);
    int s = slot(field);

    return f && s >= 0 ? f->writes[s] : 0;
}

void fake_vmcs_set(uint32_t field, uint64_t v)
{
    int s = slot(field);

    if (s >= 0 && cur) {
        touch(cur, s);
        cur->values[s] = field_trunc(field, v);
    }
}

uint64_t fake_vmcs_get(uint32_t field)
{
    int s = slot(field);

    return s >= 0 && cur ? cur->values[s] : 0;
}

uint32_t fake_vmcs_read_count(uint32_t field)
{
    int s = slot(field);

    return s >= 0 && cur ? cur->reads[s] : 0;
}

uint32_t fake_vmcs_write_count(uint32_t field)
{
    int s = slot(field);

    return s >= 0 && cur ? cur->writes[s] : 0;
}

uint64_t vmcs_read(uint32_t field)
{
    int s = slot(field);

    fake_vmcs_reads++;
    if (!cur) {
        fake_vmcs_no_current++;
        return 0;
    }
    if (s < 0) {
        fake_vmcs_bad_fields++;
        return 0;
    }
    touch(cur, s);
    cur->reads[s]++;
    return cur->values[s];
}

void vmcs_write(uint32_t field, uint64_t val)
{
    int s = slot(field);

    fake_vmcs_writes++;
    if (!cur) {
        fake_vmcs_no_current++;
        return;
    }
    if (s < 0) {
        fake_vmcs_bad_fields++;
        return;
    }
    if (VMCS_FIELD_TYPE(field) == 1)
        fake_vmcs_ro_writes++;
    touch(cur, s);
    cur->writes[s]++;
    cur->values[s] = field_trunc(field, val);
}
