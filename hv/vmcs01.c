#include "vmcs01.h"
#include <stdio.h>
#include "../lib/log.h"
#include "../lib/x86.h"
#include "../vmx/vmcs.h"
#include "../vmx/vmx_bits.h"
#include "host.h"

extern char vmx_exit_stub[];

/* A segment as the SDM's guest-state area wants it (25.4.1), from the live GDT. */
static void guest_segment(uint64_t gdt, enum guest_seg seg, uint16_t sel)
{
    uint64_t base = 0;
    uint32_t limit = 0, ar = 0x10000; /* unusable */
    if (sel & ~7u) {
        uint64_t d = *(const uint64_t *)(uintptr_t)(gdt + (sel & ~7u));
        limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
        if (d & (1ull << 55))
            limit = (limit << 12) | 0xfff;
        base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000);
        ar = (uint32_t)((d >> 40) & 0xf0ff);
        if (ar & 0x10)
            ar |= 1; /* code/data: the accessed bit must be set (26.3.1.2) */
        else
            base |= (*(const uint64_t *)(uintptr_t)(gdt + (sel & ~7u) + 8) & 0xffffffff) << 32;
    }
    vmcs_write(GUEST_SEG_SELECTOR(seg), sel);
    vmcs_write(GUEST_SEG_BASE(seg), base);
    vmcs_write(GUEST_SEG_LIMIT(seg), limit);
    vmcs_write(GUEST_SEG_AR(seg), ar);
}

/* Every VM exit sets DR7 to 400H and clears IA32_DEBUGCTL (SDM 28.5.1): the guest keeps its
 * own only if the exit saves them (28.3.1) and the entry loads them back (26.3.2.1). */
uint32_t vmcs01_exit_controls(const struct vmx_msrs *m)
{
    return vmx_adjust_ctls(m->exit, VM_EXIT_SAVE_DEBUG_CONTROLS | VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_SAVE_EFER |
                                         VM_EXIT_LOAD_EFER | VM_EXIT_SAVE_PAT | VM_EXIT_LOAD_PAT);
}

uint32_t vmcs01_entry_controls(const struct vmx_msrs *m, bool ia32e)
{
    uint32_t entry = VM_ENTRY_LOAD_DEBUG_CONTROLS | VM_ENTRY_LOAD_EFER | VM_ENTRY_LOAD_PAT;
    if (ia32e)
        entry |= VM_ENTRY_IA32E_MODE;
    return vmx_adjust_ctls(m->entry, entry);
}

static void setup_controls(struct vcpu *v)
{
    const struct vmx_msrs *m = &hv.msrs;
    uint32_t proc2 = SECONDARY_EPT | SECONDARY_UNRESTRICTED_GUEST;
    /* Instructions the guest may use natively must stay enabled, or they #UD. */
    proc2 |= hv.caps.proc2_allowed1 & (SECONDARY_RDTSCP | SECONDARY_INVPCID | SECONDARY_XSAVES);
    /* NMIs exit and the guest's NMI blocking is virtual: hv sees every NMI, holds one that
     * hits it in root mode, and injects it when the guest's NMI window opens (NMI-window
     * exiting requires virtual NMIs, which require NMI exiting: SDM 26.2.1.1). */
    vmcs_write(PIN_BASED_VM_EXEC_CONTROL, vmx_adjust_ctls(m->pinbased, vmx_virtual_nmi_pin(m->pinbased)));
    vmcs_write(CPU_BASED_VM_EXEC_CONTROL,
               vmx_adjust_ctls(m->procbased, CPU_BASED_USE_MSR_BITMAPS | CPU_BASED_USE_IO_BITMAPS |
                                                  CPU_BASED_ACTIVATE_SECONDARY));
    vmcs_write(SECONDARY_VM_EXEC_CONTROL, vmx_adjust_ctls(m->procbased2, proc2));
    vmcs_write(VM_EXIT_CONTROLS, vmcs01_exit_controls(m));
    vmcs_write(VM_ENTRY_CONTROLS, vmcs01_entry_controls(m, rdmsr(MSR_IA32_EFER) & EFER_LMA));
    vmcs_write(EXCEPTION_BITMAP, 0);
    vmcs_write(CR3_TARGET_COUNT, 0);
    vmcs_write(MSR_BITMAP, (uint64_t)(uintptr_t)hv.msr_bitmap);
    vmcs_write(IO_BITMAP_A, (uint64_t)(uintptr_t)hv.io_bitmap_a);
    vmcs_write(IO_BITMAP_B, (uint64_t)(uintptr_t)hv.io_bitmap_b);
    vmcs_write(EPT_POINTER, v->ept01.eptp); /* this CPU's copy (hv/exit_ept.c) */
    vmcs_write(VMCS_LINK_POINTER, ~0ull);
    vmcs_write(VM_EXIT_MSR_STORE_COUNT, 0);
    vmcs_write(VM_EXIT_MSR_LOAD_COUNT, 0);
    vmcs_write(VM_ENTRY_MSR_LOAD_COUNT, 0);
    vmcs_write(VM_ENTRY_INTR_INFO_FIELD, 0);
}

