/*
 * vmcs12: the VMCS L1 believes it has, kept by hv in L1's memory (docs/nested.md).
 *
 * Layout of the 4 KiB region in L1 memory (hv's own, as the SDM leaves it to the CPU):
 *   0x000 u32 revision identifier (VMCS12_REVISION; bit 31 = shadow-VMCS indicator)
 *   0x004 u32 VMX-abort indicator
 *   0x008 u32 launch state (hv: 0 = clear, 1 = launched)
 *   0x00c u32 reserved
 *   0x010 u64 fields[VMCS12_NR_FIELDS], in the order of the field table (nested/vmcs12.c)
 * While current, hv caches it (struct vmcs12 below, same layout) and writes it back on
 * VMCLEAR, on VMPTRLD of another VMCS, and on VMXOFF.
 */
#ifndef NESTED_VMCS12_H
#define NESTED_VMCS12_H
#include <stdbool.h>
#include <stdint.h>
#include "../vmx/vmcs_fields.h"
#include "vmcs12_fields.h"

#define VMCS12_REVISION 0x00007668u /* "hv"; advertised in L1's IA32_VMX_BASIC[30:0] */
#define VMCS12_SIZE 4096u
#define VMCS12_SHADOW 0x80000000u   /* revision bit 31: the shadow-VMCS indicator (SDM 24.10) */

/* VM-instruction error numbers (SDM Vol. 3C 31.4) */
enum vmx_insn_err {
    VMXERR_VMCALL_IN_ROOT = 1,
    VMXERR_VMCLEAR_INVALID_ADDR = 2,
    VMXERR_VMCLEAR_VMXON_PTR = 3,
    VMXERR_VMLAUNCH_NONCLEAR = 4,
    VMXERR_VMRESUME_NONLAUNCHED = 5,
    VMXERR_VMRESUME_AFTER_VMXOFF = 6,
    VMXERR_ENTRY_INVALID_CONTROL = 7,
    VMXERR_ENTRY_INVALID_HOST = 8,
    VMXERR_VMPTRLD_INVALID_ADDR = 9,
    VMXERR_VMPTRLD_VMXON_PTR = 10,
    VMXERR_VMPTRLD_BAD_REVISION = 11,
    VMXERR_UNSUPPORTED_FIELD = 12,
    VMXERR_VMWRITE_READ_ONLY = 13,
    VMXERR_VMXON_IN_ROOT = 15,
    VMXERR_ENTRY_MOV_SS_BLOCKING = 26,
    VMXERR_INVALID_INVEPT_INVVPID = 28,
};

/* Upper bound; the real count is VMCS12_NR_FIELDS from nested/vmcs12.c. */
#define VMCS12_MAX_FIELDS 200

struct vmcs12 {
    uint32_t revision;
    uint32_t abort;
    uint32_t launch_state;
    uint32_t rsvd;
    uint64_t fields[VMCS12_MAX_FIELDS];
};
_Static_assert(sizeof(struct vmcs12) <= VMCS12_SIZE, "vmcs12 fits its 4 KiB region");

extern const unsigned VMCS12_NR_FIELDS;

/* Fields that exist only while hv advertises their feature: VMREAD/VMWRITE of a field the
 * processor does not support fail with error 12 (SDM 31.3), so they stay out of the field
 * table (whose fields always exist) and live in slots past it, at the end of fields[]
 * (nested/vmcs12.c feat_fields: the n-th entry is slot VMCS12_MAX_FIELDS - 1 - n). Which
 * control makes each exist: SDM 25.6 (EPT_POINTER with "enable EPT", XSS_EXIT_BITMAP with
 * "enable XSAVES/XRSTORS", PLE_GAP/PLE_WINDOW with "PAUSE-loop exiting", the virtual-APIC
 * address and TPR threshold with "use TPR shadow", ...). hv's own accessors (vmcs12_get/
 * vmcs12_set) reach them whatever is advertised. */
