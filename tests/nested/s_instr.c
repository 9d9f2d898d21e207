/* Scenarios 1, 2 and 8: VMX instructions on their own (SDM Vol. 3C ch. 31, error numbers 31.4). */
#include "l1.h"

#define CR4_VMXE (1ull << 13)

/* 1: failure modes. VMfailValid needs a current VMCS; without one every failure is
 * VMfailInvalid (SDM 31.2), so each check runs in the state that shows its number. */
void s_vmfail(void)
{
    u64 v = 0;
    struct exit e;
    *(u32 *)m.vmxon = cap.revision;
    *(u32 *)m.badrev = (cap.revision + 1) & 0x7fffffff;

    write_cr4(cr4_orig & ~CR4_VMXE);
    out("vmfail: vmxon with CR4.VMXE=0: %s", st_str(vmxon_(PA(m.vmxon))));
    write_cr4((cr4_orig | cap.cr4_fixed0) & cap.cr4_fixed1); /* SDM A.8 */
    out("vmfail: vmread outside VMX operation: %s", st_str(vmread_(EXIT_REASON, &v)));
    out("vmfail: vmptrld outside VMX operation: %s", st_str(vmptrld_(PA(m.vmcs[0]))));
    out("vmfail: vmxoff outside VMX operation: %s", st_str(vmxoff_()));
    out("vmfail: vmxon unaligned: %s", st_str(vmxon_(PA(m.vmxon) + 0x800)));
    out("vmfail: vmxon beyond MAXPHYADDR: %s", st_str(vmxon_(1ull << cap.maxphys)));
    out("vmfail: vmxon bad revision: %s", st_str(vmxon_(PA(m.badrev))));
    int st = vmxon_(PA(m.vmxon));
    out("vmfail: vmxon: %s", st_str(st));
    if (st != ST_OK)
        return;
    in_vmx = TRUE;

    /* In VMX root operation, no current VMCS. */
    out("vmfail: vmxon in VMX root, no current VMCS: %s", st_str(vmxon_(PA(m.vmxon))));
    st = vmptrst_(&v);
    out("vmfail: vmptrst, no current VMCS: %s %s", st_str(st), pname(v));
    out("vmfail: vmread, no current VMCS: %s", st_str(vmread_(EXIT_REASON, &v)));
    out("vmfail: vmwrite, no current VMCS: %s", st_str(vmwrite_(G_RIP, 0)));
    l2_enter(&e, 0);
    out("vmfail: vmlaunch, no current VMCS: %s", st_str(e.st));
    l2_enter(&e, 1);
    out("vmfail: vmresume, no current VMCS: %s", st_str(e.st));
    out("vmfail: vmptrld unaligned, no current VMCS: %s", st_str(vmptrld_(PA(m.vmcs[0]) + 8)));
    out("vmfail: vmclear of the VMXON region, no current VMCS: %s", st_str(vmclear_(PA(m.vmxon))));

    /* With a current VMCS: the error numbers. */
    vmcs_init(0, l2_vmcall);
    st = vmptrst_(&v);
    out("vmfail: vmptrst: %s %s", st_str(st), pname(v));
    out("vmfail: vmxon in VMX root: %s", st_str(vmxon_(PA(m.vmxon))));
    out("vmfail: vmptrld of the VMXON region: %s", st_str(vmptrld_(PA(m.vmxon))));
    out("vmfail: vmptrld unaligned: %s", st_str(vmptrld_(PA(m.vmcs[1]) + 8)));
    out("vmfail: vmptrld beyond MAXPHYADDR: %s", st_str(vmptrld_(1ull << cap.maxphys)));
    out("vmfail: vmptrld bad revision: %s", st_str(vmptrld_(PA(m.badrev))));
    out("vmfail: vmclear of the VMXON region: %s", st_str(vmclear_(PA(m.vmxon))));
    out("vmfail: vmclear unaligned: %s", st_str(vmclear_(PA(m.vmcs[1]) + 0x100)));
    out("vmfail: vmclear beyond MAXPHYADDR: %s", st_str(vmclear_(1ull << cap.maxphys)));
    st = vmptrst_(&v);
    out("vmfail: current VMCS after the failures: %s", pname(v));
    static const u64 bad[] = {0x6fff, 0x0001, 0x1000, 0x100004402ull};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        out("vmfail: vmread field 0x%llx: %s", bad[i], st_str(vmread_(bad[i], &v)));
    out("vmfail: vmwrite field 0x6fff: %s", st_str(vmwrite_(0x6fff, 0)));
    /* Read-only fields are writable only with IA32_VMX_MISC[29] (SDM A.6, 31.3 VMWRITE). */
    st = vmwrite_(EXIT_REASON, 0x1234);
    out("vmfail: vmwrite read-only VM_EXIT_REASON (misc[29] %u): %s", (unsigned)cap.ro_write, st_str(st));
    if (st == ST_OK)
        out("vmfail: VM_EXIT_REASON reads 0x%llx", vr(EXIT_REASON));
    st = vmwrite_(EXIT_QUAL, 0x55);
    out("vmfail: vmwrite read-only EXIT_QUALIFICATION: %s", st_str(st));

    l2_enter(&e, 1);
    out("vmfail: vmresume of a clear VMCS: %s", st_str(e.st));
    l2_enter(&e, 0);
    pr_exit("vmfail: vmlaunch", &e, F_LEN);
    l2_enter(&e, 0);
    out("vmfail: vmlaunch of a launched VMCS: %s", st_str(e.st));
    l2_enter(&e, 1);
    pr_exit("vmfail: vmresume", &e, F_LEN);

    /* INVEPT/INVVPID exist only with EPT/VPID (SDM 31.3): #UD without; invalid type -> 28. */
    int want = cap.invept ? ST(ST_VALID, 28) : ST(ST_EXC, 6);
    st = invept_(0, 0);
    if (st == want)
        out("vmfail: invept type 0: as the capabilities say");
    else
        out("vmfail: invept type 0: %s, capabilities say %s", st_str(st), st_str(want));
    want = cap.invvpid ? ST(ST_VALID, 28) : ST(ST_EXC, 6);
    st = invvpid_(4, 1, 0);
    if (st == want)
        out("vmfail: invvpid type 4: as the capabilities say");
    else
        out("vmfail: invvpid type 4: %s, capabilities say %s", st_str(st), st_str(want));

    out("vmfail: vmclear of a page with a bad revision: %s", st_str(vmclear_(PA(m.badrev))));
    out("vmfail: vmclear of the current VMCS: %s", st_str(vmcs_clear(0)));
    st = vmptrst_(&v);
    out("vmfail: vmptrst after vmclear: %s %s 0x%llx", st_str(st), pname(v), v);
    out("vmfail: vmread after vmclear: %s", st_str(vmread_(EXIT_REASON, &v)));
    out("vmfail: vmxoff: %s", st_str(vmxoff_()));
    in_vmx = FALSE;
    out("vmfail: vmread after vmxoff: %s", st_str(vmread_(EXIT_REASON, &v)));
    st = vmxon_(PA(m.vmxon));
    out("vmfail: vmxon again: %s", st_str(st));
    in_vmx = st == ST_OK;
    if (in_vmx) {
        st = vmptrst_(&v);
        out("vmfail: vmptrst after vmxon again: %s %s", st_str(st), pname(v));
    }
}