static void setup_host(struct vcpu *v)
{
    vmcs_write(HOST_CR0, read_cr0());
    vmcs_write(HOST_CR3, hv.ho->host_cr3);
    /* XSETBV on the guest's behalf needs CR4.OSXSAVE in root mode, which the firmware
     * may not have set: hv's CR4 after every exit has it whenever the CPU has XSAVE. */
    vmcs_write(HOST_CR4, read_cr4() | ((cpuid(1, 0).ecx & (1u << 26)) ? CR4_OSXSAVE : 0));
    vmcs_write(HOST_CS_SELECTOR, HOST_CS);
    vmcs_write(HOST_SS_SELECTOR, HOST_DS);
    vmcs_write(HOST_DS_SELECTOR, HOST_DS);
    vmcs_write(HOST_ES_SELECTOR, HOST_DS);
    vmcs_write(HOST_FS_SELECTOR, 0);
    vmcs_write(HOST_GS_SELECTOR, 0);
    vmcs_write(HOST_TR_SELECTOR, HOST_TR);
    vmcs_write(HOST_FS_BASE, 0);
    vmcs_write(HOST_GS_BASE, (uint64_t)(uintptr_t)v); /* this_vcpu() */
    vmcs_write(HOST_TR_BASE, (uint64_t)(uintptr_t)&v->tss);
    vmcs_write(HOST_GDTR_BASE, (uint64_t)(uintptr_t)v->gdt);
    vmcs_write(HOST_IDTR_BASE, host_idt_base());
    vmcs_write(HOST_IA32_SYSENTER_CS, 0);
    vmcs_write(HOST_IA32_SYSENTER_ESP, 0);
    vmcs_write(HOST_IA32_SYSENTER_EIP, 0);
    vmcs_write(HOST_IA32_EFER, rdmsr(MSR_IA32_EFER));
    vmcs_write(HOST_IA32_PAT, rdmsr(MSR_IA32_PAT));
    /* The exit stub finds its vcpu at [HOST_RSP]; HOST_RSP stays 16-byte aligned. */
    uint64_t *top = (uint64_t *)(uintptr_t)(v->stack + HOST_STACK_SIZE - 16);
    *top = (uint64_t)(uintptr_t)v;
    vmcs_write(HOST_RSP, (uint64_t)(uintptr_t)top);
    vmcs_write(HOST_RIP, (uint64_t)(uintptr_t)vmx_exit_stub);
}

