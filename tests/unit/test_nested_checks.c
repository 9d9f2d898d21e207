/*
 * Host tests for nested/checks.c: the VM-entry checks over the capabilities hv advertises
 * on Bochs-like hardware, one table row per rule: start from a valid 64-bit L2 setup, break
 * exactly one thing, expect exactly that rule. The capability MSRs themselves:
 * test_nested_caps_msrs.c.
 */
#include <stdio.h>
#include <string.h>
#include "lib/x86.h"
#include "nested/caps.h"
#include "nested/checks.h"
#include "nested/vmcs12.h"
#include "tests/unit/test_util.h"
#include "tests/unit/vmcs12_samples.h"
#include "vmx/vmx_bits.h"

#define ULL(x) ((unsigned long long)(x))
#define PHYS_BITS 40
#define NONCANON 0x0000800000000000ull

static struct vmx_msrs bochs(void) { return bochs_skylake_x; }

static struct nested_caps caps;
/* L1's current VMCS, and what the memory at any link pointer holds: hv's revision identifier. */
#define CURRENT_VMCS 0x9000ull
static struct nested_link link = {CURRENT_VMCS, VMCS12_REVISION};

/* ---- a valid vmcs12 ---- */


/* A 32-bit protected-mode (PAE paging) L2. */
static void valid32(struct vmcs12 *v)
{
    valid64(v);
    vmcs12_set(v, VM_ENTRY_CONTROLS, vmcs12_get(v, VM_ENTRY_CONTROLS) & ~VM_ENTRY_IA32E_MODE);
    vmcs12_set(v, GUEST_IA32_EFER, 0x801); /* SCE, NXE */
    vmcs12_set(v, GUEST_CS_AR_BYTES, 0xc09b);
    vmcs12_set(v, GUEST_RIP, 0xc1000000);
    vmcs12_set(v, GUEST_TR_BASE, 0xc2000000);
    vmcs12_set(v, GUEST_GDTR_BASE, 0xc2001000);
    vmcs12_set(v, GUEST_IDTR_BASE, 0xc2002000);
    vmcs12_set(v, GUEST_FS_BASE, 0);
    vmcs12_set(v, GUEST_GS_BASE, 0);
}

/* A virtual-8086 L2 (on top of the 32-bit one). */
static void valid_v86(struct vmcs12 *v)
{
    valid32(v);
    vmcs12_set(v, GUEST_RFLAGS, 0x20202);
    set_seg(v, GUEST_CS_SELECTOR, 0x1000, 0x10000, 0xffff, 0xf3);
    set_seg(v, GUEST_SS_SELECTOR, 0x2000, 0x20000, 0xffff, 0xf3);
    set_seg(v, GUEST_DS_SELECTOR, 0x2000, 0x20000, 0xffff, 0xf3);
    set_seg(v, GUEST_ES_SELECTOR, 0x3000, 0x30000, 0xffff, 0xf3);
    set_seg(v, GUEST_FS_SELECTOR, 0, 0, 0xffff, 0xf3);
    set_seg(v, GUEST_GS_SELECTOR, 0x40, 0x400, 0xffff, 0xf3);
    vmcs12_set(v, GUEST_RIP, 0x100);
}

/* EPT (WB, 4-level walks) on top of a 64-bit or 32-bit PAE guest. */
#define EPTP_OK (0x5000ull | 0x1e)
static void valid_ept(struct vmcs12 *v, bool pae32)
{
    if (pae32) {
        valid32(v);
        for (int i = 0; i < 4; i++) /* present, 4 KiB aligned, no reserved bits */
            vmcs12_set(v, GUEST_PDPTR0 + 2 * i, 0x300000ull + 0x1000ull * i + 1);
    } else {
        valid64(v);
    }
    vmcs12_set(v, SECONDARY_VM_EXEC_CONTROL, vmcs12_get(v, SECONDARY_VM_EXEC_CONTROL) | SECONDARY_EPT);
    vmcs12_set_eptp(v, EPTP_OK);
}

/* A real-mode L2 under unrestricted guest (what KVM runs for a BIOS): CR0.PE = PG = 0. */
static void valid_real(struct vmcs12 *v)
{
    valid_ept(v, false);
    vmcs12_set(v, SECONDARY_VM_EXEC_CONTROL, vmcs12_get(v, SECONDARY_VM_EXEC_CONTROL) | SECONDARY_UNRESTRICTED_GUEST);
    vmcs12_set(v, VM_ENTRY_CONTROLS, vmcs12_get(v, VM_ENTRY_CONTROLS) & ~VM_ENTRY_IA32E_MODE);
    vmcs12_set(v, GUEST_CR0, CR0_NE | 0x10);
    vmcs12_set(v, GUEST_CR4, CR4_VMXE);
    vmcs12_set(v, GUEST_CR3, 0);
    vmcs12_set(v, GUEST_IA32_EFER, 0);
    vmcs12_set(v, GUEST_RFLAGS, 2);
    vmcs12_set(v, GUEST_RIP, 0xfff0);
    vmcs12_set(v, GUEST_RSP, 0);
    set_seg(v, GUEST_CS_SELECTOR, 0xf000, 0xf0000, 0xffff, 0x9b);
    set_seg(v, GUEST_SS_SELECTOR, 0, 0, 0xffff, 0x93);
    set_seg(v, GUEST_DS_SELECTOR, 0, 0, 0xffff, 0x93);
    set_seg(v, GUEST_ES_SELECTOR, 0, 0, 0xffff, 0x93);
    set_seg(v, GUEST_FS_SELECTOR, 0, 0, 0xffff, 0x93);
    set_seg(v, GUEST_GS_SELECTOR, 0, 0, 0xffff, 0x93);
    set_seg(v, GUEST_TR_SELECTOR, 0, 0, 0xffff, 0x8b);
    vmcs12_set(v, GUEST_GDTR_BASE, 0);
    vmcs12_set(v, GUEST_GDTR_LIMIT, 0xffff);
    vmcs12_set(v, GUEST_IDTR_BASE, 0);
    vmcs12_set(v, GUEST_IDTR_LIMIT, 0x3ff);
}

/* ---- one row per rule ---- */

enum op { END, SET, OR, CLR };
struct mut { enum op op; uint32_t field; uint64_t val; };
enum fn { PASS, CTL, HOST, GUEST };
enum base { B64, B32, BV86, BEPT, BUG, BREAL, BPAE };
struct tcase {
    const char *name;
    enum base base;
    enum fn fn;
    const char *rule; /* substring of nested_check_last_rule() */
    uint64_t qual;
    struct mut m[6];
};
#define T(nm, b, f, r, q, ...) {.name = nm, .base = b, .fn = f, .rule = r, .qual = q, .m = {__VA_ARGS__}}
#define OK(nm, b, ...) T(nm, b, PASS, NULL, 0, __VA_ARGS__)
#define TC(nm, r, ...) T(nm, B64, CTL, r, 0, __VA_ARGS__)
#define TH(nm, r, ...) T(nm, B64, HOST, r, 0, __VA_ARGS__)
#define TG(nm, r, ...) T(nm, B64, GUEST, r, 0, __VA_ARGS__)
#define S(f, x) {SET, f, x}
#define O(f, x) {OR, f, x}
#define C(f, x) {CLR, f, x}
#define PIN PIN_BASED_VM_EXEC_CONTROL
#define PROC CPU_BASED_VM_EXEC_CONTROL
#define PROC2 SECONDARY_VM_EXEC_CONTROL
#define EXIT VM_EXIT_CONTROLS
#define ENTRY VM_ENTRY_CONTROLS
#define INFO VM_ENTRY_INTR_INFO_FIELD
#define INTR GUEST_INTERRUPTIBILITY_INFO
#define PDE GUEST_PENDING_DBG_EXCEPTIONS
#define HOST32 C(EXIT, VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_LOAD_EFER)
#define V(type, vec) (INTR_INFO_VALID | (type) | (vec))
#define EC INTR_INFO_DELIVER_CODE
#define UG SECONDARY_UNRESTRICTED_GUEST
#define EPTP EPT_POINTER /* kept in vmcs12's feature-dependent slot: build() knows */
#define TE(nm, r, ...) T(nm, BEPT, CTL, r, 0, __VA_ARGS__)
#define TR(nm, r, ...) T(nm, BREAL, GUEST, r, 0, __VA_ARGS__)
#define TU(nm, r, ...) T(nm, BUG, GUEST, r, 0, __VA_ARGS__)

