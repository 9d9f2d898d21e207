/* Scenarios 4 (VM-entry failures) and 5 (event injection). */
#include "l1.h"

static struct exit e;

static void try_entry(const char *tag)
{
    l2_run(&e);
    pr_exit(tag, &e, F_LEN);
}

/* A VM entry that fails on vmcs12's guest state (field = val), with an entry MSR-load list,
 * an exit MSR-store list and an event to inject: what L1 finds after it (SDM 27.8). */
static void entry_fail_effects(const char *tag, u32 field, u64 val)
{
    u64 kgs = rdmsr(0xc0000102), *area = (u64 *)m.msr_area;
    vmcs_init(0, l2_vmcall);
    vw(field, val);
    area[0] = 0xc0000102; /* entry load: IA32_KERNEL_GS_BASE */
    area[1] = kgs ^ 0x1000;
    area[2] = 0xc0000102; /* exit store */
    area[3] = 0x5a5a;
    vw(ENTRY_MSR_LD_ADDR, PA(area));
    vw(ENTRY_MSR_LD_CNT, 1);
    vw(EXIT_MSR_ST_ADDR, PA(area + 2));
    vw(EXIT_MSR_ST_CNT, 1);
    vw(ENTRY_INTR, 0x80000306); /* #UD */
    l2_run(&e);
    u64 kgs_after = rdmsr(0xc0000102);
    wrmsr(0xc0000102, kgs);
    pr_exit(tag, &e, F_LEN);
    out("%s: IA32_KERNEL_GS_BASE %s, store area 0x%llx, entry interruption info 0x%llx, guest field 0x%llx", tag,
        kgs_after == kgs ? "unchanged" : kgs_after == (kgs ^ 0x1000) ? "loaded" : "other", area[3], vr(ENTRY_INTR),
        vr(field));
    l2_enter(&e, 1);
    out("%s: vmresume after it: %s", tag, st_str(e.st));
    for (unsigned i = 0; i < 4; i++)
        area[i] = 0;
}

/* 4: the three check families in their order (SDM 27.1-27.4): controls and host state
 * fail the instruction (VMfailValid 7 / 8); guest state and MSR loading fail the entry
 * itself as an exit with bit 31 set (reason 33 / 34, SDM 27.8). */
void s_entryfail(void)
{
    u32 pin = (u32)(cap.pin >> 32);
    int bit = 31;
    while (bit > 0 && (pin >> bit & 1))
        bit--;
    vmcs_init(0, l2_vmcall);
    vw(PIN_CTLS, vr(PIN_CTLS) | 1u << bit);
    try_entry("entry: reserved pin-based control set");

    vmcs_init(0, l2_vmcall);
    vw(H_CR0, read_cr0() & ~(1ull << 31));
    try_entry("entry: host CR0.PG clear");
    vmcs_init(0, l2_vmcall);
    vw(H_RIP, 0x8000000000000000ull);
    try_entry("entry: host RIP not canonical");
    vmcs_init(0, l2_vmcall);
    vw(H_CR0, read_cr0() & ~(1ull << 31));
    vw(G_RFLAGS, 0);
    vw(PIN_CTLS, vr(PIN_CTLS) | 1u << bit);
    try_entry("entry: bad control, host and guest state at once");
    vmcs_init(0, l2_vmcall);
    vw(H_CR0, read_cr0() & ~(1ull << 31));
    vw(G_RFLAGS, 0);
    try_entry("entry: bad host and guest state at once");

    vmcs_init(0, l2_vmcall);
    vw(G_RFLAGS, 0); /* RFLAGS bit 1 is reserved as 1 (SDM 27.3.1.4) */
    try_entry("entry: guest RFLAGS bit 1 clear");
    l2_enter(&e, 1); /* the failed VMLAUNCH left the VMCS clear */
    out("entry: vmresume after the failed vmlaunch: %s", st_str(e.st));
    vw(G_RFLAGS, 2);
    try_entry("entry: vmlaunch with RFLAGS fixed");

    vmcs_init(0, l2_vmcall);
    vw(G_CR4, read_cr4() & ~(1ull << 13)); /* CR4 fixed bits apply to the guest (SDM 27.3.1.1) */
    try_entry("entry: guest CR4.VMXE clear");
    vmcs_init(0, l2_vmcall);
    vw(G_ACTIVITY, 4); /* no such activity state (SDM 25.4.2) */
    try_entry("entry: guest activity state 4");
    vmcs_init(0, l2_vmcall);
    *(u32 *)m.link = (cap.revision + 1) & 0x7fffffff;
    vw(LINK_PTR, PA(m.link)); /* qualification 4: VMCS link pointer (SDM 27.8) */
    try_entry("entry: VMCS link pointer with a bad revision");
    /* SDM 27.3.1.5: a link pointer other than all 1s names a VMCS of the processor's revision,
     * bit 31 = "VMCS shadowing" (0 here), and not the current VMCS. */
    vmcs_init(0, l2_vmcall);
    *(u32 *)m.link = cap.revision;
    vw(LINK_PTR, PA(m.link));
    try_entry("entry: VMCS link pointer to a VMCS of the right revision");
    vmcs_init(0, l2_vmcall);
    *(u32 *)m.link = cap.revision | 0x80000000u;
    vw(LINK_PTR, PA(m.link));
    try_entry("entry: VMCS link pointer to a shadow VMCS without VMCS shadowing");
    vmcs_init(0, l2_vmcall);
    vw(LINK_PTR, PA(m.vmcs[0]));
    try_entry("entry: VMCS link pointer to the current VMCS");
    *(u32 *)m.link = 0;
    vmcs_init(0, l2_vmcall);
    vw(ENTRY_INTR, 0x80000040); /* external interrupt needs RFLAGS.IF=1 (SDM 27.3.1.5) */
    try_entry("entry: inject external interrupt with IF=0");
    /* Bits the CPU accepts only with a feature L1's CPUID does not have (SDM 27.3.1.5): a
     * VM-entry failure, so no MSR loaded, none stored, the event still pending, VMCS clear. */
    static const struct { u32 field; u64 val; const char *tag; } feat[] = {
        {G_INTR_STATE, 1u << 4, "entry: enclave interruption (interruptibility bit 4) without SGX"},
        {G_PENDING_DBG, 1u << 16 | 1u << 12, "entry: pending debug exception RTM (bit 16) without RTM"},
    };
    for (unsigned i = 0; i < sizeof(feat) / sizeof(feat[0]); i++)
        entry_fail_effects(feat[i].tag, feat[i].field, feat[i].val);

    /* MSR-load area (SDM 27.4): entry n fails -> qualification n. */
    static const struct { u64 idx, val; const char *what; } bad[] = {
        {0x1000000c0000102ull, 1, "reserved bits 63:32 set in entry 1"},
        {0x808, 0, "x2APIC MSR 0x808 in entry 1"},
        {0xc0000100, 0, "IA32_FS_BASE in entry 2"},
    };
    u64 kgs = rdmsr(0xc0000102);
    u64 *area = (u64 *)m.msr_area;
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vmcs_init(0, l2_vmcall);
        unsigned n = 0;
        if (i == 2) {
            area[0] = 0xc0000102;
            area[1] = 0x4444000;
            n = 1;
        }
        area[2 * n] = bad[i].idx;
        area[2 * n + 1] = bad[i].val;
        vw(ENTRY_MSR_LD_ADDR, PA(area));
        vw(ENTRY_MSR_LD_CNT, n + 1);
        char tag[80] = "entry: msr-load ";
        unsigned k = 16;
        for (const char *p = bad[i].what; *p && k < sizeof(tag) - 1; p++)
            tag[k++] = *p;
        tag[k] = 0;
        try_entry(tag);
    }
    wrmsr(0xc0000102, kgs);
    for (unsigned i = 0; i < 8; i++)
        area[i] = 0;
}