static void setup_guest(struct vcpu *v, uint64_t fw_cr0, uint64_t fw_cr4)
{
    struct dtr gdtr, idtr;
    sgdt(&gdtr);
    sidt(&idtr);
    /* hv owns the CR0/CR4 bits VMX fixes (except PE/PG: unrestricted guest); the guest
     * sees its own values through the read shadows, CR4.VMXE included. */
    v->cr0_mask = (hv.msrs.cr0_fixed0 | ~hv.msrs.cr0_fixed1) & ~(CR0_PE | CR0_PG) & 0xffffffffull;
    v->cr4_mask = (hv.msrs.cr4_fixed0 | ~hv.msrs.cr4_fixed1) & 0xffffffffull;
    vmcs_write(CR0_GUEST_HOST_MASK, v->cr0_mask);
    vmcs_write(CR4_GUEST_HOST_MASK, v->cr4_mask);
    vmcs_write(CR0_READ_SHADOW, fw_cr0);
    vmcs_write(CR4_READ_SHADOW, fw_cr4);
    vmcs_write(GUEST_CR0, read_cr0());
    vmcs_write(GUEST_CR3, v->fw_cr3);
    vmcs_write(GUEST_CR4, read_cr4());
    uint64_t dr7;
    __asm__ volatile("mov %%dr7, %0" : "=r"(dr7));
    vmcs_write(GUEST_DR7, dr7);
    uint64_t g = gdtr.base;
    guest_segment(g, SEG_ES, read_es());
    guest_segment(g, SEG_CS, read_cs());
    guest_segment(g, SEG_SS, read_ss());
    guest_segment(g, SEG_DS, read_ds());
    guest_segment(g, SEG_FS, read_fs());
    guest_segment(g, SEG_GS, read_gs());
    guest_segment(g, SEG_LDTR, read_ldtr());
    uint16_t tr = read_tr();
    if (tr & ~7u) {
        guest_segment(g, SEG_TR, tr);
    } else {
        /* UEFI runs without a TSS, but VM entry needs a usable busy TSS in TR (26.3.1.2).
         * A dummy one is never used: the firmware takes no privilege-changing interrupts. */
        vmcs_write(GUEST_TR_SELECTOR, 0);
        vmcs_write(GUEST_TR_BASE, 0);
        vmcs_write(GUEST_TR_LIMIT, 0x67);
        vmcs_write(GUEST_TR_AR_BYTES, 0x8b);
    }
    vmcs_write(GUEST_FS_BASE, rdmsr(MSR_IA32_FS_BASE));
    vmcs_write(GUEST_GS_BASE, rdmsr(MSR_IA32_GS_BASE));
    vmcs_write(GUEST_GDTR_BASE, gdtr.base);
    vmcs_write(GUEST_GDTR_LIMIT, gdtr.limit);
    vmcs_write(GUEST_IDTR_BASE, idtr.base);
    vmcs_write(GUEST_IDTR_LIMIT, idtr.limit);
    vmcs_write(GUEST_IA32_DEBUGCTL, 0); /* its reset value: firmware leaves it (Bochs lacks the MSR) */
    vmcs_write(GUEST_IA32_PAT, rdmsr(MSR_IA32_PAT));
    vmcs_write(GUEST_IA32_EFER, rdmsr(MSR_IA32_EFER));
    vmcs_write(GUEST_SYSENTER_CS, rdmsr(MSR_IA32_SYSENTER_CS));
    vmcs_write(GUEST_SYSENTER_ESP, rdmsr(MSR_IA32_SYSENTER_ESP));
    vmcs_write(GUEST_SYSENTER_EIP, rdmsr(MSR_IA32_SYSENTER_EIP));
    vmcs_write(GUEST_RSP, v->resume.rsp);
    vmcs_write(GUEST_RIP, v->resume.rip);
    vmcs_write(GUEST_RFLAGS, v->resume.rflags);
    vmcs_write(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    vmcs_write(GUEST_INTERRUPTIBILITY_INFO, 0);
    vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, 0);
}

void vmcs01_setup(struct vcpu *v, uint64_t fw_cr0, uint64_t fw_cr4)
{
    setup_controls(v);
    setup_host(v);
    setup_guest(v, fw_cr0, fw_cr4);
}

void vmcs01_dump_guest(struct vcpu *v)
{
    static const struct { uint32_t f; const char *n; } f[] = {
        {GUEST_RIP, "rip"}, {GUEST_RSP, "rsp"}, {GUEST_RFLAGS, "rflags"}, {GUEST_CR0, "cr0"},
        {GUEST_CR3, "cr3"}, {GUEST_CR4, "cr4"}, {GUEST_IA32_EFER, "efer"}, {CR0_READ_SHADOW, "cr0 shadow"},
        {CR4_READ_SHADOW, "cr4 shadow"}, {GUEST_CS_SELECTOR, "cs"}, {GUEST_CS_BASE, "cs base"},
        {GUEST_CS_AR_BYTES, "cs ar"}, {GUEST_SS_SELECTOR, "ss"}, {GUEST_SS_AR_BYTES, "ss ar"},
        {GUEST_DS_SELECTOR, "ds"}, {GUEST_TR_SELECTOR, "tr"}, {GUEST_TR_AR_BYTES, "tr ar"},
        {GUEST_GDTR_BASE, "gdtr"}, {GUEST_IDTR_BASE, "idtr"}, {GUEST_ACTIVITY_STATE, "activity"},
        {GUEST_INTERRUPTIBILITY_INFO, "interruptibility"}, {VM_ENTRY_CONTROLS, "entry ctls"},
        {EXIT_QUALIFICATION, "exit qualification"}, {VM_EXIT_INTR_INFO, "exit intr info"},
        {IDT_VECTORING_INFO_FIELD, "idt vectoring"}, {GUEST_PHYSICAL_ADDRESS, "guest phys"},
        {VM_INSTRUCTION_ERROR, "vm-instruction error"},
    };
    for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i += 3) {
        char line[200];
        int n = 0;
        for (unsigned j = i; j < i + 3 && j < sizeof(f) / sizeof(f[0]); j++)
            n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s=0x%llx", j > i ? ", " : "", f[j].n,
                          (unsigned long long)vmcs_read(f[j].f));
        log_err("cpu%u:   %s", v->id, line);
    }
    const uint64_t *r = v->rc.regs;
    log_err("cpu%u:   rax=%llx rbx=%llx rcx=%llx rdx=%llx rsi=%llx rdi=%llx rbp=%llx", v->id,
            (unsigned long long)r[0], (unsigned long long)r[3], (unsigned long long)r[1], (unsigned long long)r[2],
            (unsigned long long)r[6], (unsigned long long)r[7], (unsigned long long)r[5]);
}
