/*
 * vmcs12: the field table and VMREAD/VMWRITE semantics (SDM Vol. 3C 31.3 "VMREAD",
 * "VMWRITE"; field encodings and widths per Vol. 3D Appendix B).
 */
#include "vmcs12.h"
#include <stddef.h>

#define NR_FIELDS VMCS12_NR_TABLE_FIELDS
_Static_assert(NR_FIELDS <= VMCS12_MAX_FIELDS, "VMCS12_MAX_FIELDS too small for the field table");

const unsigned VMCS12_NR_FIELDS = NR_FIELDS;

static unsigned map_key(uint32_t e) { return VMCS12_MAP_KEY(e); }

int vmcs12_field_index(uint64_t encoding)
{
    /* 64-bit mode: an operand setting bits 63:32 is unsupported; bits 31:15 are never used (B.1). */
    if (encoding >> 15)
        return -1;
    uint16_t full = (uint16_t)(encoding & ~1ull);
    unsigned lo = vmcs12_slot_map[map_key(full)];
    if (!lo-- || vmcs12_field_table[lo] != full) /* the index bits above 5:1 must match too */
        return -1;
    /* Only 64-bit fields have a separately accessible high half (B.1, access type). */
    if (VMCS_FIELD_HIGH(encoding) && VMCS_FIELD_WIDTH(full) != VMCS_WIDTH_64)
        return -1;
    return (int)lo;
}

uint32_t vmcs12_field_encoding(unsigned i)
{
    return i < NR_FIELDS ? vmcs12_field_table[i] : 0xffffffffu;
}

bool vmcs12_field_read_only(uint32_t encoding)
{
    return VMCS_FIELD_TYPE(encoding) == 1;
}

static uint64_t width_mask(uint32_t encoding)
{
    switch (VMCS_FIELD_WIDTH(encoding)) {
    case VMCS_WIDTH_16:
        return 0xffffull;
    case VMCS_WIDTH_32:
        return 0xffffffffull;
    default: /* 64-bit and natural width (hv's L1 runs in 64-bit mode) */
        return ~0ull;
    }
}

/* The value a read of encoding (full field or high half) at slot i returns. */
static uint64_t field_read(const struct vmcs12 *v, int i, uint64_t encoding)
{
    /* Masked again: L1 can scribble over its VMCS region before VMPTRLD. */
    uint64_t val = v->fields[i] & width_mask(vmcs12_field_table[i]);
    return VMCS_FIELD_HIGH(encoding) ? val >> 32 : val;
}

static void field_write(struct vmcs12 *v, int i, uint64_t encoding, uint64_t val)
{
    if (VMCS_FIELD_HIGH(encoding))
        v->fields[i] = (v->fields[i] & 0xffffffffull) | (val << 32);
    else
        v->fields[i] = val & width_mask(vmcs12_field_table[i]);
}

int vmcs12_vmread(const struct vmcs12 *v, uint64_t encoding, uint64_t *val)
{
    int i = vmcs12_field_index(encoding);
    if (i < 0)
        return VMXERR_UNSUPPORTED_FIELD;
    *val = field_read(v, i, encoding);
    return 0;
}

int vmcs12_vmwrite(struct vmcs12 *v, uint64_t encoding, uint64_t val, bool any_field_writable)
{
    int i = vmcs12_field_index(encoding);
    if (i < 0)
        return VMXERR_UNSUPPORTED_FIELD;
    if (vmcs12_field_read_only(vmcs12_field_table[i]) && !any_field_writable)
        return VMXERR_VMWRITE_READ_ONLY;
    field_write(v, i, encoding, val);
    return 0;
}

/* The inline accessors' slow path: first use, high halves, unsupported encodings
 * (a bug in hv: they read as 0 and are not written). */
uint64_t vmcs12_get_slow(const struct vmcs12 *v, uint32_t encoding)
{
    int i = vmcs12_field_index(encoding);
    if (i >= 0)
        return field_read(v, i, encoding);
    if ((i = vmcs12_feat_slot(encoding, NULL)) < 0)
        return 0;
    return VMCS_FIELD_HIGH(encoding) ? v->fields[i] >> 32 : v->fields[i] & width_mask(encoding);
}

void vmcs12_set_slow(struct vmcs12 *v, uint32_t encoding, uint64_t val)
{
    int i = vmcs12_field_index(encoding);
    if (i >= 0) {
        field_write(v, i, encoding, val);
    } else if ((i = vmcs12_feat_slot(encoding, NULL)) >= 0) {
        v->fields[i] = VMCS_FIELD_HIGH(encoding) ? (v->fields[i] & 0xffffffffull) | (val << 32)
                                                 : val & width_mask(encoding);
    }
}

int vmcs12_slot(uint32_t encoding)
{
    if (encoding & 1)
        return -1;
    int i = vmcs12_field_index(encoding);
    return i >= 0 ? i : vmcs12_feat_slot(encoding, NULL);
}

