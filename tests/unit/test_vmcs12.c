/* Host tests for nested/vmcs12.c: the field table and VMREAD/VMWRITE semantics. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "nested/vmcs12.h"
#include "tests/unit/test_util.h"

#define ULL(x) ((unsigned long long)(x))

/* Every encoding of vmx/vmcs_fields.h and whether hv offers it to L1. */
static const struct { uint32_t enc; bool supported; } all_fields[] = {
    {VIRTUAL_PROCESSOR_ID, 1}, {POSTED_INTR_NV, 0}, {EPTP_INDEX, 0},
    {GUEST_ES_SELECTOR, 1}, {GUEST_CS_SELECTOR, 1}, {GUEST_SS_SELECTOR, 1}, {GUEST_DS_SELECTOR, 1},
    {GUEST_FS_SELECTOR, 1}, {GUEST_GS_SELECTOR, 1}, {GUEST_LDTR_SELECTOR, 1}, {GUEST_TR_SELECTOR, 1},
    {GUEST_INTR_STATUS, 0}, {GUEST_PML_INDEX, 0},
    {HOST_ES_SELECTOR, 1}, {HOST_CS_SELECTOR, 1}, {HOST_SS_SELECTOR, 1}, {HOST_DS_SELECTOR, 1},
    {HOST_FS_SELECTOR, 1}, {HOST_GS_SELECTOR, 1}, {HOST_TR_SELECTOR, 1},
    {IO_BITMAP_A, 1}, {IO_BITMAP_B, 1}, {MSR_BITMAP, 1}, {VM_EXIT_MSR_STORE_ADDR, 1},
    {VM_EXIT_MSR_LOAD_ADDR, 1}, {VM_ENTRY_MSR_LOAD_ADDR, 1}, {EXECUTIVE_VMCS_POINTER, 1}, {PML_ADDRESS, 0},
    {TSC_OFFSET, 1}, {VIRTUAL_APIC_PAGE_ADDR, 0}, {APIC_ACCESS_ADDR, 0}, {POSTED_INTR_DESC_ADDR, 0},
    {VM_FUNCTION_CONTROL, 0}, {EPT_POINTER, 0}, {EOI_EXIT_BITMAP0, 0}, {EOI_EXIT_BITMAP1, 0},
    {EOI_EXIT_BITMAP2, 0}, {EOI_EXIT_BITMAP3, 0}, {EPTP_LIST_ADDRESS, 0}, {VMREAD_BITMAP, 0},
    {VMWRITE_BITMAP, 0}, {VE_INFO_ADDRESS, 0}, {XSS_EXIT_BITMAP, 0}, {ENCLS_EXITING_BITMAP, 0},
    {TSC_MULTIPLIER, 0},
    {GUEST_PHYSICAL_ADDRESS, 1},
    {VMCS_LINK_POINTER, 1}, {GUEST_IA32_DEBUGCTL, 1}, {GUEST_IA32_PAT, 1}, {GUEST_IA32_EFER, 1},
    {GUEST_IA32_PERF_GLOBAL_CTRL, 0}, {GUEST_PDPTR0, 1}, {GUEST_PDPTR1, 1}, {GUEST_PDPTR2, 1},
    {GUEST_PDPTR3, 1}, {GUEST_BNDCFGS, 0},
    {HOST_IA32_PAT, 1}, {HOST_IA32_EFER, 1}, {HOST_IA32_PERF_GLOBAL_CTRL, 0},
    {PIN_BASED_VM_EXEC_CONTROL, 1}, {CPU_BASED_VM_EXEC_CONTROL, 1}, {EXCEPTION_BITMAP, 1},
    {PAGE_FAULT_ERROR_CODE_MASK, 1}, {PAGE_FAULT_ERROR_CODE_MATCH, 1}, {CR3_TARGET_COUNT, 1},
    {VM_EXIT_CONTROLS, 1}, {VM_EXIT_MSR_STORE_COUNT, 1}, {VM_EXIT_MSR_LOAD_COUNT, 1},
    {VM_ENTRY_CONTROLS, 1}, {VM_ENTRY_MSR_LOAD_COUNT, 1}, {VM_ENTRY_INTR_INFO_FIELD, 1},
    {VM_ENTRY_EXCEPTION_ERROR_CODE, 1}, {VM_ENTRY_INSTRUCTION_LEN, 1}, {TPR_THRESHOLD, 0},
    {SECONDARY_VM_EXEC_CONTROL, 1}, {PLE_GAP, 0}, {PLE_WINDOW, 0},
    {VM_INSTRUCTION_ERROR, 1}, {VM_EXIT_REASON, 1}, {VM_EXIT_INTR_INFO, 1}, {VM_EXIT_INTR_ERROR_CODE, 1},
    {IDT_VECTORING_INFO_FIELD, 1}, {IDT_VECTORING_ERROR_CODE, 1}, {VM_EXIT_INSTRUCTION_LEN, 1},
    {VMX_INSTRUCTION_INFO, 1},
    {GUEST_ES_LIMIT, 1}, {GUEST_CS_LIMIT, 1}, {GUEST_SS_LIMIT, 1}, {GUEST_DS_LIMIT, 1}, {GUEST_FS_LIMIT, 1},
    {GUEST_GS_LIMIT, 1}, {GUEST_LDTR_LIMIT, 1}, {GUEST_TR_LIMIT, 1}, {GUEST_GDTR_LIMIT, 1},
    {GUEST_IDTR_LIMIT, 1}, {GUEST_ES_AR_BYTES, 1}, {GUEST_CS_AR_BYTES, 1}, {GUEST_SS_AR_BYTES, 1},
    {GUEST_DS_AR_BYTES, 1}, {GUEST_FS_AR_BYTES, 1}, {GUEST_GS_AR_BYTES, 1}, {GUEST_LDTR_AR_BYTES, 1},
    {GUEST_TR_AR_BYTES, 1}, {GUEST_INTERRUPTIBILITY_INFO, 1}, {GUEST_ACTIVITY_STATE, 1}, {GUEST_SMBASE, 1},
    {GUEST_SYSENTER_CS, 1}, {VMX_PREEMPTION_TIMER_VALUE, 1},
    {HOST_IA32_SYSENTER_CS, 1},
    {CR0_GUEST_HOST_MASK, 1}, {CR4_GUEST_HOST_MASK, 1}, {CR0_READ_SHADOW, 1}, {CR4_READ_SHADOW, 1},
    {CR3_TARGET_VALUE0, 1}, {CR3_TARGET_VALUE1, 1}, {CR3_TARGET_VALUE2, 1}, {CR3_TARGET_VALUE3, 1},
    {EXIT_QUALIFICATION, 1}, {IO_RCX, 1}, {IO_RSI, 1}, {IO_RDI, 1}, {IO_RIP, 1}, {GUEST_LINEAR_ADDRESS, 1},
    {GUEST_CR0, 1}, {GUEST_CR3, 1}, {GUEST_CR4, 1}, {GUEST_ES_BASE, 1}, {GUEST_CS_BASE, 1}, {GUEST_SS_BASE, 1},
    {GUEST_DS_BASE, 1}, {GUEST_FS_BASE, 1}, {GUEST_GS_BASE, 1}, {GUEST_LDTR_BASE, 1}, {GUEST_TR_BASE, 1},
    {GUEST_GDTR_BASE, 1}, {GUEST_IDTR_BASE, 1}, {GUEST_DR7, 1}, {GUEST_RSP, 1}, {GUEST_RIP, 1},
    {GUEST_RFLAGS, 1}, {GUEST_PENDING_DBG_EXCEPTIONS, 1}, {GUEST_SYSENTER_ESP, 1}, {GUEST_SYSENTER_EIP, 1},
    {HOST_CR0, 1}, {HOST_CR3, 1}, {HOST_CR4, 1}, {HOST_FS_BASE, 1}, {HOST_GS_BASE, 1}, {HOST_TR_BASE, 1},
    {HOST_GDTR_BASE, 1}, {HOST_IDTR_BASE, 1}, {HOST_IA32_SYSENTER_ESP, 1}, {HOST_IA32_SYSENTER_EIP, 1},
    {HOST_RSP, 1}, {HOST_RIP, 1},
};
#define N_ALL (sizeof(all_fields) / sizeof(all_fields[0]))

