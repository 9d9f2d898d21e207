/*
 * l1.efi: a small VMX hypervisor ("L1") used to compare hv's VMX emulation with a
 * real VMX implementation (Bochs). Every observation is one "l1: " line on COM1 that
 * must be identical on both: no addresses (only names or offsets), no raw capability
 * MSRs, no TSC values. See tests/nested/run-diff.sh.
 */
#ifndef L1_H
#define L1_H
#include <efi.h>
#include <efilib.h>

typedef UINT8 u8;
typedef UINT16 u16;
typedef UINT32 u32;
typedef unsigned long long u64; /* matches %llx */

/* ---- output (out.c) ---- */
/* One "l1: " line. Supports %s %c %d %u %x %llx %llu; unknown conversions print '?'. */
void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A VMX status in the normalized form (ok, VMfailInvalid, VMfailValid(n), #UD, ...). */
const char *st_str(int st);
void power_off(void) __attribute__((noreturn));

/* ---- status of a VMX instruction: kind in bits 7:0, number in bits 15:8 ---- */
enum { ST_OK = 0, ST_INVALID = 1, ST_VALID = 2, ST_EXC = 3 };
#define ST(kind, n) ((kind) | ((n) << 8))
#define ST_KIND(s) ((s) & 0xff)
#define ST_NUM(s) ((s) >> 8)

/* ---- asm.asm: exception recovery, VM entry, L2 code ---- */
/* An armed fixup makes a faulting instruction resume at the fixup with trap_vector set. */
extern volatile u64 trap_fixup;
extern volatile u32 trap_vector; /* NO_TRAP when none */
extern volatile u64 trap_error, trap_rip;
#define NO_TRAP 0xffffffffu
extern char l1_isr_table[]; /* 32 stubs, 16 bytes apart */
extern char l2_isr_table[]; /* 256 stubs, 16 bytes apart */

struct jb { u64 rbx, rbp, r12, r13, r14, r15, rsp, rip; };
int l1_setjmp(struct jb *b) __attribute__((returns_twice));
extern struct jb *volatile trap_recover; /* where an unexpected exception goes */

struct regs { u64 rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15; };
/* VMLAUNCH (resume = 0) or VMRESUME: 0 after a VM exit (regs hold L2's GPRs),
 * else the status as above (ST_INVALID / ST_VALID / ST_EXC). */
int vmx_enter(struct regs *r, int resume);
extern char vmx_exit_landing[];

/* L2 scripts (asm.asm): each is a label L1 points GUEST_RIP at. */
extern char l2_vmcall[], l2_cpuid[], l2_hlt[], l2_out80[], l2_io2[], l2_msr[], l2_cr0[], l2_cr3[],
    l2_cr4[], l2_cr8[], l2_exc[], l2_sti[], l2_iret[], l2_iret_after[], l2_spin[], l2_nops[], l2_rdtsc[],
    l2_invlpg[], l2_pause[], l2_movdr[], l2_vmxinsn[], l2_kgs[], l2_seed[], l2_seed_hlt[], l2_bench[], l2_bench_tsc[],
    l2_ept_read[], l2_ept_rd2[], l2_ept_rw[], l2_ept_w2[], l2_ept_call[], l2_rep_stos[], l2_desc[], l2_ple[], l2_out_loop[];
#define L2_ISR_MARK 0x15cull /* r15 of an L2 exception/interrupt stub's VMCALL */

/* ---- VMX instructions (vmx.c), with faults turned into ST_EXC ---- */
int vmxon_(u64 pa);
int vmxoff_(void);
int vmclear_(u64 pa);
int vmptrld_(u64 pa);
int vmptrst_(u64 *pa);
int vmread_(u64 field, u64 *v);
int vmwrite_(u64 field, u64 v);
int invept_(u64 type, u64 eptp);
int invvpid_(u64 type, u64 vpid, u64 la);
u64 vr(u32 field);          /* VMREAD; a failure prints a line */
void vw(u32 field, u64 v);  /* VMWRITE; a failure prints a line */

/* ---- capabilities and memory (main.c) ---- */
struct caps {
    u64 basic, misc, pin, proc, proc2, exit, entry, ept_vpid;
    u64 cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
    u32 revision;
    u8 maxphys;
    BOOLEAN true_ctls, timer, save_timer, vnmi, nmi_window, hlt_state, mtf, msr_bitmaps, io_bitmaps,
        cr8_exit, cr3_clear, secondary, ro_write, invept, invvpid;
};
extern struct caps cap;
u32 adj(u32 want, u64 capmsr); /* want | must-be-1, & allowed-1 (SDM A.3) */
BOOLEAN allowed(u32 want, u64 capmsr);

/* All below 4 GiB; physical = virtual (UEFI identity map). */
struct mem {
    u8 *vmxon, *vmcs[3], *badrev, *link, *msr_bitmap, *io_a, *io_b, *msr_area, *l2_stack, *l2_idt,
        *pml4_a, *pml4_b, *pdpt, *pd, *gdt, *tss, *idt, *scratch;
};
extern struct mem m;
#define PA(p) ((u64)(UINTN)(p))
#define L2_STACK_TOP (PA(m.l2_stack) + 4 * 4096)
extern u64 image_base, image_size;
extern BOOLEAN in_vmx;      /* VMXON succeeded and no VMXOFF since */
extern u16 tss_sel;
extern u64 cr4_orig;  /* CR4 before l1 touched it */

static inline u64 rdmsr(u32 i)
{
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(i));
    return lo | ((u64)hi << 32);
}
static inline void wrmsr(u32 i, u64 v)
{
    __asm__ volatile("wrmsr" ::"c"(i), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}
static inline u64 read_cr0(void) { u64 v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline u64 read_cr3(void) { u64 v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline u64 read_cr4(void) { u64 v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr0(u64 v) { __asm__ volatile("mov %0, %%cr0" ::"r"(v) : "memory"); }
static inline void write_cr4(u64 v) { __asm__ volatile("mov %0, %%cr4" ::"r"(v) : "memory"); }
struct __attribute__((packed)) dtr { u16 limit; u64 base; };
void reload_tables(void); /* LGDT/LIDT again: a VM exit sets both limits to 0xffff (SDM 28.5.2) */

/* ---- the VMCS and L2 runs (vm.c) ---- */
struct exit {
    int st;          /* status of VMLAUNCH/VMRESUME; the rest valid only if ST_OK */
    u32 reason, len, intr, intr_err, idt, idt_err, info, activity, intrst;
    u64 qual, rip, rsp;
    const char *base; /* script start, for "at +N" */
};
/* VMCLEAR + VMPTRLD vmcs page i and write a complete, valid VMCS for a 64-bit L2
 * starting at `script`, with the watchdog preemption timer if supported. */
void vmcs_init(int i, const char *script);
/* Enter L2 (launch or resume as needed) and read the exit information. */
void l2_run(struct exit *e);
void l2_enter(struct exit *e, int resume); /* exactly VMLAUNCH (0) or VMRESUME (1) */
int vmcs_load(int i);  /* VMPTRLD vmcs page i (keeps its launch state) */
int vmcs_clear(int i); /* VMCLEAR vmcs page i: launch state clear */
const char *pname(u64 pa); /* "vmcs0".."vmcs2", "vmxon", "none" (all ones) or "other" */
/* Step GUEST_RIP over the exiting instruction (its VM-exit instruction length). */
void l2_skip(const struct exit *e);
extern struct regs l2r;
/* Print "l1: <tag>: exit N qual .. [len ..] [intr ..] [idt ..] [info ..] at +N". */
enum { F_LEN = 1, F_INFO = 2, F_ACT = 4, F_NORIP = 8 };
void pr_exit(const char *tag, const struct exit *e, unsigned flags);
/* Run until the final VMCALL of the script, printing anything unexpected on the way. */
void finish(const char *tag, struct exit *e);
void set_proc(u32 bits);   /* primary controls = defaults | bits (must be allowed) */
void set_pin(u32 bits);
void set_exit_ctls(u32 bits);
extern u32 watchdog;       /* preemption-timer value of every L2 run */

/* ---- scenarios ---- */
void s_vmfail(void);    /* 1: failure modes and error numbers (does the VMXON) */
void s_widths(void);    /* 2 */
void s_exits(void);     /* 3 */
void s_entryfail(void); /* 4 */
void s_inject(void);    /* 5 */
void s_msrlists(void);  /* 6 */
void s_seed(void);      /* 7 */
void s_switch(void);    /* 8 */
void s_ept(void);       /* 9: EPT and unrestricted guest (s_ept.c), last */
void ept_alloc(void);   /* s_ept.c's memory, allocated before the scenarios if EPT is offered */
/* For s_hidden.c: a VMCS for L2 on a fresh EPT12 with what L2 needs mapped (FALSE if not
 * offered or out of room), and one more 4 KiB EPT12 page, RWX. */
BOOLEAN ept_setup_l2(const char *tag, const char *script);
BOOLEAN ept_map_rwx(u64 l2pa, u64 l1pa);
/* For s_ead.c, after s_ept.c is done with them: one more 4 KiB EPT12 page (perm: bits 2:0,
 * memory type WB), the EPT12 entry for gpa at level (4 = PML4E .. 1 = PTE; tables made as
 * needed, NULL if out of room), the EPTP (WB, 4-level, no A/D), INVEPT of EPT12 (single-
 * context if supported, else all-context), and s_ept.c's test page i (0..11). */
BOOLEAN ept_map(u64 l2pa, u64 l1pa, u32 perm);
u64 *ept_entry(u64 gpa, int level);
u64 ept_eptp(void);
void ept_invept(const char *tag);
u8 *ept_page(int i);
void s_ead(void);       /* 13: EPT accessed/dirty flags and PML (s_ead.c), after s_ept */
void s_vmfunc(void);    /* 16: VM functions (EPTP switching) and #VE (s_vmfunc.c, vmfunc.asm), after s_ead */
void s_mbec(void);      /* 17: MBEC and advanced EPT-violation information (s_mbec.c), after s_vmfunc */
void s_xinfo(void);     /* 18: exit information hv's own exits must not leave L1 (s_xinfo.c), after s_mbec */
void hidden_find(void); /* s_hidden.c: under hv, find its region (boot services: before the scenarios) */
void s_hidden(void);    /* 10, hv only, "l1hv: " lines: L2's writes to hv's memory are dropped */
void s_caps(void);      /* 12: capabilities beyond the basics (s_caps.c) */
void s_vpid(void);      /* 14: VPIDs for L2, INVVPID (s_vpid.c); runs before 9 */
void s_apicv(void);     /* 15: APIC virtualization (s_apicv.c, apicv.asm) */
void apicv_alloc(void); /* its pages, allocated before the scenarios */
void s_nmi(void);       /* 11: NMIs while L2 runs (s_nmi.c, nmi.asm); runs before 9 */
void s_vshadow(void);   /* 13: VMCS shadowing for L1 (s_vshadow.c, vshadow.asm) */
void vshadow_alloc(void); /* its pages (boot services: before the scenarios) */
/* "l1hv: " lines: under hv only, not compared with the bare run (run-diff.sh checks them). */
void outhv(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void outcap(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* raw capability MSRs, not compared */

/* ---- bench mode (bench.c; asm.asm bench_rt/bench_handler): load options contain "bench" ---- */
void s_bench(void); /* does its own VMXON; prints "l1: bench: ..." lines */
#define BENCH_UNEXPECTED (~0ull)     /* an exit other than CPUID: bench_reason says which */
#define BENCH_FAILED (~0ull - 1)     /* VMRESUME failed */
u64 bench_rt(u64 n, u64 hv, u64 *exits);
u64 bench_handler(u64 n, u64 hv, u64 *exits);
u64 bench_kvm(u64 n, u64 hv, u64 *exits); /* bench_rt with KVM's hot fields read and written */
u64 bench_split(u64 n, u64 sum[2]); /* 0 or as above; sum: entry, exit halves */
extern u32 bench_reason;

/* ---- VMCS field encodings (SDM Vol. 3D Appendix B) ---- */
enum {
    VPID = 0x0000,
    G_ES_SEL = 0x0800, G_CS_SEL = 0x0802, G_SS_SEL = 0x0804, G_DS_SEL = 0x0806, G_FS_SEL = 0x0808,
    G_GS_SEL = 0x080a, G_LDTR_SEL = 0x080c, G_TR_SEL = 0x080e,
    H_ES_SEL = 0x0c00, H_CS_SEL = 0x0c02, H_SS_SEL = 0x0c04, H_DS_SEL = 0x0c06, H_FS_SEL = 0x0c08,
    H_GS_SEL = 0x0c0a, H_TR_SEL = 0x0c0c,
    IO_A = 0x2000, IO_B = 0x2002, MSR_BITMAP = 0x2004, EXIT_MSR_ST_ADDR = 0x2006,
    EXIT_MSR_LD_ADDR = 0x2008, ENTRY_MSR_LD_ADDR = 0x200a, TSC_OFFSET = 0x2010, TSC_MULTIPLIER = 0x2032,
    EPTP = 0x201a, G_PHYS_ADDR = 0x2400,
    LINK_PTR = 0x2800, G_DEBUGCTL = 0x2802, G_EFER = 0x2806, XSS_BITMAP = 0x202c,
    PIN_CTLS = 0x4000, PROC_CTLS = 0x4002, EXC_BITMAP = 0x4004, CR3_TARGET_COUNT = 0x400a,
    EXIT_CTLS = 0x400c, EXIT_MSR_ST_CNT = 0x400e, EXIT_MSR_LD_CNT = 0x4010, ENTRY_CTLS = 0x4012,
    ENTRY_MSR_LD_CNT = 0x4014, ENTRY_INTR = 0x4016, ENTRY_ERR = 0x4018, ENTRY_LEN = 0x401a,
    PROC2_CTLS = 0x401e, PLE_GAP = 0x4020, PLE_WINDOW = 0x4022,
    INSN_ERROR = 0x4400, EXIT_REASON = 0x4402, EXIT_INTR = 0x4404, EXIT_INTR_ERR = 0x4406,
    IDT_INFO = 0x4408, IDT_ERR = 0x440a, EXIT_LEN = 0x440c, INSN_INFO = 0x440e,
    G_ES_LIMIT = 0x4800, G_CS_LIMIT = 0x4802, G_SS_LIMIT = 0x4804, G_DS_LIMIT = 0x4806,
    G_FS_LIMIT = 0x4808, G_GS_LIMIT = 0x480a, G_LDTR_LIMIT = 0x480c, G_TR_LIMIT = 0x480e,
    G_GDTR_LIMIT = 0x4810, G_IDTR_LIMIT = 0x4812,
    G_ES_AR = 0x4814, G_CS_AR = 0x4816, G_SS_AR = 0x4818, G_DS_AR = 0x481a, G_FS_AR = 0x481c,
    G_GS_AR = 0x481e, G_LDTR_AR = 0x4820, G_TR_AR = 0x4822,
    G_INTR_STATE = 0x4824, G_ACTIVITY = 0x4826, G_SYSENTER_CS = 0x482a, G_TIMER = 0x482e,
    H_SYSENTER_CS = 0x4c00,
    CR0_MASK = 0x6000, CR4_MASK = 0x6002, CR0_SHADOW = 0x6004, CR4_SHADOW = 0x6006,
    EXIT_QUAL = 0x6400, G_LINEAR_ADDR = 0x640a,
    G_CR0 = 0x6800, G_CR3 = 0x6802, G_CR4 = 0x6804, G_ES_BASE = 0x6806, G_CS_BASE = 0x6808,
    G_SS_BASE = 0x680a, G_DS_BASE = 0x680c, G_FS_BASE = 0x680e, G_GS_BASE = 0x6810,
    G_LDTR_BASE = 0x6812, G_TR_BASE = 0x6814, G_GDTR_BASE = 0x6816, G_IDTR_BASE = 0x6818,
    G_DR7 = 0x681a, G_RSP = 0x681c, G_RIP = 0x681e, G_RFLAGS = 0x6820, G_PENDING_DBG = 0x6822,
    G_SYSENTER_ESP = 0x6824, G_SYSENTER_EIP = 0x6826,
    H_CR0 = 0x6c00, H_CR3 = 0x6c02, H_CR4 = 0x6c04, H_FS_BASE = 0x6c06, H_GS_BASE = 0x6c08,
    H_TR_BASE = 0x6c0a, H_GDTR_BASE = 0x6c0c, H_IDTR_BASE = 0x6c0e, H_SYSENTER_ESP = 0x6c10,
    H_SYSENTER_EIP = 0x6c12, H_RSP = 0x6c14, H_RIP = 0x6c16,
};

/* ---- control bits (SDM Vol. 3C 25.6-25.8) ---- */
#define PIN_EXT_INT (1u << 0)
#define PIN_NMI_EXIT (1u << 3)
#define PIN_VNMI (1u << 5)
#define PIN_TIMER (1u << 6)
#define P_INTR_WIN (1u << 2)
#define P_TSC_OFFSET (1u << 3)
#define P_HLT (1u << 7)
#define P_INVLPG (1u << 9)
#define P_RDTSC (1u << 12)
#define P_CR3_LOAD (1u << 15)
#define P_CR3_STORE (1u << 16)
#define P_CR8_LOAD (1u << 19)
#define P_CR8_STORE (1u << 20)
#define P_NMI_WIN (1u << 22)
#define P_MOV_DR (1u << 23)
#define P_UNCOND_IO (1u << 24)
#define P_IO_BITMAPS (1u << 25)
#define P_MTF (1u << 27)
#define P_MSR_BITMAPS (1u << 28)
#define P_PAUSE (1u << 30)
#define P_SECONDARY (1u << 31)
#define P2_EPT (1u << 1)
#define P2_DESC (1u << 2)
#define P2_VPID (1u << 5)
#define P2_UG (1u << 7)
#define P2_PLE (1u << 10)
#define P2_XSAVES (1u << 20)
#define P2_TSC_SCALING (1u << 25)
#define X_HOST64 (1u << 9)
#define X_SAVE_TIMER (1u << 22)
#define X_LOAD_EFER (1u << 21)
#define E_IA32E (1u << 9)
#define E_LOAD_EFER (1u << 15)

/* Exit reasons (SDM Vol. 3D Appendix C) */
enum { R_EXC = 0, R_EXTINT = 1, R_TRIPLE = 2, R_INTR_WIN = 7, R_NMI_WIN = 8, R_CPUID = 10,
       R_HLT = 12, R_INVLPG = 14, R_RDTSC = 16, R_VMCALL = 18, R_VMPTRST = 22, R_VMREAD = 23,
       R_CR = 28, R_DR = 29, R_IO = 30, R_RDMSR = 31, R_WRMSR = 32, R_BAD_GUEST = 33,
       R_BAD_MSR = 34, R_MTF = 37, R_PAUSE = 40, R_GDTR_IDTR = 46, R_LDTR_TR = 47, R_EPT_VIOL = 48, R_EPT_MISC = 49, R_TIMER = 52 };
#define R_ENTRY_FAIL 0x80000000u
#endif