static const struct tcase cases[] = {
    OK("valid 64-bit guest", B64, ),
    OK("valid 32-bit guest", B32, ),
    OK("valid virtual-8086 guest", BV86, ),
    /* 26.2.1.1 VM-execution controls */
    TC("pin: default1 bit clear", "pin-based controls reserved bits", C(PIN, 1u << 1)),
    TC("pin: posted interrupts", "pin-based controls reserved bits", O(PIN, PIN_BASED_POSTED_INTR)),
    TC("proc: tertiary controls", "primary processor-based controls reserved bits", O(PROC, CPU_BASED_ACTIVATE_TERTIARY)),
    TC("proc: default1 bit clear", "primary processor-based controls reserved bits", C(PROC, 1u << 26)),
    TC("proc2: EPT with EPTP 0", "EPTP page-walk length must be 4", O(PROC2, SECONDARY_EPT)),
    TC("proc2: unrestricted guest without EPT", "unrestricted guest requires enable EPT", O(PROC2, UG)),
    OK("EPT, WB EPTP", BEPT, ),
    OK("EPT, UC EPTP", BEPT, S(EPTP, 0x5000 | 0x18)),
    OK("EPT, EPTP at the top of the width", BEPT, S(EPTP, ((1ull << PHYS_BITS) - 0x1000) | 0x1e)),
    OK("EPTP junk without enable EPT", B64, S(EPTP, ~0ull)),
    OK("EPTP junk without activate secondary", BEPT, C(PROC, CPU_BASED_ACTIVATE_SECONDARY), S(EPTP, 7)),
    TE("EPTP memory type WC", "EPTP memory type not supported", S(EPTP, 0x5000 | 0x19)),
    TE("EPTP memory type 7", "EPTP memory type not supported", S(EPTP, 0x5000 | 0x1f)),
    TE("EPTP memory type WT", "EPTP memory type not supported", S(EPTP, 0x5000 | 0x1c)),
    TE("EPTP page-walk length 5", "EPTP page-walk length must be 4", S(EPTP, 0x5000 | 0x26)),
    TE("EPTP page-walk length 1", "EPTP page-walk length must be 4", S(EPTP, 0x5000 | 0x06)),
    OK("EPTP A/D flags (advertised; tests/unit/test_ept02_ad.c: not)", BEPT, S(EPTP, 0x5000 | 0x5e)),
    TE("EPTP bit 7", "EPTP bits 11:7 are reserved", S(EPTP, 0x5000 | 0x9e)),
    TE("EPTP bit 11", "EPTP bits 11:7 are reserved", S(EPTP, 0x5800 | 0x1e)),
    TE("EPTP beyond MAXPHYADDR", "EPTP beyond physical-address width", S(EPTP, (1ull << PHYS_BITS) | 0x1e)),
    TE("EPTP bit 63", "EPTP beyond physical-address width", S(EPTP, (1ull << 63) | 0x501e)),
    OK("unrestricted guest with EPT, 64-bit L2", BUG, ),
    T("unrestricted guest, EPT cleared", BUG, CTL, "unrestricted guest requires enable EPT", 0,
      C(PROC2, SECONDARY_EPT)),
    OK("proc2: VMCS shadowing, bitmaps at 0, link pointer all 1s", B64, O(PROC2, SECONDARY_SHADOW_VMCS)),
    OK("VMREAD-bitmap junk without VMCS shadowing", B64, S(VMREAD_BITMAP, 0x10807)),
    TC("VMREAD bitmap unaligned", "VMREAD-bitmap address bits 11:0", O(PROC2, SECONDARY_SHADOW_VMCS),
       S(VMREAD_BITMAP, 0x10800)),
    TC("VMWRITE bitmap beyond MAXPHYADDR", "VMWRITE-bitmap address beyond", O(PROC2, SECONDARY_SHADOW_VMCS),
       S(VMWRITE_BITMAP, 1ull << PHYS_BITS)),
    OK("VM functions, none enabled, without EPT", B64, O(PROC2, SECONDARY_VMFUNC)),
    OK("VM-function controls junk without enable VM functions", B64, S(VM_FUNCTION_CONTROL, 0xff)),
    TC("VM-function control bit 1", "VM-function controls beyond", O(PROC2, SECONDARY_VMFUNC),
       S(VM_FUNCTION_CONTROL, 2)),
    TC("EPTP switching without EPT", "EPTP switching requires enable EPT", O(PROC2, SECONDARY_VMFUNC),
       S(VM_FUNCTION_CONTROL, 1)),
    OK("EPTP switching with EPT", BEPT, O(PROC2, SECONDARY_VMFUNC), S(VM_FUNCTION_CONTROL, 1),
       S(EPTP_LIST_ADDRESS, (1ull << PHYS_BITS) - 0x1000)),
    OK("EPTP-list junk, switching off", BEPT, O(PROC2, SECONDARY_VMFUNC), S(EPTP_LIST_ADDRESS, 0x6008)),
    TE("EPTP-list address bit 3", "EPTP-list address bits 11:0 must be 0", O(PROC2, SECONDARY_VMFUNC),
       S(VM_FUNCTION_CONTROL, 1), S(EPTP_LIST_ADDRESS, 0x6008)),
    TE("EPTP-list address beyond MAXPHYADDR", "EPTP-list address beyond", O(PROC2, SECONDARY_VMFUNC),
       S(VM_FUNCTION_CONTROL, 1), S(EPTP_LIST_ADDRESS, 1ull << PHYS_BITS)),
    OK("#VE with EPT", BEPT, O(PROC2, SECONDARY_EPT_VE), S(VE_INFO_ADDRESS, (1ull << PHYS_BITS) - 0x1000)),
    OK("#VE address junk without #VE", BEPT, S(VE_INFO_ADDRESS, 0x6008)),
    TE("#VE address bit 3", "virtualization-exception information address bits 11:0", O(PROC2, SECONDARY_EPT_VE),
       S(VE_INFO_ADDRESS, 0x6008)),
    TE("#VE address beyond MAXPHYADDR", "virtualization-exception information address beyond",
       O(PROC2, SECONDARY_EPT_VE), S(VE_INFO_ADDRESS, 1ull << PHYS_BITS)),
    TC("proc2: PML without EPT", "enable PML requires enable EPT", O(PROC2, SECONDARY_PML)),
    OK("PML with EPT", BEPT, O(PROC2, SECONDARY_PML), S(PML_ADDRESS, (1ull << PHYS_BITS) - 0x1000)),
    TE("PML address bit 3", "PML address bits 11:0 must be 0", O(PROC2, SECONDARY_PML), S(PML_ADDRESS, 0x6008)),
    TE("PML address beyond MAXPHYADDR", "PML address beyond", O(PROC2, SECONDARY_PML),
       S(PML_ADDRESS, 1ull << PHYS_BITS)),
    TC("proc2: TSC scaling, multiplier 0", "TSC multiplier must not be 0", O(PROC2, SECONDARY_TSC_SCALING)),
    OK("proc2: TSC scaling, multiplier 1", B64, O(PROC2, SECONDARY_TSC_SCALING), S(TSC_MULTIPLIER, 1)),
    TC("proc2: ENCLS exiting", "secondary processor-based controls", O(PROC2, SECONDARY_ENCLS_EXITING)),
    OK("proc2: XSAVES", B64, O(PROC2, SECONDARY_XSAVES)),
    OK("proc2 ignored without activate secondary", B64, C(PROC, CPU_BASED_ACTIVATE_SECONDARY),
       O(PROC2, SECONDARY_EPT)),
    TC("CR3-target count 5", "CR3-target count", S(CR3_TARGET_COUNT, 5)),
    OK("CR3-target count 4", B64, S(CR3_TARGET_COUNT, 4)),
    TC("I/O bitmap A unaligned", "I/O-bitmap A address bits 11:0", S(IO_BITMAP_A, 0x10800)),
    TC("I/O bitmap A too high", "I/O-bitmap A address beyond", S(IO_BITMAP_A, 1ull << PHYS_BITS)),
    TC("I/O bitmap B unaligned", "I/O-bitmap B address bits 11:0", S(IO_BITMAP_B, 0x11004)),
    TC("I/O bitmap B too high", "I/O-bitmap B address beyond", S(IO_BITMAP_B, 1ull << 63)),
    OK("I/O bitmaps unused", B64, C(PROC, CPU_BASED_USE_IO_BITMAPS), S(IO_BITMAP_A, 1), S(IO_BITMAP_B, ~0ull)),
    TC("MSR bitmap unaligned", "MSR-bitmap address bits 11:0", S(MSR_BITMAP, 0x12010)),
    TC("MSR bitmap too high", "MSR-bitmap address beyond", S(MSR_BITMAP, 0xff00000000000ull)),
    OK("MSR bitmap unused", B64, C(PROC, CPU_BASED_USE_MSR_BITMAPS), S(MSR_BITMAP, 3)),
    TC("virtual NMIs without NMI exiting", "virtual NMIs require NMI exiting", C(PIN, PIN_BASED_NMI_EXITING)),
    TC("NMI-window exiting without virtual NMIs", "NMI-window exiting requires virtual NMIs",
       C(PIN, PIN_BASED_VIRTUAL_NMIS), O(PROC, CPU_BASED_NMI_WINDOW_EXITING)),
    OK("NMI-window exiting with virtual NMIs", B64, O(PROC, CPU_BASED_NMI_WINDOW_EXITING)),
    TC("VPID 0", "VPID must not be 0", S(VIRTUAL_PROCESSOR_ID, 0)),
    OK("VPID 0 without enable VPID", B64, S(VIRTUAL_PROCESSOR_ID, 0), C(PROC2, SECONDARY_VPID)),
    /* 26.2.1.2 VM-exit controls */
    OK("exit: load perf global, counters 0-3 and fixed 0-2", B64, O(EXIT, VM_EXIT_LOAD_PERF_GLOBAL_CTRL),
       S(HOST_IA32_PERF_GLOBAL_CTRL, 0x70000000full)),
    TH("exit: load perf global, counter 4", "26.2.2: host IA32_PERF_GLOBAL_CTRL reserved bits",
       O(EXIT, VM_EXIT_LOAD_PERF_GLOBAL_CTRL), S(HOST_IA32_PERF_GLOBAL_CTRL, 1ull << 4)),
    TH("exit: load perf global, fixed counter 3", "26.2.2: host IA32_PERF_GLOBAL_CTRL reserved bits",
       O(EXIT, VM_EXIT_LOAD_PERF_GLOBAL_CTRL), S(HOST_IA32_PERF_GLOBAL_CTRL, 1ull << 35)),
    OK("exit: reserved host perf global without the load", B64, S(HOST_IA32_PERF_GLOBAL_CTRL, ~0ull)),
    TC("exit: default1 bit clear", "VM-exit controls reserved bits", C(EXIT, 1u << 0)),
    TC("save timer without timer", "save VMX-preemption timer value requires", C(PIN, PIN_BASED_PREEMPTION_TIMER)),
    TC("exit MSR-store unaligned", "VM-exit MSR-store address bits 3:0", S(VM_EXIT_MSR_STORE_ADDR, 0x13008)),
    TC("exit MSR-store too high", "VM-exit MSR-store address beyond", S(VM_EXIT_MSR_STORE_ADDR, 1ull << 40)),
    TC("exit MSR-store end too high", "VM-exit MSR-store area last byte",
       S(VM_EXIT_MSR_STORE_ADDR, (1ull << 40) - 16)),
    OK("exit MSR-store area ends at the limit", B64, S(VM_EXIT_MSR_STORE_ADDR, (1ull << 40) - 32)),
    TC("exit MSR-load unaligned", "VM-exit MSR-load address bits 3:0", S(VM_EXIT_MSR_LOAD_ADDR, 0x13101)),
    TC("exit MSR-load too high", "VM-exit MSR-load address beyond", S(VM_EXIT_MSR_LOAD_ADDR, 1ull << 52)),
    TC("exit MSR-load huge count", "VM-exit MSR-load area last byte", S(VM_EXIT_MSR_LOAD_COUNT, 0xffffffff),
       S(VM_EXIT_MSR_LOAD_ADDR, 0xfff0000000ull)),
    OK("exit MSR lists empty", B64, S(VM_EXIT_MSR_STORE_COUNT, 0), S(VM_EXIT_MSR_STORE_ADDR, 1),
       S(VM_EXIT_MSR_LOAD_COUNT, 0), S(VM_EXIT_MSR_LOAD_ADDR, ~0ull)),
    /* 26.2.1.3 VM-entry controls and event injection */
    TC("entry: SMM", "VM-entry controls reserved bits", O(ENTRY, VM_ENTRY_SMM)),
    OK("entry: load perf global, counters 0-3 and fixed 0-2", B64, O(ENTRY, VM_ENTRY_LOAD_PERF_GLOBAL_CTRL),
       S(GUEST_IA32_PERF_GLOBAL_CTRL, 0x70000000full)),
    TG("entry: load perf global, bit 63", "26.3.1.1: guest IA32_PERF_GLOBAL_CTRL reserved bits",
       O(ENTRY, VM_ENTRY_LOAD_PERF_GLOBAL_CTRL), S(GUEST_IA32_PERF_GLOBAL_CTRL, 1ull << 63)),
    OK("entry: reserved guest perf global without the load", B64, S(GUEST_IA32_PERF_GLOBAL_CTRL, ~0ull)),
    TC("entry: default1 bit clear", "VM-entry controls reserved bits", C(ENTRY, 1u << 12)),
    TC("inject type 1", "interruption type 1 is reserved", S(INFO, V(1u << 8, 0x20))),
    TC("inject NMI vector 3", "NMI vector must be 2", S(INFO, V(INTR_TYPE_NMI, 3))),
    TC("inject exception 32", "hardware exception vector above 31", S(INFO, V(INTR_TYPE_HW_EXCEPTION, 32))),
    TC("inject other event 1", "other-event vector must be 0", S(INFO, V(INTR_TYPE_OTHER, 1))),
    TC("inject #GP without code", "deliver-error-code bit", S(INFO, V(INTR_TYPE_HW_EXCEPTION, 13))),
    TC("inject #UD with code", "deliver-error-code bit", S(INFO, V(INTR_TYPE_HW_EXCEPTION, 6) | EC)),
    TC("inject interrupt with code", "deliver-error-code bit", S(INFO, V(INTR_TYPE_EXT_INTR, 0x20) | EC)),
    TC("inject software #BP with code", "deliver-error-code bit", S(INFO, V(INTR_TYPE_SW_EXCEPTION, 3) | EC),
       S(VM_ENTRY_INSTRUCTION_LEN, 1)),
    TC("inject reserved bit 12", "bits 30:12", S(INFO, V(INTR_TYPE_EXT_INTR, 0x20) | 1u << 12)),
    TC("inject reserved bit 30", "bits 30:12", S(INFO, V(INTR_TYPE_EXT_INTR, 0x20) | 1u << 30)),
    TC("inject error code bit 16", "error code bits 31:16", S(INFO, V(INTR_TYPE_HW_EXCEPTION, 13) | EC),
       S(VM_ENTRY_EXCEPTION_ERROR_CODE, 0x10000)),
    OK("error code bit 16 without deliver-error-code", B64, S(VM_ENTRY_EXCEPTION_ERROR_CODE, 0x10000),
       S(INFO, V(INTR_TYPE_HW_EXCEPTION, 6))),
    TC("inject INT n length 0", "instruction length of a software event", S(INFO, V(INTR_TYPE_SW_INTR, 0x80)),
       S(VM_ENTRY_INSTRUCTION_LEN, 0)),
    TC("inject INT3 length 16", "instruction length of a software event", S(INFO, V(INTR_TYPE_SW_EXCEPTION, 3)),
       S(VM_ENTRY_INSTRUCTION_LEN, 16)),
    TC("inject INT1 length 0", "instruction length of a software event",
       S(INFO, V(INTR_TYPE_PRIV_SW_EXCEPTION, 1))),
    OK("inject external interrupt", B64, S(INFO, V(INTR_TYPE_EXT_INTR, 0x20))),
    OK("inject NMI", B64, S(INFO, V(INTR_TYPE_NMI, 2))),
    OK("inject #PF with error code", B64, S(INFO, V(INTR_TYPE_HW_EXCEPTION, 14) | EC),
       S(VM_ENTRY_EXCEPTION_ERROR_CODE, 0xffff)),
    OK("inject #DF with error code", B64, S(INFO, V(INTR_TYPE_HW_EXCEPTION, 8) | EC)),
    OK("inject INT 0x80 length 2", B64, S(INFO, V(INTR_TYPE_SW_INTR, 0x80)), S(VM_ENTRY_INSTRUCTION_LEN, 2)),
    OK("inject INT3 length 15", B64, S(INFO, V(INTR_TYPE_SW_EXCEPTION, 3)), S(VM_ENTRY_INSTRUCTION_LEN, 15)),
    OK("inject pending MTF", B64, S(INFO, V(INTR_TYPE_OTHER, 0))),
    OK("invalid event without valid bit", B64, S(INFO, (1u << 8) | 0x7000 | 99)),
    TC("entry MSR-load unaligned", "VM-entry MSR-load address bits 3:0", S(VM_ENTRY_MSR_LOAD_ADDR, 0x13208)),
    TC("entry MSR-load too high", "VM-entry MSR-load address beyond", S(VM_ENTRY_MSR_LOAD_ADDR, 1ull << 45)),
    TC("entry MSR-load end too high", "VM-entry MSR-load area last byte",
       S(VM_ENTRY_MSR_LOAD_ADDR, (1ull << 40) - 16)),
    /* 26.2.2 host control registers and MSRs */
    TH("host CR0.PE clear", "host CR0 fixed bits", C(HOST_CR0, CR0_PE)),
    TH("host CR0.NE clear", "host CR0 fixed bits", C(HOST_CR0, CR0_NE)),
    TH("host CR0 bit 32", "host CR0 fixed bits", O(HOST_CR0, 1ull << 32)),
    TH("host CR4.VMXE clear", "host CR4 fixed bits", C(HOST_CR4, CR4_VMXE)),
    TH("host CR4.CET", "host CR4 fixed bits", O(HOST_CR4, 1ull << 23)),
    TH("host CR3 too high", "host CR3 beyond", S(HOST_CR3, 1ull << PHYS_BITS)),
    TH("host SYSENTER_ESP", "host IA32_SYSENTER_ESP not canonical", S(HOST_IA32_SYSENTER_ESP, NONCANON)),
    TH("host SYSENTER_EIP", "host IA32_SYSENTER_EIP not canonical", S(HOST_IA32_SYSENTER_EIP, 0x8000000000000000)),
    TH("host PAT type 2", "host IA32_PAT", S(HOST_IA32_PAT, 0x0007040600070402)),
    TH("host PAT type 8", "host IA32_PAT", S(HOST_IA32_PAT, 0x0807040600070406)),
    OK("host PAT not loaded", B64, C(EXIT, VM_EXIT_LOAD_PAT), S(HOST_IA32_PAT, ~0ull)),
    TH("host EFER.SVME", "host IA32_EFER reserved bits", O(HOST_IA32_EFER, 1ull << 12)),
    TH("host EFER.LMA clear", "host IA32_EFER.LMA must equal", C(HOST_IA32_EFER, EFER_LMA)),
    TH("host EFER.LME clear", "host IA32_EFER.LME must equal", C(HOST_IA32_EFER, EFER_LME)),
    OK("host EFER not loaded", B64, C(EXIT, VM_EXIT_LOAD_EFER), S(HOST_IA32_EFER, ~0ull)),
    /* 26.2.3 host segment and descriptor-table registers */
    TH("host ES RPL", "host ES selector RPL and TI", S(HOST_ES_SELECTOR, 0x13)),
    TH("host CS TI", "host CS selector RPL and TI", S(HOST_CS_SELECTOR, 0x0c)),
    TH("host SS RPL", "host SS selector RPL and TI", S(HOST_SS_SELECTOR, 0x11)),
    TH("host DS RPL", "host DS selector RPL and TI", S(HOST_DS_SELECTOR, 0x12)),
    TH("host FS TI", "host FS selector RPL and TI", S(HOST_FS_SELECTOR, 0x4)),
    TH("host GS RPL", "host GS selector RPL and TI", S(HOST_GS_SELECTOR, 0x3)),
    TH("host TR RPL", "host TR selector RPL and TI", S(HOST_TR_SELECTOR, 0x1b)),
    TH("host CS 0", "host CS selector must not be 0", S(HOST_CS_SELECTOR, 0)),
    TH("host TR 0", "host TR selector must not be 0", S(HOST_TR_SELECTOR, 0)),
    OK("host SS 0 in 64-bit host", B64, S(HOST_SS_SELECTOR, 0)),
    T("host SS 0 in 32-bit host", B32, HOST, "host SS selector 0 requires host address-space size 1", 0, HOST32,
      S(HOST_SS_SELECTOR, 0)),
    TH("host FS base", "host FS base not canonical", S(HOST_FS_BASE, NONCANON)),
    TH("host GS base", "host GS base not canonical", S(HOST_GS_BASE, 0xfff0000000000000)),
    TH("host GDTR base", "host GDTR base not canonical", S(HOST_GDTR_BASE, NONCANON)),
    TH("host IDTR base", "host IDTR base not canonical", S(HOST_IDTR_BASE, 0x7fff000000000000)),
    TH("host TR base", "host TR base not canonical", S(HOST_TR_BASE, NONCANON)),
    /* 26.2.4 address-space size */
    TH("IA-32e guest, 32-bit host", "IA-32e mode guest requires host address-space size 1", HOST32),
    T("32-bit host with CR4.PCIDE", B32, HOST, "host CR4.PCIDE requires host address-space size 1", 0, HOST32,
      O(HOST_CR4, 1u << 17)),
    T("32-bit host with RIP above 4G", B32, HOST, "host RIP bits 63:32", 0, HOST32),
    T("32-bit host (L1 is 64-bit)", B32, HOST, "host address-space size must be 1", 0, HOST32,
      S(HOST_RIP, 0x100000)),
    TH("64-bit host without CR4.PAE", "host CR4.PAE must be 1", C(HOST_CR4, CR4_PAE)),
    TH("host RIP", "host RIP not canonical", S(HOST_RIP, NONCANON)),
    /* 26.3.1.1 guest control registers, debug registers and MSRs */
    TG("guest CR0.PE clear", "guest CR0 fixed bits", C(GUEST_CR0, CR0_PE)),
    TG("guest CR0.PG clear", "guest CR0 fixed bits", C(GUEST_CR0, CR0_PG)),
    TG("guest CR0.NE clear", "guest CR0 fixed bits", C(GUEST_CR0, CR0_NE)),
    TG("guest CR0 bit 32", "guest CR0 fixed bits", O(GUEST_CR0, 1ull << 32)),
    OK("guest CR0.CD and NW are not checked", B64, O(GUEST_CR0, CR0_CD | CR0_NW)),
    TG("guest CR4.VMXE clear", "guest CR4 fixed bits", C(GUEST_CR4, CR4_VMXE)),
    TG("guest CR4.LA57", "guest CR4 fixed bits", O(GUEST_CR4, 1u << 12)),
    TG("guest DEBUGCTL bit 2", "guest IA32_DEBUGCTL reserved bits", S(GUEST_IA32_DEBUGCTL, 1u << 2)),
    TG("guest DEBUGCTL bit 16", "guest IA32_DEBUGCTL reserved bits", S(GUEST_IA32_DEBUGCTL, 1u << 16)),
    TG("guest DR7 bit 32", "guest DR7 bits 63:32", S(GUEST_DR7, 1ull << 32 | 0x400)),
    OK("debug controls not loaded", B64, C(ENTRY, VM_ENTRY_LOAD_DEBUG_CONTROLS), C(EXIT, VM_EXIT_SAVE_DEBUG_CONTROLS),
       S(GUEST_IA32_DEBUGCTL, ~0ull), S(GUEST_DR7, ~0ull)),
    TG("IA-32e guest without CR4.PAE", "IA-32e mode guest requires CR4.PAE", C(GUEST_CR4, CR4_PAE)),
    T("32-bit guest with CR4.PCIDE", B32, GUEST, "guest CR4.PCIDE requires IA-32e mode guest", 0,
      O(GUEST_CR4, 1u << 17)),
    OK("64-bit guest with CR4.PCIDE", B64, O(GUEST_CR4, 1u << 17)),
    TG("guest CR3 too high", "guest CR3 beyond", S(GUEST_CR3, 1ull << PHYS_BITS | 0x1000)),
    TG("guest SYSENTER_ESP", "guest IA32_SYSENTER_ESP not canonical", S(GUEST_SYSENTER_ESP, NONCANON)),
    TG("guest SYSENTER_EIP", "guest IA32_SYSENTER_EIP not canonical", S(GUEST_SYSENTER_EIP, NONCANON)),
    TG("guest PAT type 3", "guest IA32_PAT", S(GUEST_IA32_PAT, 0x0007040600030406)),
    OK("guest PAT not loaded", B64, C(ENTRY, VM_ENTRY_LOAD_PAT), S(GUEST_IA32_PAT, 0x2222)),
    TG("guest EFER bit 9", "guest IA32_EFER reserved bits", O(GUEST_IA32_EFER, 1u << 9)),
    TG("guest EFER.LMA clear", "guest IA32_EFER.LMA must equal", C(GUEST_IA32_EFER, EFER_LMA)),
    T("32-bit guest with EFER.LMA", B32, GUEST, "guest IA32_EFER.LMA must equal", 0, O(GUEST_IA32_EFER, EFER_LMA)),
    TG("guest EFER.LME clear", "guest IA32_EFER.LME must equal", C(GUEST_IA32_EFER, EFER_LME)),
    T("32-bit guest with EFER.LME", B32, GUEST, "guest IA32_EFER.LME must equal", 0, O(GUEST_IA32_EFER, EFER_LME)),
    OK("guest EFER not loaded", B64, C(ENTRY, VM_ENTRY_LOAD_EFER), S(GUEST_IA32_EFER, ~0ull)),
    /* 26.3.1.4 RIP and RFLAGS */
    TG("guest RIP", "guest RIP not canonical", S(GUEST_RIP, NONCANON)),
    TG("compatibility-mode RIP above 4G", "guest RIP bits 63:32", S(GUEST_CS_AR_BYTES, 0x809b)),
    T("32-bit guest RIP above 4G", B32, GUEST, "guest RIP bits 63:32", 0, S(GUEST_RIP, 1ull << 32)),
    TG("guest RFLAGS bit 1 clear", "guest RFLAGS reserved bits", S(GUEST_RFLAGS, 0x200)),
    TG("guest RFLAGS bit 3", "guest RFLAGS reserved bits", O(GUEST_RFLAGS, 1u << 3)),
    TG("guest RFLAGS bit 15", "guest RFLAGS reserved bits", O(GUEST_RFLAGS, 1u << 15)),
    TG("guest RFLAGS bit 22", "guest RFLAGS reserved bits", O(GUEST_RFLAGS, 1u << 22)),
    TG("guest RFLAGS.VM in IA-32e mode", "guest RFLAGS.VM must be 0", O(GUEST_RFLAGS, 1u << 17)),
    TG("external interrupt with IF=0", "RFLAGS.IF must be 1", S(GUEST_RFLAGS, 2),
       S(INFO, V(INTR_TYPE_EXT_INTR, 0x20))),
    OK("NMI with IF=0", B64, S(GUEST_RFLAGS, 2), S(INFO, V(INTR_TYPE_NMI, 2))),
    /* 26.3.1.2 segment registers */
    TG("SS.RPL != CS.RPL", "guest SS selector RPL must equal CS RPL", S(GUEST_SS_SELECTOR, 0x1b)),
    TG("CS base above 4G", "guest CS base bits 63:32", S(GUEST_CS_BASE, 1ull << 32)),
    TG("CS data type", "guest CS AR type", S(GUEST_CS_AR_BYTES, 0xa093)),
    TG("CS not accessed", "guest CS AR type", S(GUEST_CS_AR_BYTES, 0xa09a)),
    TG("CS DPL != SS DPL", "guest CS AR DPL must equal SS DPL", S(GUEST_CS_AR_BYTES, 0xa0bb)),
    TG("conforming CS DPL > SS DPL", "guest CS AR DPL must not exceed SS DPL", S(GUEST_CS_AR_BYTES, 0xa0df)),
    OK("conforming CS DPL < SS DPL", B64, S(GUEST_CS_AR_BYTES, 0xa09f), S(GUEST_SS_SELECTOR, 0x18),
       S(GUEST_SS_AR_BYTES, 0xc093)),
    TG("CS L and D/B", "guest CS AR D/B must be 0", S(GUEST_CS_AR_BYTES, 0xe09b)),
    TG("CS S clear", "guest CS AR S must be 1", S(GUEST_CS_AR_BYTES, 0xa08b)),
    TG("CS not present", "guest CS AR P must be 1", S(GUEST_CS_AR_BYTES, 0xa01b)),
    TG("CS AR bit 8", "guest CS AR bits 11:8", S(GUEST_CS_AR_BYTES, 0xa19b)),
    TG("CS 4G limit, byte granular", "guest CS AR G must be 1", S(GUEST_CS_AR_BYTES, 0x209b)),
    TG("CS limit 0xfffff000 page granular", "guest CS AR G must be 0", S(GUEST_CS_LIMIT, 0xfffff000)),
    TG("CS AR bit 17", "guest CS AR bits 31:17", O(GUEST_CS_AR_BYTES, 1u << 17)),
    TG("SS DPL != RPL", "guest SS AR DPL must equal selector RPL", S(GUEST_CS_AR_BYTES, 0xa0bb),
       S(GUEST_SS_AR_BYTES, 0xc0b3)),
    TG("SS base above 4G", "guest SS base bits 63:32", S(GUEST_SS_BASE, 1ull << 32)),
    OK("SS unusable in 64-bit mode", B64, S(GUEST_SS_SELECTOR, 0), S(GUEST_SS_AR_BYTES, UNUSABLE),
       S(GUEST_SS_BASE, 1ull << 40)),
    TG("SS code type", "guest SS AR type must be 3 or 7", S(GUEST_SS_AR_BYTES, 0xc09b)),
    TG("SS read-only", "guest SS AR type must be 3 or 7", S(GUEST_SS_AR_BYTES, 0xc091)),
    TG("SS not present", "guest SS AR P must be 1", S(GUEST_SS_AR_BYTES, 0xc013)),
    TG("DS base above 4G", "guest DS base bits 63:32", S(GUEST_DS_BASE, 1ull << 32)),
    TG("DS not accessed", "guest DS AR type must be accessed", S(GUEST_DS_AR_BYTES, 0xc092)),
    TG("DS execute-only code", "guest DS AR type: code segment must be readable", S(GUEST_DS_AR_BYTES, 0xc099)),
    TG("DS DPL < RPL", "guest DS AR DPL must not be below selector RPL", S(GUEST_DS_SELECTOR, 0x1b)),
    OK("DS conforming code with DPL < RPL", B64, S(GUEST_DS_SELECTOR, 0x1b), S(GUEST_DS_AR_BYTES, 0xc09f)),
    OK("DS unusable with junk", B64, S(GUEST_DS_AR_BYTES, UNUSABLE | 0xff00), S(GUEST_DS_BASE, ~0ull)),
    TG("ES system segment", "guest ES AR S must be 1", S(GUEST_ES_AR_BYTES, 0xc083)),
    TG("ES AR bit 31", "guest ES AR bits 31:17", O(GUEST_ES_AR_BYTES, 1u << 31)),
    TG("FS base (unusable FS)", "guest FS base not canonical", S(GUEST_FS_BASE, NONCANON)),
    TG("GS 4G limit, byte granular", "guest GS AR G must be 1", S(GUEST_GS_AR_BYTES, 0x4093),
       S(GUEST_GS_LIMIT, 0xffffffff)),
    OK("FS and GS usable", B64, S(GUEST_FS_AR_BYTES, DATA_AR), S(GUEST_FS_LIMIT, 0xffffffff),
       S(GUEST_GS_AR_BYTES, 0x4093), S(GUEST_GS_LIMIT, 0xfffff)),
    TG("TR TI", "guest TR selector TI", S(GUEST_TR_SELECTOR, 0x44)),
    TG("TR base", "guest TR base not canonical", S(GUEST_TR_BASE, NONCANON)),
    TG("16-bit TSS in IA-32e mode", "guest TR AR type must be 11", S(GUEST_TR_AR_BYTES, 0x83)),
    OK("16-bit TSS in a 32-bit guest", B32, S(GUEST_TR_AR_BYTES, 0x83)),
    T("available TSS in a 32-bit guest", B32, GUEST, "guest TR AR type must be 3 or 11", 0,
      S(GUEST_TR_AR_BYTES, 0x89)),
    TG("TR unusable", "guest TR must be usable", S(GUEST_TR_AR_BYTES, UNUSABLE | TSS_AR)),
    TG("TR S set", "guest TR AR S must be 0", S(GUEST_TR_AR_BYTES, 0x9b)),
    TG("TR not present", "guest TR AR P must be 1", S(GUEST_TR_AR_BYTES, 0x0b)),
    TG("TR page granular, small limit", "guest TR AR G must be 0", O(GUEST_TR_AR_BYTES, 1u << 15)),
    TG("LDTR TI", "guest LDTR selector TI", S(GUEST_LDTR_AR_BYTES, 0x82), S(GUEST_LDTR_SELECTOR, 0x4c)),
    TG("LDTR base", "guest LDTR base not canonical", S(GUEST_LDTR_AR_BYTES, 0x82), S(GUEST_LDTR_BASE, NONCANON)),
    TG("LDTR type", "guest LDTR AR type must be 2", S(GUEST_LDTR_AR_BYTES, 0x83)),
    TG("LDTR S set", "guest LDTR AR S must be 0", S(GUEST_LDTR_AR_BYTES, 0x92)),
    OK("LDTR usable", B64, S(GUEST_LDTR_AR_BYTES, 0x82), S(GUEST_LDTR_SELECTOR, 0x48),
       S(GUEST_LDTR_BASE, 0xfffffe0000010000), S(GUEST_LDTR_LIMIT, 0xffff)),
    OK("LDTR unusable with junk", B64, S(GUEST_LDTR_AR_BYTES, UNUSABLE | 0xff), S(GUEST_LDTR_BASE, NONCANON)),
    T("v86 CS base", BV86, GUEST, "guest CS base must be selector << 4", 0, S(GUEST_CS_BASE, 0x10001)),
    T("v86 SS limit", BV86, GUEST, "guest SS limit must be 0xffff", 0, S(GUEST_SS_LIMIT, 0xfffff)),
    T("v86 GS AR", BV86, GUEST, "guest GS AR must be 0xf3", 0, S(GUEST_GS_AR_BYTES, 0xf2)),
    T("v86 FS unusable", BV86, GUEST, "guest FS AR must be 0xf3", 0, S(GUEST_FS_AR_BYTES, UNUSABLE)),
    T("v86 TR still checked", BV86, GUEST, "guest TR AR type must be 3 or 11", 0, S(GUEST_TR_AR_BYTES, 0x82)),
    /* 26.3.1.3 descriptor-table registers */
    TG("GDTR base", "guest GDTR base not canonical", S(GUEST_GDTR_BASE, NONCANON)),
    TG("IDTR base", "guest IDTR base not canonical", S(GUEST_IDTR_BASE, NONCANON)),
    TG("GDTR limit", "guest GDTR limit bits 31:16", S(GUEST_GDTR_LIMIT, 0x10000)),
    TG("IDTR limit", "guest IDTR limit bits 31:16", S(GUEST_IDTR_LIMIT, 0x1ffff)),
    /* 26.3.1.5 non-register state */
    OK("activity shutdown", B64, S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_SHUTDOWN)),
    OK("activity wait-for-SIPI", B64, S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_WAIT_SIPI)),
    OK("shutdown with NMI injection", B64, S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_SHUTDOWN), S(INFO, V(INTR_TYPE_NMI, 2))),
    OK("shutdown with #MC injection", B64, S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_SHUTDOWN),
       S(INFO, V(INTR_TYPE_HW_EXCEPTION, 18))),
    TG("shutdown with #UD injection", "only an NMI or #MC may be injected in the shutdown activity state",
       S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_SHUTDOWN), S(INFO, V(INTR_TYPE_HW_EXCEPTION, 6))),
    TG("shutdown with external interrupt", "only an NMI or #MC may be injected in the shutdown activity state",
       S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_SHUTDOWN), S(INFO, V(INTR_TYPE_EXT_INTR, 0x30))),
    TG("wait-for-SIPI with NMI injection", "no event may be injected in the wait-for-SIPI activity state",
       S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_WAIT_SIPI), S(INFO, V(INTR_TYPE_NMI, 2))),
    TG("wait-for-SIPI with STI blocking", "activity state must be active with blocking by STI or MOV SS",
       S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_WAIT_SIPI), S(INTR, GUEST_INTR_STI)),
    TG("activity 4", "activity state not supported", S(GUEST_ACTIVITY_STATE, 4)),
    OK("activity HLT", B64, S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_HLT)),
    TG("HLT at CPL 3", "HLT activity state requires SS.DPL 0", S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_HLT),
       S(GUEST_CS_SELECTOR, 0x13), S(GUEST_CS_AR_BYTES, 0xa0fb), S(GUEST_SS_SELECTOR, 0x1b),
       S(GUEST_SS_AR_BYTES, 0xc0f3)),
    OK("running at CPL 3", B64, S(GUEST_CS_SELECTOR, 0x13), S(GUEST_CS_AR_BYTES, 0xa0fb),
       S(GUEST_SS_SELECTOR, 0x1b), S(GUEST_SS_AR_BYTES, 0xc0f3)),
    TG("HLT with STI blocking", "activity state must be active with blocking by STI or MOV SS",
       S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_HLT), S(INTR, GUEST_INTR_STI)),
    TG("HLT with #GP injection", "injected event not allowed in the HLT activity state",
       S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_HLT), S(INFO, V(INTR_TYPE_HW_EXCEPTION, 13) | EC)),
    TG("HLT with INT n injection", "injected event not allowed in the HLT activity state",
       S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_HLT), S(INFO, V(INTR_TYPE_SW_INTR, 0x80)),
       S(VM_ENTRY_INSTRUCTION_LEN, 2)),
    OK("HLT with external interrupt", B64, S(GUEST_ACTIVITY_STATE, 1), S(INFO, V(INTR_TYPE_EXT_INTR, 0x30))),
    OK("HLT with NMI", B64, S(GUEST_ACTIVITY_STATE, 1), S(INFO, V(INTR_TYPE_NMI, 2))),
    OK("HLT with #DB", B64, S(GUEST_ACTIVITY_STATE, 1), S(INFO, V(INTR_TYPE_HW_EXCEPTION, 1))),
    OK("HLT with #MC", B64, S(GUEST_ACTIVITY_STATE, 1), S(INFO, V(INTR_TYPE_HW_EXCEPTION, 18))),
    OK("HLT with pending MTF", B64, S(GUEST_ACTIVITY_STATE, 1), S(INFO, V(INTR_TYPE_OTHER, 0))),
    TG("interruptibility bit 5", "interruptibility-state bits 31:5", S(INTR, 1u << 5)),
    TG("STI and MOV-SS blocking", "blocking by both STI and MOV SS", S(INTR, GUEST_INTR_STI | GUEST_INTR_MOV_SS)),
    TG("STI blocking with IF=0", "blocking by STI requires RFLAGS.IF=1", S(INTR, GUEST_INTR_STI),
       S(GUEST_RFLAGS, 2)),
    TG("MOV-SS blocking with external interrupt", "with external-interrupt injection", S(INTR, GUEST_INTR_MOV_SS),
       S(INFO, V(INTR_TYPE_EXT_INTR, 0x20))),
    TG("STI blocking with external interrupt", "with external-interrupt injection", S(INTR, GUEST_INTR_STI),
       S(INFO, V(INTR_TYPE_EXT_INTR, 0x20))),
    TG("MOV-SS blocking with NMI", "blocking by MOV SS with NMI injection", S(INTR, GUEST_INTR_MOV_SS),
       S(INFO, V(INTR_TYPE_NMI, 2))),
    TG("SMI blocking", "blocking by SMI outside SMM", S(INTR, GUEST_INTR_SMI)),
    T("STI blocking with NMI", B64, GUEST, "blocking by STI with NMI injection", ENTRY_FAIL_NMI_STI,
      S(INTR, GUEST_INTR_STI), S(INFO, V(INTR_TYPE_NMI, 2))),
    TG("virtual-NMI blocking with NMI", "virtual-NMI blocking with NMI injection", S(INTR, GUEST_INTR_NMI),
       S(INFO, V(INTR_TYPE_NMI, 2))),
    OK("NMI blocking with NMI, no virtual NMIs", B64, C(PIN, PIN_BASED_VIRTUAL_NMIS), S(INTR, GUEST_INTR_NMI),
       S(INFO, V(INTR_TYPE_NMI, 2))),
    OK("MOV-SS blocking with #GP", B64, S(INTR, GUEST_INTR_MOV_SS), S(INFO, V(INTR_TYPE_HW_EXCEPTION, 13) | EC)),
    TG("enclave interruption with MOV-SS", "enclave interruption with blocking by MOV SS",
       S(INTR, 0x10 | GUEST_INTR_MOV_SS)),
    TG("enclave interruption without SGX", "enclave interruption (bit 4) requires SGX", S(INTR, 0x10)),
    TG("pending debug bit 4", "pending debug exceptions bits 11:4", S(PDE, 1u << 4)),
    TG("pending debug bit 13", "pending debug exceptions bits 11:4", S(PDE, 1u << 13)),
    TG("pending debug bit 15", "pending debug exceptions bits 11:4", S(PDE, 1u << 15)),
    TG("pending debug bit 17", "pending debug exceptions bits 11:4", S(PDE, 1u << 17)),
    OK("pending debug B0-B3, enabled BP, BS", B64, S(PDE, 0x500f), O(GUEST_RFLAGS, 1u << 8)),
    TG("STI blocking, TF, no BS", "BS must be 1", S(INTR, GUEST_INTR_STI), S(GUEST_RFLAGS, 0x302)),
    OK("STI blocking, TF, BS", B64, S(INTR, GUEST_INTR_STI), S(GUEST_RFLAGS, 0x302), S(PDE, 1u << 14)),
    TG("MOV-SS blocking, no TF, BS", "BS must be 0", S(INTR, GUEST_INTR_MOV_SS), S(PDE, 1u << 14)),
    TG("HLT, TF with BTF, BS", "BS must be 0", S(GUEST_ACTIVITY_STATE, 1), S(GUEST_RFLAGS, 0x302),
       S(GUEST_IA32_DEBUGCTL, 2), S(PDE, 1u << 14)),
    TG("RTM without enabled breakpoint", "RTM", S(PDE, 1u << 16)),
    TG("RTM with B0", "RTM", S(PDE, 1u << 16 | 1u << 12 | 1)),
    TG("RTM with enabled breakpoint, no RTM", "RTM (bit 16) requires RTM", S(PDE, 1u << 16 | 1u << 12)),
    /* The link pointer names memory holding hv's revision identifier (struct nested_link). */
    OK("link pointer to a VMCS", B64, S(VMCS_LINK_POINTER, 0x1000)),
    OK("link pointer 0 to a VMCS", B64, S(VMCS_LINK_POINTER, 0)),
    T("link pointer unaligned", B64, GUEST, "VMCS link pointer bits 11:0", ENTRY_FAIL_VMCS_LINK_PTR,
      S(VMCS_LINK_POINTER, 0x1008)),
    T("link pointer too high", B64, GUEST, "VMCS link pointer beyond", ENTRY_FAIL_VMCS_LINK_PTR,
      S(VMCS_LINK_POINTER, 1ull << PHYS_BITS)),
    T("link pointer to the current VMCS", B64, GUEST, "must not be the current-VMCS pointer", ENTRY_FAIL_VMCS_LINK_PTR,
      S(VMCS_LINK_POINTER, CURRENT_VMCS)),
    /* Unrestricted guest: 26.3.1.1 CR0.PE/PG, 26.3.1.2 segments, 26.2.1.3 error codes */
    OK("real-mode guest (unrestricted guest)", BREAL, ),
    OK("real mode, CR0.CD and NW", BREAL, O(GUEST_CR0, CR0_CD | CR0_NW)),
    OK("protected mode without paging (unrestricted guest)", BREAL, O(GUEST_CR0, CR0_PE)),
    TR("real mode without unrestricted guest", "guest CR0 fixed bits", C(PROC2, UG)),
    TR("unrestricted guest: CR0.NE still fixed", "guest CR0 fixed bits", C(GUEST_CR0, CR0_NE)),
    TR("unrestricted guest: CR0.PG without PE", "guest CR0.PG requires CR0.PE", O(GUEST_CR0, CR0_PG)),
    TR("unrestricted guest: IA-32e mode without paging", "IA-32e mode guest requires CR0.PG",
       O(ENTRY, VM_ENTRY_IA32E_MODE), O(GUEST_CR0, CR0_PE)),
    TR("real mode, RFLAGS.VM", "guest RFLAGS.VM must be 0", S(GUEST_RFLAGS, 0x20002)),
    OK("real mode, CS read/write data (type 3)", BREAL, S(GUEST_CS_AR_BYTES, 0x93)),
    TR("real mode, CS type 3 with DPL 3", "guest CS AR DPL must be 0 for type 3", S(GUEST_CS_AR_BYTES, 0xf3)),
    TR("unrestricted guest, CS type 1", "guest CS AR type must be 3, 9, 11, 13 or 15", S(GUEST_CS_AR_BYTES, 0x91)),
    TR("unrestricted guest, CS type 7", "guest CS AR type must be 3, 9, 11, 13 or 15", S(GUEST_CS_AR_BYTES, 0x97)),
    TR("real mode, SS DPL 3", "guest SS AR DPL must be 0 with CS type 3 or CR0.PE=0", S(GUEST_CS_AR_BYTES, 0x9f),
       S(GUEST_SS_AR_BYTES, 0xf3)),
    TR("CS type 3 (protected mode), SS DPL 3", "guest SS AR DPL must be 0 with CS type 3", O(GUEST_CR0, CR0_PE),
       S(GUEST_CS_AR_BYTES, 0x93), S(GUEST_SS_SELECTOR, 3), S(GUEST_SS_AR_BYTES, 0xf3)),
    OK("protected mode, CS type 3 and SS DPL 0", BREAL, O(GUEST_CR0, CR0_PE), S(GUEST_CS_AR_BYTES, 0x93)),
    TR("real mode, SS still type 3 or 7", "guest SS AR type must be 3 or 7", S(GUEST_SS_AR_BYTES, 0x9b)),
    TR("real mode, DS not accessed", "guest DS AR type must be accessed", S(GUEST_DS_AR_BYTES, 0x92)),
    TR("real mode, TR still a busy TSS", "guest TR AR type must be 3 or 11", S(GUEST_TR_AR_BYTES, 0x89)),
    OK("unrestricted guest, SS.RPL != CS.RPL", BUG, S(GUEST_SS_SELECTOR, 0x1b)),
    OK("unrestricted guest, SS DPL != RPL", BUG, S(GUEST_SS_SELECTOR, 0x1b), S(GUEST_DS_SELECTOR, 0x1b)),
    OK("unrestricted guest, DS DPL < RPL", BUG, S(GUEST_DS_SELECTOR, 0x1b)),
    TU("unrestricted guest, CS DPL != SS DPL still checked", "guest CS AR DPL must equal SS DPL",
       S(GUEST_CS_AR_BYTES, 0xa0bb)),
    T("v86 with unrestricted guest, CS base", BV86, GUEST, "guest CS base must be selector << 4", 0, O(PROC2, UG),
      O(PROC2, SECONDARY_EPT), S(EPTP, EPTP_OK), S(GUEST_CS_BASE, 0x10001)),
    T("real mode, inject #GP with error code", BREAL, CTL, "deliver-error-code bit", 0,
      S(INFO, V(INTR_TYPE_HW_EXCEPTION, 13) | EC)),
    OK("real mode, inject #GP without error code", BREAL, S(INFO, V(INTR_TYPE_HW_EXCEPTION, 13))),
    OK("real mode, HLT", BREAL, S(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_HLT)),
    /* 26.3.1.6 PDPTEs from the VMCS (EPT, PAE paging) */
    OK("EPT, PAE paging, valid PDPTEs", BPAE, ),
    OK("EPT, PAE paging, junk in a non-present PDPTE", BPAE, S(GUEST_PDPTR2, 0xfffffffffffffffeull)),
    T("EPT, PDPTE bit 1", BPAE, GUEST, "guest PDPTE reserved bits", ENTRY_FAIL_PDPTE, O(GUEST_PDPTR0, 2)),
    T("EPT, PDPTE bit 5", BPAE, GUEST, "guest PDPTE reserved bits", ENTRY_FAIL_PDPTE, O(GUEST_PDPTR1, 1u << 5)),
    T("EPT, PDPTE bit 8", BPAE, GUEST, "guest PDPTE reserved bits", ENTRY_FAIL_PDPTE, O(GUEST_PDPTR2, 1u << 8)),
    T("EPT, PDPTE beyond MAXPHYADDR", BPAE, GUEST, "guest PDPTE reserved bits", ENTRY_FAIL_PDPTE,
      O(GUEST_PDPTR3, 1ull << PHYS_BITS)),
    OK("EPT, PDPTEs unused in IA-32e mode", BEPT, S(GUEST_PDPTR0, 0xffff)),
    OK("EPT, PDPTEs unused without CR4.PAE", BPAE, C(GUEST_CR4, CR4_PAE), S(GUEST_PDPTR0, 0xffff)),
    OK("PDPTE fields unused without EPT", B32, S(GUEST_PDPTR0, 0xffff)),
};

