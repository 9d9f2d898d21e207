/*
 * vmcs12: the field table and VMREAD/VMWRITE semantics (SDM Vol. 3C 31.3 "VMREAD",
 * "VMWRITE"; field encodings and widths per Vol. 3D Appendix B).
 */
#include "vmcs12.h"
#include <stddef.h>

/*
 * Every encoding hv supports for L1, sorted ascending; the position in this array is
 * also the slot in struct vmcs12.fields[] (and so the layout of L1's VMCS region).
 * Left out: fields of features hv never offers L1 (ENCLS exiting bitmap,
 * MPX, perf global ctrl), and the fields that exist only while their feature is
 * advertised (EPT_POINTER, APIC virtualization, PML, VMCS shadowing, VM functions, ...):
 * those live in their own slots past the table (vmcs12.h, feat_fields, vmcs12_vmread_feat).
 *
 * Sorted so that tests/unit/test_vmcs12.c can check it; lookups go through the small
 * map below vmcs12_field_index().
 */
const uint16_t vmcs12_field_table[] = {
    /* 16-bit control */
    VIRTUAL_PROCESSOR_ID,
    /* 16-bit guest state */
    GUEST_ES_SELECTOR, GUEST_CS_SELECTOR, GUEST_SS_SELECTOR, GUEST_DS_SELECTOR,
    GUEST_FS_SELECTOR, GUEST_GS_SELECTOR, GUEST_LDTR_SELECTOR, GUEST_TR_SELECTOR,
    /* 16-bit host state */
    HOST_ES_SELECTOR, HOST_CS_SELECTOR, HOST_SS_SELECTOR, HOST_DS_SELECTOR,
    HOST_FS_SELECTOR, HOST_GS_SELECTOR, HOST_TR_SELECTOR,
    /* 64-bit control */
    IO_BITMAP_A, IO_BITMAP_B, MSR_BITMAP, VM_EXIT_MSR_STORE_ADDR, VM_EXIT_MSR_LOAD_ADDR,
    VM_ENTRY_MSR_LOAD_ADDR, EXECUTIVE_VMCS_POINTER, TSC_OFFSET,
    /* 64-bit read-only data */
    GUEST_PHYSICAL_ADDRESS,
    /* 64-bit guest state */
    VMCS_LINK_POINTER, GUEST_IA32_DEBUGCTL, GUEST_IA32_PAT, GUEST_IA32_EFER,
    GUEST_PDPTR0, GUEST_PDPTR1, GUEST_PDPTR2, GUEST_PDPTR3,
    /* 64-bit host state */
    HOST_IA32_PAT, HOST_IA32_EFER,
    /* 32-bit control */
    PIN_BASED_VM_EXEC_CONTROL, CPU_BASED_VM_EXEC_CONTROL, EXCEPTION_BITMAP,
    PAGE_FAULT_ERROR_CODE_MASK, PAGE_FAULT_ERROR_CODE_MATCH, CR3_TARGET_COUNT,
    VM_EXIT_CONTROLS, VM_EXIT_MSR_STORE_COUNT, VM_EXIT_MSR_LOAD_COUNT, VM_ENTRY_CONTROLS,
    VM_ENTRY_MSR_LOAD_COUNT, VM_ENTRY_INTR_INFO_FIELD, VM_ENTRY_EXCEPTION_ERROR_CODE,
    VM_ENTRY_INSTRUCTION_LEN, SECONDARY_VM_EXEC_CONTROL,
    /* 32-bit read-only data */
    VM_INSTRUCTION_ERROR, VM_EXIT_REASON, VM_EXIT_INTR_INFO, VM_EXIT_INTR_ERROR_CODE,
    IDT_VECTORING_INFO_FIELD, IDT_VECTORING_ERROR_CODE, VM_EXIT_INSTRUCTION_LEN,
    VMX_INSTRUCTION_INFO,
    /* 32-bit guest state */
    GUEST_ES_LIMIT, GUEST_CS_LIMIT, GUEST_SS_LIMIT, GUEST_DS_LIMIT, GUEST_FS_LIMIT,
    GUEST_GS_LIMIT, GUEST_LDTR_LIMIT, GUEST_TR_LIMIT, GUEST_GDTR_LIMIT, GUEST_IDTR_LIMIT,
    GUEST_ES_AR_BYTES, GUEST_CS_AR_BYTES, GUEST_SS_AR_BYTES, GUEST_DS_AR_BYTES,
    GUEST_FS_AR_BYTES, GUEST_GS_AR_BYTES, GUEST_LDTR_AR_BYTES, GUEST_TR_AR_BYTES,
    GUEST_INTERRUPTIBILITY_INFO, GUEST_ACTIVITY_STATE, GUEST_SMBASE, GUEST_SYSENTER_CS,
    VMX_PREEMPTION_TIMER_VALUE,
    /* 32-bit host state */
    HOST_IA32_SYSENTER_CS,
    /* natural-width control */
    CR0_GUEST_HOST_MASK, CR4_GUEST_HOST_MASK, CR0_READ_SHADOW, CR4_READ_SHADOW,
    CR3_TARGET_VALUE0, CR3_TARGET_VALUE1, CR3_TARGET_VALUE2, CR3_TARGET_VALUE3,
    /* natural-width read-only data */
    EXIT_QUALIFICATION, IO_RCX, IO_RSI, IO_RDI, IO_RIP, GUEST_LINEAR_ADDRESS,
    /* natural-width guest state */
    GUEST_CR0, GUEST_CR3, GUEST_CR4, GUEST_ES_BASE, GUEST_CS_BASE, GUEST_SS_BASE,
    GUEST_DS_BASE, GUEST_FS_BASE, GUEST_GS_BASE, GUEST_LDTR_BASE, GUEST_TR_BASE,
    GUEST_GDTR_BASE, GUEST_IDTR_BASE, GUEST_DR7, GUEST_RSP, GUEST_RIP, GUEST_RFLAGS,
    GUEST_PENDING_DBG_EXCEPTIONS, GUEST_SYSENTER_ESP, GUEST_SYSENTER_EIP,
    /* natural-width host state */
    HOST_CR0, HOST_CR3, HOST_CR4, HOST_FS_BASE, HOST_GS_BASE, HOST_TR_BASE,
    HOST_GDTR_BASE, HOST_IDTR_BASE, HOST_IA32_SYSENTER_ESP, HOST_IA32_SYSENTER_EIP,
    HOST_RSP, HOST_RIP,
};
#define NR_FIELDS (sizeof(vmcs12_field_table) / sizeof(vmcs12_field_table[0]))
_Static_assert(NR_FIELDS <= VMCS12_MAX_FIELDS, "VMCS12_MAX_FIELDS too small for the field table");