static uint64_t width_mask(uint32_t enc)
{
    switch (VMCS_FIELD_WIDTH(enc)) {
    case VMCS_WIDTH_16: return 0xffff;
    case VMCS_WIDTH_32: return 0xffffffff;
    default: return ~0ull;
    }
}

static struct vmcs12 v; /* static: ASan still sees overruns of fields[] into the next object */

static void test_table(void)
{
    unsigned nsup = 0;
    bool seen[VMCS12_MAX_FIELDS] = {0};
    CHECK(VMCS12_NR_FIELDS <= VMCS12_MAX_FIELDS, "NR %u > MAX %u", VMCS12_NR_FIELDS, VMCS12_MAX_FIELDS);
    CHECK(sizeof(struct vmcs12) <= VMCS12_SIZE && 16 + 8 * VMCS12_NR_FIELDS <= VMCS12_SIZE, "fits 4 KiB");
    CHECK(offsetof(struct vmcs12, fields) == 16, "fields at 0x10 (layout in vmcs12.h)");
    for (unsigned i = 0; i < VMCS12_NR_FIELDS; i++) {
        uint32_t e = vmcs12_field_encoding(i);
        CHECK(vmcs12_field_index(e) == (int)i, "index of 0x%x is %d, not %u", e, vmcs12_field_index(e), i);
        CHECK(!(e & 1), "table entry 0x%x is a high-half encoding", e);
        if (i > 0)
            CHECK(vmcs12_field_encoding(i - 1) < e, "table not sorted at %u (0x%x)", i, e);
    }
    CHECK(vmcs12_field_encoding(VMCS12_NR_FIELDS) == 0xffffffffu, "encoding past the end");
    for (unsigned i = 0; i < N_ALL; i++) {
        int idx = vmcs12_field_index(all_fields[i].enc);
        CHECK((idx >= 0) == all_fields[i].supported, "field 0x%x: index %d, supported %d", all_fields[i].enc, idx,
              all_fields[i].supported);
        nsup += all_fields[i].supported;
        if (idx >= 0 && idx < VMCS12_MAX_FIELDS) { /* distinct fields, distinct slots */
            CHECK(!seen[idx], "0x%x shares slot %d", all_fields[i].enc, idx);
            seen[idx] = true;
        }
    }
    CHECK(nsup == VMCS12_NR_FIELDS, "table has %u fields, expected %u", VMCS12_NR_FIELDS, nsup);
}