/* What an L2 IDT stub saw: vector (RBX), the frame on L2's stack (SDM Vol. 3A 6.14.2). */
static void pr_frame(const char *tag, const char *base, BOOLEAN errcode)
{
    if (e.st != ST_OK || e.reason != R_VMCALL || l2r.r15 != L2_ISR_MARK) {
        pr_exit(tag, &e, F_LEN);
        return;
    }
    u64 *f = (u64 *)(UINTN)e.rsp;
    u64 err = errcode ? *f++ : 0;
    char s[40] = "";
    if (errcode) {
        const char *p = " err 0x";
        int i = 0;
        while (*p)
            s[i++] = *p++;
        int j = 0;
        char d[16];
        do {
            d[j++] = "0123456789abcdef"[err & 15];
            err >>= 4;
        } while (err);
        while (j)
            s[i++] = d[--j];
        s[i] = 0;
    }
    out("%s: L2 vector %llu, frame rip +%llu rflags.IF %llu stack -%llu%s", tag, l2r.rbx, f[0] - PA(base),
        f[2] >> 9 & 1, L2_STACK_TOP - e.rsp, s);
}

static void inject(const char *tag, u32 info, u32 err, u32 len, u64 rflags, BOOLEAN errcode)
{
    vmcs_init(0, l2_nops);
    vw(ENTRY_INTR, info);
    vw(ENTRY_ERR, err);
    vw(ENTRY_LEN, len);
    vw(G_RFLAGS, rflags);
    vw(EXC_BITMAP, 1u << 6); /* injected events ignore the exception bitmap (SDM 27.6.1) */
    l2_run(&e);
    pr_frame(tag, l2_nops, errcode);
    out("%s: entry interruption info after exit 0x%llx", tag, vr(ENTRY_INTR));
}

/* 5: injection through L2's IDT; a fault during delivery is an exit with IDT-vectoring info. */
void s_inject(void)
{
    inject("inject: #UD", 0x80000306, 0, 0, 2, FALSE);
    inject("inject: #GP error 0x1234", 0x80000b0d, 0x1234, 0, 2, TRUE);
    inject("inject: software interrupt 0x30 length 2", 0x80000430, 0, 2, 2, FALSE);
    inject("inject: software exception #BP length 1", 0x80000603, 0, 1, 2, FALSE);
    inject("inject: external interrupt 0x40", 0x80000040, 0, 0, 0x202, FALSE);
    inject("inject: NMI", 0x80000202, 0, 0, 2, FALSE);

    /* #UD's gate beyond the IDT limit: #GP(0x33 = vector 6 << 3 | IDT | EXT) during delivery. */
    vmcs_init(0, l2_nops);
    vw(ENTRY_INTR, 0x80000306);
    vw(G_IDTR_LIMIT, 6 * 16 - 1);
    vw(EXC_BITMAP, 1u << 13);
    l2_run(&e);
    pr_exit("inject: #UD beyond the IDT limit, #GP intercepted", &e, 0);
    /* Not intercepted: #GP and #DF cannot be delivered either: triple fault (SDM 6.15). */
    vmcs_init(0, l2_nops);
    vw(ENTRY_INTR, 0x80000306);
    vw(G_IDTR_LIMIT, 6 * 16 - 1);
    l2_run(&e);
    pr_exit("inject: #UD beyond the IDT limit, nothing intercepted", &e, F_NORIP);
}
