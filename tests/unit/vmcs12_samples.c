#include "vmcs12_samples.h"
#include <string.h>
#include "lib/x86.h"
#include "vmx/vmx_bits.h"

void set_seg(struct vmcs12 *v, uint32_t sel_f, uint64_t sel, uint64_t base, uint64_t limit, uint64_t ar)
{
    uint32_t i = (sel_f - GUEST_ES_SELECTOR) / 2;
    vmcs12_set(v, sel_f, sel);
    vmcs12_set(v, GUEST_ES_BASE + 2 * i, base);
    vmcs12_set(v, GUEST_ES_LIMIT + 2 * i, limit);
    vmcs12_set(v, GUEST_ES_AR_BYTES + 2 * i, ar);
}

/* What L1 (a 64-bit hypervisor) sets up for a 64-bit L2 kernel. */
void valid64(struct vmcs12 *v)
{
    memset(v, 0, sizeof(*v));
    v->revision = VMCS12_REVISION;
    struct { uint32_t f; uint64_t val; } init[] = {
        {PIN_BASED_VM_EXEC_CONTROL, 0x16 | PIN_BASED_EXT_INTR_EXITING | PIN_BASED_NMI_EXITING |
                                    PIN_BASED_VIRTUAL_NMIS | PIN_BASED_PREEMPTION_TIMER},
        {CPU_BASED_VM_EXEC_CONTROL, 0x04006172 | CPU_BASED_HLT_EXITING | CPU_BASED_USE_TSC_OFFSETTING |
                                    CPU_BASED_USE_IO_BITMAPS | CPU_BASED_USE_MSR_BITMAPS |
                                    CPU_BASED_ACTIVATE_SECONDARY},
        {SECONDARY_VM_EXEC_CONTROL, SECONDARY_RDTSCP | SECONDARY_VPID | SECONDARY_INVPCID},
        {VIRTUAL_PROCESSOR_ID, 1},
        {IO_BITMAP_A, 0x10000}, {IO_BITMAP_B, 0x11000}, {MSR_BITMAP, 0x12000},
        {VM_EXIT_CONTROLS, 0x36dfb | VM_EXIT_SAVE_DEBUG_CONTROLS | VM_EXIT_HOST_ADDR_SPACE_SIZE |
                           VM_EXIT_ACK_INTR_ON_EXIT | VM_EXIT_SAVE_PAT | VM_EXIT_LOAD_PAT | VM_EXIT_SAVE_EFER |
                           VM_EXIT_LOAD_EFER | VM_EXIT_SAVE_PREEMPTION_TIMER},
        {VM_EXIT_MSR_STORE_COUNT, 2}, {VM_EXIT_MSR_STORE_ADDR, 0x13000},
        {VM_EXIT_MSR_LOAD_COUNT, 2}, {VM_EXIT_MSR_LOAD_ADDR, 0x13100},
        {VM_ENTRY_CONTROLS, 0x11fb | VM_ENTRY_LOAD_DEBUG_CONTROLS | VM_ENTRY_IA32E_MODE | VM_ENTRY_LOAD_PAT |
                            VM_ENTRY_LOAD_EFER},
        {VM_ENTRY_MSR_LOAD_COUNT, 2}, {VM_ENTRY_MSR_LOAD_ADDR, 0x13200},
        {EXCEPTION_BITMAP, 1u << 14}, {CR0_GUEST_HOST_MASK, CR0_PG | CR0_PE}, {CR4_GUEST_HOST_MASK, CR4_VMXE},
        {CR0_READ_SHADOW, 0x80050033}, {CR4_READ_SHADOW, 0x6a0},
        {HOST_CR0, 0x80050033}, {HOST_CR3, 0x100000}, {HOST_CR4, 0x26a0},
        {HOST_CS_SELECTOR, 0x08}, {HOST_SS_SELECTOR, 0x10}, {HOST_DS_SELECTOR, 0x10}, {HOST_ES_SELECTOR, 0x10},
        {HOST_FS_SELECTOR, 0}, {HOST_GS_SELECTOR, 0}, {HOST_TR_SELECTOR, 0x18},
        {HOST_FS_BASE, 0}, {HOST_GS_BASE, 0xffff888000001000}, {HOST_TR_BASE, 0xfffffe0000003000},
        {HOST_GDTR_BASE, 0xfffffe0000001000}, {HOST_IDTR_BASE, 0xfffffe0000000000},
        {HOST_IA32_SYSENTER_ESP, 0}, {HOST_IA32_SYSENTER_EIP, 0}, {HOST_IA32_SYSENTER_CS, 0},
        {HOST_RSP, 0xffffc90000010000}, {HOST_RIP, 0xffffffff81000000},
        {HOST_IA32_PAT, 0x0007040600070406}, {HOST_IA32_EFER, 0xd01},
        {GUEST_CR0, 0x80050033}, {GUEST_CR3, 0x200000}, {GUEST_CR4, 0x26a0}, {GUEST_DR7, 0x400},
        {GUEST_IA32_DEBUGCTL, 0}, {GUEST_IA32_PAT, 0x0007040600070406}, {GUEST_IA32_EFER, 0xd01},
        {GUEST_GDTR_BASE, 0xfffffe0000001000}, {GUEST_GDTR_LIMIT, 0x7f},
        {GUEST_IDTR_BASE, 0xfffffe0000000000}, {GUEST_IDTR_LIMIT, 0xfff},
        {GUEST_RSP, 0xffffc90000020000}, {GUEST_RIP, 0xffffffff81000100}, {GUEST_RFLAGS, 0x202},
        {GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE}, {GUEST_INTERRUPTIBILITY_INFO, 0},
        {GUEST_PENDING_DBG_EXCEPTIONS, 0}, {VMCS_LINK_POINTER, ~0ull},
        {GUEST_SYSENTER_ESP, 0xfffffe0000005000}, {GUEST_SYSENTER_EIP, 0xffffffff81001000},
        {VMX_PREEMPTION_TIMER_VALUE, 100000},
    };
    for (unsigned i = 0; i < sizeof(init) / sizeof(init[0]); i++)
        vmcs12_set(v, init[i].f, init[i].val);
    set_seg(v, GUEST_CS_SELECTOR, 0x10, 0, 0xffffffff, KERNEL_CS_AR);
    set_seg(v, GUEST_SS_SELECTOR, 0x18, 0, 0xffffffff, DATA_AR);
    set_seg(v, GUEST_DS_SELECTOR, 0x18, 0, 0xffffffff, DATA_AR);
    set_seg(v, GUEST_ES_SELECTOR, 0x18, 0, 0xffffffff, DATA_AR);
    set_seg(v, GUEST_FS_SELECTOR, 0, 0x7f0000001000, 0, UNUSABLE);
    set_seg(v, GUEST_GS_SELECTOR, 0, 0xffff888000002000, 0, UNUSABLE);
    set_seg(v, GUEST_LDTR_SELECTOR, 0, 0, 0, UNUSABLE);
    set_seg(v, GUEST_TR_SELECTOR, 0x40, 0xfffffe0000003000, 0x67, TSS_AR);
}

const struct vmx_msrs bochs_skylake_x = {
    .vendor = "GenuineIntel", .cpuid1_ecx = 1u << 5, .basic = 0x00d810000000002bull,
    .pinbased = 0x0000007f00000016ull, .procbased = 0xfff9fffe04006172ull, .exit = 0x01ffffff00036dfbull,
    .entry = 0x0003ffff000011fbull, .procbased2 = 0x02177fff00000000ull, .ept_vpid = 0x00000f0106334141ull,
    .misc = 0x00000000300481e5ull, .cr0_fixed0 = 0x80000021, .cr0_fixed1 = 0xffffffff, .cr4_fixed0 = 0x2000,
    .cr4_fixed1 = 0x3767ff, .cpuid0a_eax = 0x07300404, .cpuid0a_edx = 0x603, /* 4 GP, 3 fixed counters */
};