unsigned vmcs12_list_prepare(uint32_t *out, const uint32_t *encodings, unsigned n)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        int s = vmcs12_slot(encodings[i]);
        if (s >= 0 && encodings[i] <= 0xffff)
            out[k++] = encodings[i] | (uint32_t)s << 16;
    }
    return k;
}

/* The feature-dependent fields (vmcs12.h): the n-th is at slot VMCS12_MAX_FIELDS - 1 - n. */
static const struct {
    uint16_t encoding, feature;
} feat_fields[VMCS12_NR_FEAT_FIELDS] = {
    {EPT_POINTER, VMCS12_FEAT_EPT},
    {XSS_EXIT_BITMAP, VMCS12_FEAT_XSAVES},
    {PLE_GAP, VMCS12_FEAT_PLE},
    {PLE_WINDOW, VMCS12_FEAT_PLE},
    {VIRTUAL_APIC_PAGE_ADDR, VMCS12_FEAT_TPR_SHADOW},
    {TPR_THRESHOLD, VMCS12_FEAT_TPR_SHADOW},
    {APIC_ACCESS_ADDR, VMCS12_FEAT_APIC_ACCESS},
    {POSTED_INTR_NV, VMCS12_FEAT_POSTED_INTR},
    {POSTED_INTR_DESC_ADDR, VMCS12_FEAT_POSTED_INTR},
    {EOI_EXIT_BITMAP0, VMCS12_FEAT_VID},
    {EOI_EXIT_BITMAP1, VMCS12_FEAT_VID},
    {EOI_EXIT_BITMAP2, VMCS12_FEAT_VID},
    {EOI_EXIT_BITMAP3, VMCS12_FEAT_VID},
    {GUEST_INTR_STATUS, VMCS12_FEAT_VID},
    {PML_ADDRESS, VMCS12_FEAT_PML},
    {GUEST_PML_INDEX, VMCS12_FEAT_PML},
    {VMREAD_BITMAP, VMCS12_FEAT_SHADOW_VMCS},
    {VMWRITE_BITMAP, VMCS12_FEAT_SHADOW_VMCS},
    {VM_FUNCTION_CONTROL, VMCS12_FEAT_VMFUNC},
    {EPTP_LIST_ADDRESS, VMCS12_FEAT_VMFUNC},
    {VE_INFO_ADDRESS, VMCS12_FEAT_EPT_VE},
    {EPTP_INDEX, VMCS12_FEAT_EPT_VE},
    {TSC_MULTIPLIER, VMCS12_FEAT_TSC_SCALING},
    {GUEST_IA32_PERF_GLOBAL_CTRL, VMCS12_FEAT_PERF_GLOBAL},
    {HOST_IA32_PERF_GLOBAL_CTRL, VMCS12_FEAT_PERF_GLOBAL},
};
_Static_assert(NR_FIELDS <= VMCS12_FIRST_FEAT_SLOT, "the feature-dependent slots follow the table");

int vmcs12_feat_slot(uint64_t encoding, unsigned *feature)
{
    if (encoding >> 15)
        return -1;
    uint16_t full = (uint16_t)(encoding & ~1ull);
    for (int n = 0; n < VMCS12_NR_FEAT_FIELDS; n++) {
        if (feat_fields[n].encoding != full)
            continue;
        if (VMCS_FIELD_HIGH(encoding) && VMCS_FIELD_WIDTH(full) != VMCS_WIDTH_64)
            return -1; /* only 64-bit fields have a high half (B.1) */
        if (feature)
            *feature = feat_fields[n].feature;
        return VMCS12_MAX_FIELDS - 1 - n;
    }
    return -1;
}

uint32_t vmcs12_feat_encoding(unsigned n, unsigned *feature)
{
    if (n >= VMCS12_NR_FEAT_FIELDS)
        return 0xffffffffu;
    *feature = feat_fields[n].feature;
    return feat_fields[n].encoding;
}

/* The slot of a feature-dependent field whose feature is advertised, or -1. */
static int feature_slot(uint64_t encoding, unsigned features)
{
    unsigned f;
    int i = vmcs12_feat_slot(encoding, &f);
    return i >= 0 && (features & f) ? i : -1;
}

int vmcs12_vmread_feat(const struct vmcs12 *v, uint64_t encoding, uint64_t *val, unsigned features)
{
    int i = feature_slot(encoding, features);
    if (i < 0)
        return vmcs12_vmread(v, encoding, val);
    *val = VMCS_FIELD_HIGH(encoding) ? v->fields[i] >> 32 : v->fields[i] & width_mask((uint32_t)encoding);
    return 0;
}

int vmcs12_vmwrite_feat(struct vmcs12 *v, uint64_t encoding, uint64_t val, bool any_field_writable,
                        unsigned features)
{
    int i = feature_slot(encoding, features);
    if (i < 0)
        return vmcs12_vmwrite(v, encoding, val, any_field_writable);
    v->fields[i] = VMCS_FIELD_HIGH(encoding) ? (v->fields[i] & 0xffffffffull) | (val << 32)
                                             : val & width_mask((uint32_t)encoding);
    return 0;
}