#define VMCS12_FEAT_EPT 1u
#define VMCS12_FEAT_XSAVES 2u
#define VMCS12_FEAT_PLE 4u
#define VMCS12_FEAT_TPR_SHADOW 8u     /* VIRTUAL_APIC_PAGE_ADDR, TPR_THRESHOLD */
#define VMCS12_FEAT_APIC_ACCESS 16u   /* APIC_ACCESS_ADDR */
#define VMCS12_FEAT_POSTED_INTR 32u   /* POSTED_INTR_NV, POSTED_INTR_DESC_ADDR */
#define VMCS12_FEAT_VID 64u           /* EOI_EXIT_BITMAP0-3, GUEST_INTR_STATUS */
#define VMCS12_FEAT_PML 128u          /* PML_ADDRESS, GUEST_PML_INDEX */
#define VMCS12_FEAT_SHADOW_VMCS 256u  /* VMREAD_BITMAP, VMWRITE_BITMAP */
#define VMCS12_FEAT_VMFUNC 512u       /* VM_FUNCTION_CONTROL, EPTP_LIST_ADDRESS */
#define VMCS12_FEAT_EPT_VE 1024u      /* VE_INFO_ADDRESS, EPTP_INDEX */
#define VMCS12_FEAT_TSC_SCALING 2048u /* TSC_MULTIPLIER */
#define VMCS12_FEAT_PERF_GLOBAL 4096u /* GUEST_/HOST_IA32_PERF_GLOBAL_CTRL */
#define VMCS12_NR_FEAT_FIELDS 25
#define VMCS12_SLOT_EPT_POINTER (VMCS12_MAX_FIELDS - 1)
#define VMCS12_SLOT_XSS_EXIT_BITMAP (VMCS12_MAX_FIELDS - 2)
#define VMCS12_SLOT_PLE_GAP (VMCS12_MAX_FIELDS - 3)
#define VMCS12_SLOT_PLE_WINDOW (VMCS12_MAX_FIELDS - 4)
#define VMCS12_FIRST_FEAT_SLOT (VMCS12_MAX_FIELDS - VMCS12_NR_FEAT_FIELDS)
static inline uint64_t vmcs12_eptp(const struct vmcs12 *v) { return v->fields[VMCS12_SLOT_EPT_POINTER]; }
static inline void vmcs12_set_eptp(struct vmcs12 *v, uint64_t eptp) { v->fields[VMCS12_SLOT_EPT_POINTER] = eptp; }
static inline uint64_t vmcs12_xss_exit_bitmap(const struct vmcs12 *v) { return v->fields[VMCS12_SLOT_XSS_EXIT_BITMAP]; }
static inline uint32_t vmcs12_ple_gap(const struct vmcs12 *v) { return (uint32_t)v->fields[VMCS12_SLOT_PLE_GAP]; }
static inline uint32_t vmcs12_ple_window(const struct vmcs12 *v) { return (uint32_t)v->fields[VMCS12_SLOT_PLE_WINDOW]; }
/* The slot of a feature-dependent field (either half of a 64-bit one), whatever is
 * advertised, or -1; and the feature (VMCS12_FEAT_*) that makes it exist. */
int vmcs12_feat_slot(uint64_t encoding, unsigned *feature);
/* The n-th feature-dependent field and its feature, for n < VMCS12_NR_FEAT_FIELDS. */
uint32_t vmcs12_feat_encoding(unsigned n, unsigned *feature);

/* Index of a supported encoding in fields[], or -1 (-> VMXERR_UNSUPPORTED_FIELD).
 * For a 64-bit field's high half (encoding bit 0 set) the index of the full field. */
int vmcs12_field_index(uint64_t encoding);
/* The encoding stored at fields[i] (for iteration: tests, dumps, write-back of sync lists). */
uint32_t vmcs12_field_encoding(unsigned i);
bool vmcs12_field_read_only(uint32_t encoding); /* the VM-exit information fields (type 1) */

/* VMREAD / VMWRITE semantics (SDM 31.3 "VMREAD", "VMWRITE"; widths per B.1):
 * 0 or a VM-instruction error. vmwrite truncates to the field's width, a high-half
 * access reads/writes bits 63:32; writes to read-only fields fail with 13 unless
 * any_field_writable (IA32_VMX_MISC[29] as advertised). */