static void test_round_trip(void)
{
    static const uint64_t pats[] = {~0ull, 0x0123456789abcdefull, 0, 0x8000000000000001ull};
    for (unsigned i = 0; i < VMCS12_NR_FIELDS; i++) {
        uint32_t e = vmcs12_field_encoding(i);
        bool ro = VMCS_FIELD_TYPE(e) == 1;
        CHECK(vmcs12_field_read_only(e) == ro, "read-only of 0x%x", e);
        for (unsigned p = 0; p < sizeof(pats) / sizeof(pats[0]); p++) {
            uint64_t got = 0x5a5a;
            CHECK(vmcs12_vmwrite(&v, e, pats[p], true) == 0, "vmwrite 0x%x", e);
            CHECK(vmcs12_vmread(&v, e, &got) == 0 && got == (pats[p] & width_mask(e)),
                  "0x%x: wrote %llx read %llx", e, ULL(pats[p]), ULL(got));
            CHECK(vmcs12_get(&v, e) == got, "vmcs12_get 0x%x", e);
        }
        vmcs12_set(&v, e, ~0ull);
        CHECK(vmcs12_get(&v, e) == width_mask(e), "vmcs12_set truncates 0x%x", e);
        /* Read-only (VM-exit information) fields: 13 and untouched, unless any_field_writable. */
        uint64_t before = vmcs12_get(&v, e), got;
        int rc = vmcs12_vmwrite(&v, e, 0x1234, false);
        CHECK(rc == (ro ? VMXERR_VMWRITE_READ_ONLY : 0), "vmwrite 0x%x without any-field: %d", e, rc);
        vmcs12_vmread(&v, e, &got);
        CHECK(got == (ro ? before : 0x1234), "0x%x after vmwrite without any-field: %llx", e, ULL(got));
    }
    /* Natural-width is 64 bits for a 64-bit L1; 16 and 32-bit fields truncate. */
    uint64_t got;
    vmcs12_vmwrite(&v, GUEST_CS_SELECTOR, ~0ull, false);
    CHECK(vmcs12_vmread(&v, GUEST_CS_SELECTOR, &got) == 0 && got == 0xffff, "16-bit: %llx", ULL(got));
    vmcs12_vmwrite(&v, GUEST_CS_LIMIT, ~0ull, false);
    CHECK(vmcs12_vmread(&v, GUEST_CS_LIMIT, &got) == 0 && got == 0xffffffff, "32-bit: %llx", ULL(got));
    vmcs12_vmwrite(&v, GUEST_RIP, ~0ull, false);
    CHECK(vmcs12_vmread(&v, GUEST_RIP, &got) == 0 && got == ~0ull, "natural: %llx", ULL(got));
}

