/*
 * The field table of vmcs12 (nested/vmcs12.c) as an X-macro: F(encoding) for every field
 * in slot order, so that the slot of a constant encoding is a compile-time constant
 * (vmcs12.h: vmcs12_get/vmcs12_set fold to one load or store).
 *
 * Every encoding hv supports for L1, sorted ascending; the position in this array is
 * also the slot in struct vmcs12.fields[] (and so the layout of L1's VMCS region).
 * Left out: fields of features hv never offers L1 (ENCLS exiting bitmap,
 * MPX, perf global ctrl), and the fields that exist only while their feature is
 * advertised (EPT_POINTER, APIC virtualization, PML, VMCS shadowing, VM functions, ...):
 * those live in their own slots past the table (vmcs12.h, feat_fields, vmcs12_vmread_feat).
 *
 * Sorted so that tests/unit/test_vmcs12.c can check it; lookups go through the small
 * map of vmcs12.h (vmcs12_slot_map).
 */
#ifndef NESTED_VMCS12_FIELDS_H
#define NESTED_VMCS12_FIELDS_H
#define VMCS12_FIELD_LIST(F) \
    /* 16-bit control */ \
    F(VIRTUAL_PROCESSOR_ID) \
    /* 16-bit guest state */ \
    F(GUEST_ES_SELECTOR) F(GUEST_CS_SELECTOR) F(GUEST_SS_SELECTOR) F(GUEST_DS_SELECTOR) \
    F(GUEST_FS_SELECTOR) F(GUEST_GS_SELECTOR) F(GUEST_LDTR_SELECTOR) F(GUEST_TR_SELECTOR) \
    /* 16-bit host state */ \
    F(HOST_ES_SELECTOR) F(HOST_CS_SELECTOR) F(HOST_SS_SELECTOR) F(HOST_DS_SELECTOR) \
    F(HOST_FS_SELECTOR) F(HOST_GS_SELECTOR) F(HOST_TR_SELECTOR) \
    /* 64-bit control */ \
    F(IO_BITMAP_A) F(IO_BITMAP_B) F(MSR_BITMAP) F(VM_EXIT_MSR_STORE_ADDR) F(VM_EXIT_MSR_LOAD_ADDR) \
    F(VM_ENTRY_MSR_LOAD_ADDR) F(EXECUTIVE_VMCS_POINTER) F(TSC_OFFSET) \
    /* 64-bit read-only data */ \
    F(GUEST_PHYSICAL_ADDRESS) \
    /* 64-bit guest state */ \
    F(VMCS_LINK_POINTER) F(GUEST_IA32_DEBUGCTL) F(GUEST_IA32_PAT) F(GUEST_IA32_EFER) \
    F(GUEST_PDPTR0) F(GUEST_PDPTR1) F(GUEST_PDPTR2) F(GUEST_PDPTR3) \
    /* 64-bit host state */ \
    F(HOST_IA32_PAT) F(HOST_IA32_EFER) \
    /* 32-bit control */ \
    F(PIN_BASED_VM_EXEC_CONTROL) F(CPU_BASED_VM_EXEC_CONTROL) F(EXCEPTION_BITMAP) \
    F(PAGE_FAULT_ERROR_CODE_MASK) F(PAGE_FAULT_ERROR_CODE_MATCH) F(CR3_TARGET_COUNT) \
    F(VM_EXIT_CONTROLS) F(VM_EXIT_MSR_STORE_COUNT) F(VM_EXIT_MSR_LOAD_COUNT) F(VM_ENTRY_CONTROLS) \
    F(VM_ENTRY_MSR_LOAD_COUNT) F(VM_ENTRY_INTR_INFO_FIELD) F(VM_ENTRY_EXCEPTION_ERROR_CODE) \
    F(VM_ENTRY_INSTRUCTION_LEN) F(SECONDARY_VM_EXEC_CONTROL) \
    /* 32-bit read-only data */ \
    F(VM_INSTRUCTION_ERROR) F(VM_EXIT_REASON) F(VM_EXIT_INTR_INFO) F(VM_EXIT_INTR_ERROR_CODE) \
    F(IDT_VECTORING_INFO_FIELD) F(IDT_VECTORING_ERROR_CODE) F(VM_EXIT_INSTRUCTION_LEN) \
    F(VMX_INSTRUCTION_INFO) \
    /* 32-bit guest state */ \
    F(GUEST_ES_LIMIT) F(GUEST_CS_LIMIT) F(GUEST_SS_LIMIT) F(GUEST_DS_LIMIT) F(GUEST_FS_LIMIT) \
    F(GUEST_GS_LIMIT) F(GUEST_LDTR_LIMIT) F(GUEST_TR_LIMIT) F(GUEST_GDTR_LIMIT) F(GUEST_IDTR_LIMIT) \
    F(GUEST_ES_AR_BYTES) F(GUEST_CS_AR_BYTES) F(GUEST_SS_AR_BYTES) F(GUEST_DS_AR_BYTES) \
    F(GUEST_FS_AR_BYTES) F(GUEST_GS_AR_BYTES) F(GUEST_LDTR_AR_BYTES) F(GUEST_TR_AR_BYTES) \
    F(GUEST_INTERRUPTIBILITY_INFO) F(GUEST_ACTIVITY_STATE) F(GUEST_SMBASE) F(GUEST_SYSENTER_CS) \
    F(VMX_PREEMPTION_TIMER_VALUE) \
    /* 32-bit host state */ \
    F(HOST_IA32_SYSENTER_CS) \
    /* natural-width control */ \
    F(CR0_GUEST_HOST_MASK) F(CR4_GUEST_HOST_MASK) F(CR0_READ_SHADOW) F(CR4_READ_SHADOW) \
    F(CR3_TARGET_VALUE0) F(CR3_TARGET_VALUE1) F(CR3_TARGET_VALUE2) F(CR3_TARGET_VALUE3) \
    /* natural-width read-only data */ \
    F(EXIT_QUALIFICATION) F(IO_RCX) F(IO_RSI) F(IO_RDI) F(IO_RIP) F(GUEST_LINEAR_ADDRESS) \
    /* natural-width guest state */ \
    F(GUEST_CR0) F(GUEST_CR3) F(GUEST_CR4) F(GUEST_ES_BASE) F(GUEST_CS_BASE) F(GUEST_SS_BASE) \
    F(GUEST_DS_BASE) F(GUEST_FS_BASE) F(GUEST_GS_BASE) F(GUEST_LDTR_BASE) F(GUEST_TR_BASE) \
    F(GUEST_GDTR_BASE) F(GUEST_IDTR_BASE) F(GUEST_DR7) F(GUEST_RSP) F(GUEST_RIP) F(GUEST_RFLAGS) \
    F(GUEST_PENDING_DBG_EXCEPTIONS) F(GUEST_SYSENTER_ESP) F(GUEST_SYSENTER_EIP) \
    /* natural-width host state */ \
    F(HOST_CR0) F(HOST_CR3) F(HOST_CR4) F(HOST_FS_BASE) F(HOST_GS_BASE) F(HOST_TR_BASE) \
    F(HOST_GDTR_BASE) F(HOST_IDTR_BASE) F(HOST_IA32_SYSENTER_ESP) F(HOST_IA32_SYSENTER_EIP) \
    F(HOST_RSP) F(HOST_RIP) \

#endif