int vmcs12_vmread(const struct vmcs12 *v, uint64_t encoding, uint64_t *val);
int vmcs12_vmwrite(struct vmcs12 *v, uint64_t encoding, uint64_t val, bool any_field_writable);
/* The same, with the feature-dependent fields of the features (VMCS12_FEAT_*) advertised. */
int vmcs12_vmread_feat(const struct vmcs12 *v, uint64_t encoding, uint64_t *val, unsigned features);
int vmcs12_vmwrite_feat(struct vmcs12 *v, uint64_t encoding, uint64_t val, bool any_field_writable,
                        unsigned features);

/* hv's own accessors (full field width; unsupported encodings read 0 and are not
 * written). They run on every nested VM-Enter and exit, so the common case is inline:
 * for a constant encoding the slot lookup folds to two loads and a compare. */
/* The slots (vmcs12_fields.h): the table, and a 512-byte map that gives the slot in O(1):
 * width (2 bits), type (2 bits) and index (bits 5:1: no field in Appendix B has an index
 * above 31) make a 9-bit key; slot + 1 is stored, 0 meaning "no field". Both are constant
 * and visible here, so a constant encoding's lookup folds away. */
#define VMCS12_MAP_KEY(e) ((((e) >> 13 & 3u) << 7) | (((e) >> 10 & 3u) << 5) | ((e) >> 1 & 31u))
enum {
#define VMCS12_SLOT_ENUM_(e) VMCS12_TSLOT_##e,
    VMCS12_FIELD_LIST(VMCS12_SLOT_ENUM_)
#undef VMCS12_SLOT_ENUM_
    VMCS12_NR_TABLE_FIELDS
};
static const uint16_t vmcs12_field_table[VMCS12_NR_TABLE_FIELDS] = {
#define VMCS12_TABLE_ENTRY_(e) e,
    VMCS12_FIELD_LIST(VMCS12_TABLE_ENTRY_)
#undef VMCS12_TABLE_ENTRY_
};
static const uint8_t vmcs12_slot_map[512] = {
#define VMCS12_MAP_ENTRY_(e) [VMCS12_MAP_KEY(e)] = VMCS12_TSLOT_##e + 1,
    VMCS12_FIELD_LIST(VMCS12_MAP_ENTRY_)
#undef VMCS12_MAP_ENTRY_
};
uint64_t vmcs12_get_slow(const struct vmcs12 *v, uint32_t encoding);
void vmcs12_set_slow(struct vmcs12 *v, uint32_t encoding, uint64_t val);

/* The slot of a full field in fields[] (feature-dependent ones included, whatever is
 * advertised), or -1. */
int vmcs12_slot(uint32_t encoding);
/* hv's bulk copies between a hardware VMCS and the cache (a reflected exit, the shadow
 * VMCS) go through field lists prepared once: each entry is encoding | slot << 16, so a
 * field costs its VMREAD or VMWRITE and a few instructions, not a slot lookup. Fields
 * without a slot are left out; returns the number of entries written to out. */
unsigned vmcs12_list_prepare(uint32_t *out, const uint32_t *encodings, unsigned n);
#define VMCS12_LIST_FIELD(ent) ((ent) & 0xffffu)
#define VMCS12_LIST_SLOT(ent) ((ent) >> 16)

static inline uint64_t vmcs12_width_mask(uint32_t e)
{
    return VMCS_FIELD_WIDTH(e) == VMCS_WIDTH_16 ? 0xffffull : VMCS_FIELD_WIDTH(e) == VMCS_WIDTH_32 ? 0xffffffffull : ~0ull;
}
static inline uint64_t vmcs12_get(const struct vmcs12 *v, uint32_t e)
{
    unsigned s = vmcs12_slot_map[VMCS12_MAP_KEY(e) & 511];
    if (__builtin_expect(!s || (e & 1) || vmcs12_field_table[s - 1] != e, 0))
        return vmcs12_get_slow(v, e);
    return v->fields[s - 1] & vmcs12_width_mask(e);
}
static inline void vmcs12_set(struct vmcs12 *v, uint32_t e, uint64_t val)
{
    unsigned s = vmcs12_slot_map[VMCS12_MAP_KEY(e) & 511];
    if (__builtin_expect(!s || (e & 1) || vmcs12_field_table[s - 1] != e, 0)) {
        vmcs12_set_slow(v, e, val);
        return;
    }
    v->fields[s - 1] = val & vmcs12_width_mask(e);
}
#endif