/* 2: VMWRITE/VMREAD of each field width (SDM 25.11.2): writes are truncated to the width;
 * the "high" encoding of a 64-bit field accesses bits 63:32. */
void s_widths(void)
{
    vmcs_init(0, l2_vmcall);
    static const struct { u32 f; u64 v; const char *name; } t[] = {
        {G_ES_SEL, ~0ull, "16-bit GUEST_ES_SELECTOR"},
        {G_ES_SEL, 0x12345, "16-bit GUEST_ES_SELECTOR"},
        {G_ES_LIMIT, ~0ull, "32-bit GUEST_ES_LIMIT"},
        {G_ES_LIMIT, 0xabcdef0012345678ull, "32-bit GUEST_ES_LIMIT"},
        {G_ES_AR, 0xc093, "32-bit GUEST_ES_AR_BYTES"},
        {LINK_PTR, ~0ull, "64-bit VMCS_LINK_POINTER"},
        {LINK_PTR + 1, 0x12345678, "64-bit VMCS_LINK_POINTER high"},
        {G_DEBUGCTL, 0x1122334455667788ull, "64-bit GUEST_IA32_DEBUGCTL"},
        {G_DEBUGCTL + 1, 0xffffffff00000001ull, "64-bit GUEST_IA32_DEBUGCTL high"},
        {G_CR3, ~0ull, "natural GUEST_CR3"},
        {G_RIP, 0x8000000000000001ull, "natural GUEST_RIP"},
    };
    for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int st = vmwrite_(t[i].f, t[i].v);
        u64 v = 0, hi = 0, full = 0;
        vmread_(t[i].f, &v);
        if ((t[i].f >> 13 & 3) == 1) { /* 64-bit: show both halves and the full field */
            vmread_(t[i].f | 1, &hi);
            vmread_(t[i].f & ~1u, &full);
            out("widths: %s <- 0x%llx: %s, reads 0x%llx (full 0x%llx, high 0x%llx)", t[i].name, t[i].v,
                st_str(st), v, full, hi);
        } else {
            out("widths: %s <- 0x%llx: %s, reads 0x%llx", t[i].name, t[i].v, st_str(st), v);
        }
    }
    /* The XSS-exiting bitmap exists with "enable XSAVES/XRSTORS" (SDM 25.6.20, B.2.1). */
    if (cap.secondary && allowed(P2_XSAVES, cap.proc2)) {
        int st = vmwrite_(XSS_BITMAP, 0x1800);
        u64 v = 0;
        int st2 = vmread_(XSS_BITMAP, &v);
        out("widths: 64-bit XSS_EXITING_BITMAP <- 0x1800: %s, read: %s 0x%llx", st_str(st), st_str(st2), v);
    } else {
        out("widths: XSS_EXITING_BITMAP: enable XSAVES/XRSTORS not offered");
    }
    /* VMREAD into memory and from a 32-bit field into a 64-bit register (zero-extended). */
    u64 mem = 0x5555555555555555ull, f = G_ES_LIMIT;
    __asm__ volatile("vmread %1, %0" : "=m"(mem) : "r"(f) : "cc");
    out("widths: vmread 32-bit field to memory: 0x%llx", mem);
}