static void test_high_access(void)
{
    unsigned n64 = 0;
    for (unsigned i = 0; i < VMCS12_NR_FIELDS; i++) {
        uint32_t e = vmcs12_field_encoding(i);
        uint64_t got = 0;
        if (VMCS_FIELD_WIDTH(e) != VMCS_WIDTH_64) {
            CHECK(vmcs12_field_index(e | 1) < 0, "0x%x high index", e | 1);
            CHECK(vmcs12_vmread(&v, e | 1, &got) == VMXERR_UNSUPPORTED_FIELD, "vmread high of 0x%x", e);
            CHECK(vmcs12_vmwrite(&v, e | 1, 0, true) == VMXERR_UNSUPPORTED_FIELD, "vmwrite high of 0x%x", e);
            continue;
        }
        n64++;
        bool ro = VMCS_FIELD_TYPE(e) == 1;
        CHECK(vmcs12_field_index(e | 1) == (int)i, "high half of 0x%x indexes the full field", e);
        vmcs12_vmwrite(&v, e, 0x1122334455667788ull, true);
        CHECK(vmcs12_vmread(&v, e | 1, &got) == 0 && got == 0x11223344, "high read 0x%x: %llx", e, ULL(got));
        CHECK(vmcs12_vmwrite(&v, e | 1, 0xdeadbeefcafef00dull, false) == (ro ? VMXERR_VMWRITE_READ_ONLY : 0),
              "high vmwrite 0x%x", e);
        vmcs12_vmread(&v, e, &got);
        CHECK(got == (ro ? 0x1122334455667788ull : 0xcafef00d55667788ull), "after high write 0x%x: %llx", e,
              ULL(got));
        CHECK(vmcs12_vmwrite(&v, e | 1, 0xdeadbeefcafef00dull, true) == 0, "high vmwrite any 0x%x", e);
        CHECK(vmcs12_vmread(&v, e, &got) == 0 && got == 0xcafef00d55667788ull, "full 0x%x: %llx", e, ULL(got));
        CHECK(vmcs12_get(&v, e | 1) == 0xcafef00d, "vmcs12_get high 0x%x", e);
        vmcs12_set(&v, e | 1, 0x1);
        CHECK(vmcs12_get(&v, e) == 0x155667788ull, "vmcs12_set high 0x%x", e);
    }
    CHECK(n64 == 19, "%u 64-bit fields", n64);
}