static void build(struct vmcs12 *v, const struct tcase *t)
{
    switch (t->base) {
    case B64: valid64(v); break;
    case B32: valid32(v); break;
    case BV86: valid_v86(v); break;
    case BEPT: valid_ept(v, false); break;
    case BUG:
        valid_ept(v, false);
        vmcs12_set(v, PROC2, vmcs12_get(v, PROC2) | UG);
        break;
    case BREAL: valid_real(v); break;
    case BPAE: valid_ept(v, true); break;
    }
    for (unsigned i = 0; i < sizeof(t->m) / sizeof(t->m[0]) && t->m[i].op != END; i++) {
        bool eptp = t->m[i].field == EPTP;
        uint64_t old = eptp ? vmcs12_eptp(v) : vmcs12_get(v, t->m[i].field);
        uint64_t val = t->m[i].op == SET ? t->m[i].val : t->m[i].op == OR ? old | t->m[i].val : old & ~t->m[i].val;
        if (eptp)
            vmcs12_set_eptp(v, val);
        else
            vmcs12_set(v, t->m[i].field, val);
    }
}

static void run_case(const struct tcase *t)
{
    static struct vmcs12 v;
    uint64_t qual = 0xdead;
    build(&v, t);
    int ctl = nested_check_controls(&v, &caps, PHYS_BITS);
    int host = ctl ? -1 : nested_check_host(&v, &caps, PHYS_BITS);
    int guest = ctl || host ? -1 : nested_check_guest(&v, &caps, PHYS_BITS, &link, &qual);
    const char *rule = nested_check_last_rule();
    switch (t->fn) {
    case PASS:
        CHECK(ctl == 0 && host == 0 && guest == 0 && qual == 0, "%s: passes (controls %d host %d guest %d: %s)",
              t->name, ctl, host, guest, rule);
        return;
    case CTL:
        CHECK(ctl == VMXERR_ENTRY_INVALID_CONTROL, "%s: controls %d, want 7 (%s)", t->name, ctl, rule);
        break;
    case HOST:
        CHECK(ctl == 0 && host == VMXERR_ENTRY_INVALID_HOST, "%s: controls %d host %d, want 0/8 (%s)", t->name, ctl,
              host, rule);
        break;
    case GUEST:
        CHECK(ctl == 0 && host == 0 && guest == EXIT_REASON_INVALID_STATE && qual == t->qual,
              "%s: controls %d host %d guest %d qual %llu, want 0/0/33/%llu (%s)", t->name, ctl, host, guest,
              ULL(qual), ULL(t->qual), rule);
        break;
    }
    CHECK(strstr(rule, t->rule) != NULL, "%s: failed rule \"%s\", want \"%s\"", t->name, rule, t->rule);
}