const unsigned VMCS12_NR_FIELDS = NR_FIELDS;

/*
 * hv looks fields up on every nested VM-Enter and exit, so besides the binary search
 * (which defines the slots) a 512-byte map gives the slot in O(1): width (2 bits),
 * type (2 bits) and index (bits 5:1: no field in Appendix B has an index above 31)
 * make a 9-bit key. Slot + 1 is stored, 0 meaning "no field"; built on first use.
 */
uint8_t vmcs12_slot_map[512];
static bool slot_map_ready;

static unsigned map_key(uint32_t e) { return (VMCS_FIELD_WIDTH(e) << 7) | (VMCS_FIELD_TYPE(e) << 5) | ((e >> 1) & 31); }

static void build_slot_map(void)
{
    for (unsigned i = 0; i < NR_FIELDS; i++)
        vmcs12_slot_map[map_key(vmcs12_field_table[i])] = (uint8_t)(i + 1);
    __atomic_store_n(&slot_map_ready, true, __ATOMIC_RELEASE);
}

int vmcs12_field_index(uint64_t encoding)
{
    /* 64-bit mode: an operand setting bits 63:32 is unsupported; bits 31:15 are never used (B.1). */
    if (encoding >> 15)
        return -1;
    uint16_t full = (uint16_t)(encoding & ~1ull);
    if (!__atomic_load_n(&slot_map_ready, __ATOMIC_ACQUIRE))
        build_slot_map(); /* idempotent: two CPUs racing here write the same bytes */
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