/* Every feature-dependent field: in L1's reach only with its feature, in hv's always; each its own slot. */
static void test_all_feature_fields(void)
{
    static const struct { uint32_t enc; unsigned feat; } f[] = {
        {EPT_POINTER, VMCS12_FEAT_EPT}, {XSS_EXIT_BITMAP, VMCS12_FEAT_XSAVES}, {PLE_GAP, VMCS12_FEAT_PLE},
        {PLE_WINDOW, VMCS12_FEAT_PLE}, {VIRTUAL_APIC_PAGE_ADDR, VMCS12_FEAT_TPR_SHADOW},
        {TPR_THRESHOLD, VMCS12_FEAT_TPR_SHADOW}, {APIC_ACCESS_ADDR, VMCS12_FEAT_APIC_ACCESS},
        {POSTED_INTR_NV, VMCS12_FEAT_POSTED_INTR}, {POSTED_INTR_DESC_ADDR, VMCS12_FEAT_POSTED_INTR},
        {EOI_EXIT_BITMAP0, VMCS12_FEAT_VID}, {EOI_EXIT_BITMAP3, VMCS12_FEAT_VID}, {GUEST_INTR_STATUS, VMCS12_FEAT_VID},
        {PML_ADDRESS, VMCS12_FEAT_PML}, {GUEST_PML_INDEX, VMCS12_FEAT_PML}, {VMREAD_BITMAP, VMCS12_FEAT_SHADOW_VMCS},
        {VMWRITE_BITMAP, VMCS12_FEAT_SHADOW_VMCS}, {VM_FUNCTION_CONTROL, VMCS12_FEAT_VMFUNC},
        {EPTP_LIST_ADDRESS, VMCS12_FEAT_VMFUNC}, {VE_INFO_ADDRESS, VMCS12_FEAT_EPT_VE}, {EPTP_INDEX, VMCS12_FEAT_EPT_VE},
    };
    memset(&v, 0, sizeof(v));
    for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        unsigned feat = 0;
        int slot = vmcs12_feat_slot(f[i].enc, &feat);
        CHECK(slot >= (int)VMCS12_NR_FIELDS && slot < VMCS12_MAX_FIELDS && feat == f[i].feat, "slot of %x: %d", f[i].enc, slot);
        uint64_t got = 1, val = 0x1122334455667788ull + i;
        CHECK(vmcs12_vmwrite_feat(&v, f[i].enc, val, false, ~0u & ~feat) == VMXERR_UNSUPPORTED_FIELD, "%x without its feature", f[i].enc);
        CHECK(vmcs12_vmwrite_feat(&v, f[i].enc, val, false, feat) == 0, "vmwrite %x", f[i].enc);
        CHECK(vmcs12_vmread_feat(&v, f[i].enc, &got, feat) == 0 && got == (val & vmcs12_width_mask(f[i].enc)), "vmread %x: %llx", f[i].enc, ULL(got));
        CHECK(vmcs12_get(&v, f[i].enc) == got, "hv's get %x", f[i].enc);
        vmcs12_set(&v, f[i].enc, 5);
        CHECK(vmcs12_vmread_feat(&v, f[i].enc, &got, feat) == 0 && got == 5, "hv's set %x", f[i].enc);
        if (VMCS_FIELD_WIDTH(f[i].enc) != VMCS_WIDTH_64)
            CHECK(vmcs12_feat_slot(f[i].enc | 1, NULL) < 0, "%x has no high half", f[i].enc);
        for (unsigned j = 0; j < i; j++)
            CHECK(vmcs12_feat_slot(f[j].enc, NULL) != slot, "%x and %x share a slot", f[i].enc, f[j].enc);
    }
    CHECK(vmcs12_feat_slot(EPT_POINTER, NULL) == VMCS12_SLOT_EPT_POINTER, "EPT_POINTER keeps its slot");
    CHECK(vmcs12_feat_slot(PLE_WINDOW, NULL) == VMCS12_SLOT_PLE_WINDOW, "PLE_WINDOW keeps its slot");
}