/* Rows that need other capabilities than Bochs'. */
static void test_other_caps(void)
{
    static struct vmcs12 v;
    struct vmx_msrs m = bochs();
    struct nested_caps c;
    uint64_t qual;

    m.procbased &= ~((uint64_t)CPU_BASED_MONITOR_TRAP_FLAG << 32); /* no MTF: type 7 reserved */
    nested_caps_init(&c, &m);
    valid64(&v);
    vmcs12_set(&v, INFO, V(INTR_TYPE_OTHER, 0));
    CHECK(nested_check_controls(&v, &c, PHYS_BITS) == VMXERR_ENTRY_INVALID_CONTROL &&
          strstr(nested_check_last_rule(), "type 7 (other event) needs monitor trap flag"), "no MTF: %s",
          nested_check_last_rule());

    m = bochs();
    m.misc &= ~(1ull << 6); /* no HLT activity state */
    nested_caps_init(&c, &m);
    valid64(&v);
    CHECK(nested_check_guest(&v, &c, PHYS_BITS, &link, &qual) == 0, "active without HLT support");
    vmcs12_set(&v, GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_HLT);
    CHECK(nested_check_guest(&v, &c, PHYS_BITS, &link, &qual) == EXIT_REASON_INVALID_STATE && qual == 0 &&
          strstr(nested_check_last_rule(), "activity state not supported"), "no HLT: %s", nested_check_last_rule());

    m = bochs();
    m.misc &= ~(0x1ffull << 16); /* no CR3 targets */
    nested_caps_init(&c, &m);
    valid64(&v);
    vmcs12_set(&v, CR3_TARGET_COUNT, 1);
    CHECK(nested_check_controls(&v, &c, PHYS_BITS) == VMXERR_ENTRY_INVALID_CONTROL &&
          strstr(nested_check_last_rule(), "CR3-target count"), "0 CR3 targets: %s", nested_check_last_rule());

    /* Hardware that would let CR0.PE/PG vary (it never does): the rules behind them. */
    m = bochs();
    m.cr0_fixed0 = CR0_NE;
    nested_caps_init(&c, &m);
    valid64(&v);
    vmcs12_set(&v, GUEST_CR0, vmcs12_get(&v, GUEST_CR0) & ~CR0_PE);
    CHECK(nested_check_guest(&v, &c, PHYS_BITS, &link, &qual) == EXIT_REASON_INVALID_STATE &&
          strstr(nested_check_last_rule(), "guest CR0.PG requires CR0.PE"), "PG without PE: %s",
          nested_check_last_rule());
    vmcs12_set(&v, GUEST_CR0, vmcs12_get(&v, GUEST_CR0) & ~CR0_PG);
    CHECK(nested_check_guest(&v, &c, PHYS_BITS, &link, &qual) == EXIT_REASON_INVALID_STATE &&
          strstr(nested_check_last_rule(), "IA-32e mode guest requires CR0.PG"), "IA-32e without PG: %s",
          nested_check_last_rule());

    /* A CPU with SGX and RTM (CPUID.(7,0):EBX[2], [11]; Bochs has neither): bits 4 and 16. */
    m = bochs();
    m.cpuid7_ebx = 1u << 2 | 1u << 11;
    nested_caps_init(&c, &m);
    valid64(&v);
    vmcs12_set(&v, INTR, 0x10);
    vmcs12_set(&v, PDE, 1u << 16 | 1u << 12);
    CHECK(nested_check_guest(&v, &c, PHYS_BITS, &link, &qual) == 0, "enclave interruption, RTM with SGX and RTM: %s",
          nested_check_last_rule());
    vmcs12_set(&v, INTR, 0x10 | GUEST_INTR_MOV_SS);
    CHECK(nested_check_guest(&v, &c, PHYS_BITS, &link, &qual) == EXIT_REASON_INVALID_STATE, "with SGX, MOV-SS still refused");

    /* 26.3.1.5: the link pointer's memory must hold the revision identifier, bit 31 clear
     * without VMCS shadowing (hv does not offer it); 0 is what hv's memory reads as. */
    static const struct { uint32_t rev; const char *rule; } lr[] = {
        {VMCS12_REVISION + 1, "bits 30:0 there must be the VMCS revision identifier"},
        {0, "bits 30:0 there must be the VMCS revision identifier"},
        {VMCS12_REVISION | 0x80000000u, "bit 31 there (shadow VMCS) must equal VMCS shadowing"},
    };
    for (unsigned i = 0; i < sizeof(lr) / sizeof(lr[0]); i++) {
        struct nested_link l = {CURRENT_VMCS, lr[i].rev};
        valid64(&v);
        vmcs12_set(&v, VMCS_LINK_POINTER, 0x1000);
        CHECK(nested_check_guest(&v, &caps, PHYS_BITS, &l, &qual) == EXIT_REASON_INVALID_STATE &&
                  qual == ENTRY_FAIL_VMCS_LINK_PTR && strstr(nested_check_last_rule(), lr[i].rule),
              "link pointer to revision %#x: qual %llu, %s", lr[i].rev, ULL(qual), nested_check_last_rule());
    }
    valid64(&v);
    struct nested_link bad = {CURRENT_VMCS, 0};
    CHECK(nested_check_guest(&v, &caps, PHYS_BITS, &bad, &qual) == 0, "link pointer all 1s: the memory is not read");

    /* A narrower physical-address width. */
    valid64(&v);
    vmcs12_set(&v, MSR_BITMAP, 1ull << 36);
    CHECK(nested_check_controls(&v, &caps, 40) == 0 && nested_check_controls(&v, &caps, 36) != 0, "phys_bits");
}