/* 8: two VMCSs: VMPTRLD switches, VMCLEAR writes back, launch state is per VMCS (SDM 25.1). */
void s_switch(void)
{
    struct exit e;
    u64 v = 0;
    vmcs_init(1, l2_vmcall);
    vw(G_SYSENTER_EIP, 0x1111);
    vmcs_init(2, l2_vmcall);
    vw(G_SYSENTER_EIP, 0x2222);
    out("switch: vmptrld vmcs1: %s", st_str(vmcs_load(1)));
    out("switch: vmcs1 field reads 0x%llx", vr(G_SYSENTER_EIP));
    vmptrst_(&v);
    out("switch: vmptrst: %s", pname(v));
    out("switch: vmptrld vmcs2: %s", st_str(vmcs_load(2)));
    out("switch: vmcs2 field reads 0x%llx", vr(G_SYSENTER_EIP));
    out("switch: vmclear vmcs1 (not current): %s", st_str(vmcs_clear(1)));
    vmptrst_(&v);
    out("switch: vmptrst: %s", pname(v));
    out("switch: vmptrld vmcs1: %s", st_str(vmcs_load(1)));
    out("switch: vmcs1 field after vmclear reads 0x%llx", vr(G_SYSENTER_EIP));

    l2_enter(&e, 0);
    pr_exit("switch: vmcs1 vmlaunch", &e, F_LEN);
    vmcs_load(2);
    l2_enter(&e, 0);
    pr_exit("switch: vmcs2 vmlaunch", &e, F_LEN);
    vmcs_load(1);
    l2_enter(&e, 1);
    pr_exit("switch: vmcs1 vmresume", &e, F_LEN);
    vmcs_load(2);
    l2_enter(&e, 1);
    pr_exit("switch: vmcs2 vmresume", &e, F_LEN);
    vmcs_clear(1);
    vmcs_load(1);
    l2_enter(&e, 1);
    out("switch: vmcs1 vmresume after vmclear: %s", st_str(e.st));
    l2_enter(&e, 0);
    pr_exit("switch: vmcs1 vmlaunch after vmclear", &e, F_LEN);
    out("switch: vmcs1 field still reads 0x%llx", vr(G_SYSENTER_EIP));
    out("switch: vmclear vmcs2: %s", st_str(vmcs_clear(2)));
    vmptrst_(&v);
    out("switch: vmptrst: %s", pname(v));
    out("switch: vmclear vmcs1: %s", st_str(vmcs_clear(1)));
    vmptrst_(&v);
    out("switch: vmptrst: %s", pname(v));
}