static void test_unsupported(void)
{
    static const uint64_t bad[] = {
        0x1234,                          /* bit 12 set: no such encoding */
        0xffffffffull, 0x8000, 0x10000, 1ull << 31,
        1ull << 32 | GUEST_RIP,          /* 64-bit operand with bits 63:32 set */
        1ull << 63 | VIRTUAL_PROCESSOR_ID, 0xffffffff00000000ull | GUEST_CR0,
        POSTED_INTR_NV, EPT_POINTER, EPT_POINTER | 1, TSC_MULTIPLIER, PLE_WINDOW, TPR_THRESHOLD,
        GUEST_IA32_PERF_GLOBAL_CTRL, GUEST_BNDCFGS, VMREAD_BITMAP, GUEST_INTR_STATUS,
        0x482c, /* index gap between GUEST_SYSENTER_CS and the preemption timer */
        0x6c18, 0x2034, 0x0001,
    };
    memset(&v, 0x77, sizeof(v));
    struct vmcs12 copy = v;
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t got = 42;
        CHECK(vmcs12_field_index(bad[i]) < 0, "index of %llx", ULL(bad[i]));
        CHECK(vmcs12_vmread(&v, bad[i], &got) == VMXERR_UNSUPPORTED_FIELD && got == 42, "vmread %llx", ULL(bad[i]));
        CHECK(vmcs12_vmwrite(&v, bad[i], 0, true) == VMXERR_UNSUPPORTED_FIELD, "vmwrite %llx", ULL(bad[i]));
        if (bad[i] <= 0xffffffff && vmcs12_feat_slot(bad[i], NULL) < 0) { /* hv reaches feature slots */
            CHECK(vmcs12_get(&v, (uint32_t)bad[i]) == 0, "get %llx", ULL(bad[i]));
            vmcs12_set(&v, (uint32_t)bad[i], 0);
        }
    }
    CHECK(memcmp(&v, &copy, sizeof(v)) == 0, "unsupported accesses changed nothing");
    /* A region L1 scribbled on still reads within each field's width. */
    uint64_t got;
    CHECK(vmcs12_vmread(&v, GUEST_ES_SELECTOR, &got) == 0 && got == 0x7777, "scribbled 16-bit: %llx", ULL(got));
    CHECK(vmcs12_vmread(&v, VM_EXIT_REASON, &got) == 0 && got == 0x77777777, "scribbled 32-bit: %llx", ULL(got));
}

/* Feature-dependent fields (vmcs12.h): error 12 unless their feature is advertised; each its
 * own slot, high half included. */
static void test_feature_fields(void)
{
    uint64_t got;
    memset(&v, 0, sizeof(v));
    CHECK(vmcs12_vmwrite_feat(&v, XSS_EXIT_BITMAP, 0x1800, false, VMCS12_FEAT_EPT) == VMXERR_UNSUPPORTED_FIELD &&
              vmcs12_vmread_feat(&v, XSS_EXIT_BITMAP, &got, 0) == VMXERR_UNSUPPORTED_FIELD,
          "XSS_EXIT_BITMAP without XSAVES: error 12");
    CHECK(vmcs12_vmwrite_feat(&v, XSS_EXIT_BITMAP, 0x1122334400001800ull, false, VMCS12_FEAT_XSAVES) == 0 &&
              vmcs12_vmread_feat(&v, XSS_EXIT_BITMAP, &got, VMCS12_FEAT_XSAVES) == 0 && got == 0x1122334400001800ull,
          "XSS_EXIT_BITMAP with XSAVES: %llx", ULL(got));
    CHECK(vmcs12_vmread_feat(&v, XSS_EXIT_BITMAP | 1, &got, VMCS12_FEAT_XSAVES) == 0 && got == 0x11223344,
          "high half: %llx", ULL(got));
    CHECK(vmcs12_vmwrite_feat(&v, EPT_POINTER, 0x5e, false, VMCS12_FEAT_EPT | VMCS12_FEAT_XSAVES) == 0 &&
              vmcs12_xss_exit_bitmap(&v) == 0x1122334400001800ull && vmcs12_eptp(&v) == 0x5e,
          "EPT_POINTER and XSS_EXIT_BITMAP in slots of their own");
    CHECK(vmcs12_field_index(XSS_EXIT_BITMAP) < 0, "not in the always-present table (VMCS shadowing)");
}

int main(void)
{
    test_feature_fields();
    test_table();
    test_round_trip();
    test_high_access();
    test_unsupported();
    test_all_feature_fields();
    return test_summary();
}