/* nested_check_entry_rip (a fast VMRESUME that changed L2's RIP alone) gives the full guest
 * checks' answer for any RIP: 64-bit, 32-bit and virtual-8086 L2s. */
static void test_entry_rip(void)
{
    static struct vmcs12 v;
    static const uint64_t rips[] = {0x1000, 0xffffffffull, 0x100000000ull, 0x00007ffffffff000ull, NONCANON,
                                    0xffff800000000000ull, 0xfffffffffffff000ull, 0x8000000000000000ull};
    void (*setups[])(struct vmcs12 *) = {valid64, valid32, valid_v86};
    const char *names[] = {"64-bit", "32-bit", "virtual-8086"};
    for (unsigned s = 0; s < 3; s++) {
        for (unsigned i = 0; i < sizeof(rips) / sizeof(rips[0]); i++) {
            uint64_t qual = 0;
            setups[s](&v);
            vmcs12_set(&v, GUEST_RIP, rips[i]);
            int full = nested_check_guest(&v, &caps, PHYS_BITS, &link, &qual);
            char rule_full[128];
            snprintf(rule_full, sizeof(rule_full), "%s", nested_check_last_rule());
            int rip = nested_check_entry_rip(&v);
            CHECK((full == 0) == (rip == 0) && (full == 0 || (qual == 0 && !strcmp(rule_full, nested_check_last_rule()))),
                  "%s L2, RIP %#llx: full checks %d (%s), RIP rule %d (%s)", names[s], ULL(rips[i]), full, rule_full,
                  rip, nested_check_last_rule());
        }
    }
}

int main(void)
{
    struct vmx_msrs m = bochs();
    nested_caps_init(&caps, &m);
    unsigned n = sizeof(cases) / sizeof(cases[0]), rules = 0;
    for (unsigned i = 0; i < n; i++) {
        run_case(&cases[i]);
        rules += cases[i].fn != PASS;
    }
    test_other_caps();
    test_entry_rip();
    printf("%u table rows (%u failing, %u passing)\n", n, rules, n - rules);
    return test_summary();
}
