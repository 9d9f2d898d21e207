/*
 * libFuzzer target: arbitrary vmcs12 contents through nested VM-Enter (the entry
 * checks and vmcs02 construction), on a fake VMCS. The input is a list of 9-byte
 * edits (field slot, value) applied to a vmcs12 that passes every check, so the
 * fuzzer reaches vmcs02 construction instead of dying at the first check; an input
 * starting with 0xff is taken as raw vmcs12 bytes instead. Whatever L1 writes, vmcs02 must
 * never take host state from L1, never point the CPU at memory L1 chose (bitmaps, MSR
 * lists, VMCS link), always run L2 on EPT01, and always carry vmcs12's GUEST_CR3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fake_vmcs.h"
#include "vmcs12_samples.h"
#include "lib/log.h"
#include "nested/checks.h"
#include "nested/ept02.h"
#include "nested/nested_int.h"
#include "vmx/vmx.h"
#include "vmx/vmx_bits.h"

void hv_inject_exception(struct regcache *rc, uint8_t v, bool e, uint32_t c) {}
void hv_inject_page_fault(struct regcache *rc, uint64_t cr2, uint32_t e) {}
/* L1's memory: one host buffer stands in for it (host address = "guest-physical"). */
static uint8_t l1_mem[5 * 4096] __attribute__((aligned(4096)));
#define L1_MEM ((uint64_t)(uintptr_t)l1_mem)
bool hv_gpa_is_ram(uint64_t gpa, uint64_t len)
{
    return gpa >= L1_MEM && len <= sizeof(l1_mem) && gpa - L1_MEM <= sizeof(l1_mem) - len;
}
void *hv_alloc_page(void) /* zeroed, as hv's page_alloc */
{
    void *p = aligned_alloc(4096, 4096);
    if (p)
        memset(p, 0, 4096);
    return p;
}
int hv_rdmsr(uint32_t m, uint64_t *v) { *v = 0; return 0; }
int hv_wrmsr(uint32_t m, uint64_t v) { return 0; }

static const struct vmx_msrs *const hw = &bochs_skylake_x; /* tests/unit/vmcs12_samples.c */
/* For a hard failure, say which check the input got past last. */
static struct nested_caps caps;
static struct regcache rc;
static struct nested_state ns;
static struct nested_vcpu nv;
static bool launch_pending;
static unsigned long entered; /* inputs that reached vmcs02: printed at exit */
static void report(void) { fprintf(stderr, "fuzz_vmenter: %lu inputs built a vmcs02\n", entered); }
static uint8_t hv_msr_bm[4096];
#define EPTP01 (0x1234000ull | 0x1e)

static void setup_once(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    atexit(report);
    nested_caps_init(&caps, hw);
    nv = (struct nested_vcpu){.rc = &rc, .n = &ns, .caps = &caps, .hw = hw, .phys_bits = 48, .cr0_mask = 0x20,
                              .cr4_mask = 0x2000, .msr_bitmap01 = hv_msr_bm,
                              .eptp = EPTP01, .launch_pending = &launch_pending};
    nested_vcpu_init(&nv); /* reads hv's host fields from the fake VMCS */
    for (int i = 0; i < NESTED_NR_HOST_FIELDS; i++)
        ns.host_fields[i] = 0xabc000 + (uint64_t)i; /* recognisable hv values */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    fake_vmcs_reset();
    regcache_init(&rc, true);
    ns.vmxon = true;
    ns.guest_mode = false;
    ns.current_ptr = 0x100000;
    ns.vmcs02_for = ~0ull;
    if (size && data[0] == 0xff) {
        memset(ns.cache, 0, sizeof(*ns.cache));
        memcpy(ns.cache, data + 1, size - 1 < sizeof(*ns.cache) ? size - 1 : sizeof(*ns.cache));
    } else {
        bool ept = size && data[0] == 0xfe; /* L1 enables EPT (+ unrestricted guest): EPT02 */
        if (ept)
            data++, size--;
        valid64(ns.cache);
        if (ept) {
            vmcs12_set(ns.cache, SECONDARY_VM_EXEC_CONTROL,
                       vmcs12_get(ns.cache, SECONDARY_VM_EXEC_CONTROL) | SECONDARY_EPT | SECONDARY_UNRESTRICTED_GUEST);
            vmcs12_vmwrite_feat(ns.cache, EPT_POINTER, (L1_MEM + 4 * 4096) | 0x1e, true, VMCS12_FEAT_EPT);
        }
        /* Bitmaps and MSR lists in "L1 memory"; the lists load SYSENTER_CS (a VMCS field)
         * and KERNEL_GS_BASE (a real MSR). */
        vmcs12_set(ns.cache, IO_BITMAP_A, L1_MEM);
        vmcs12_set(ns.cache, IO_BITMAP_B, L1_MEM + 4096);
        vmcs12_set(ns.cache, MSR_BITMAP, L1_MEM + 2 * 4096);
        vmcs12_set(ns.cache, VM_ENTRY_MSR_LOAD_ADDR, L1_MEM + 3 * 4096);
        vmcs12_set(ns.cache, VM_EXIT_MSR_STORE_ADDR, L1_MEM + 3 * 4096 + 64);
        vmcs12_set(ns.cache, VM_EXIT_MSR_LOAD_ADDR, L1_MEM + 3 * 4096 + 128);
        uint32_t *list = (uint32_t *)(l1_mem + 3 * 4096);
        list[0] = 0x174, list[4] = 0xc0000102;
        for (size_t off = 0; off + 9 <= size; off += 9) {
            uint64_t val;
            memcpy(&val, data + off + 1, 8);
            ns.cache->fields[data[off] % VMCS12_NR_FIELDS] = val;
        }
    }
    ns.cache->launch_state = 0;
    fake_vmcs_set(GUEST_SS_AR_BYTES, 0); /* L1 at CPL 0, no MOV-SS blocking */
    nested_vmenter(&nv, true);
    regcache_flush(&rc); /* as vmexit_handler does before the VM entry */
    if (!ns.guest_mode) {
        if (getenv("FUZZ_DEBUG")) /* why a seed is refused: the rule, or the exit reason */
            fprintf(stderr, "refused: %s; exit reason 0x%llx qual 0x%llx\n", nested_check_last_rule(),
                    (unsigned long long)vmcs12_get(ns.cache, VM_EXIT_REASON),
                    (unsigned long long)vmcs12_get(ns.cache, EXIT_QUALIFICATION));
        return 0; /* refused: VMfail or VM-entry failure, both fine */
    }
    entered++;
    ns.guest_mode = false;
    static const uint32_t host[NESTED_NR_HOST_FIELDS] = {
        HOST_ES_SELECTOR, HOST_CS_SELECTOR, HOST_SS_SELECTOR, HOST_DS_SELECTOR, HOST_FS_SELECTOR,
        HOST_GS_SELECTOR, HOST_TR_SELECTOR, HOST_IA32_PAT, HOST_IA32_EFER, HOST_IA32_SYSENTER_CS, HOST_CR0,
        HOST_CR3, HOST_CR4, HOST_FS_BASE, HOST_GS_BASE, HOST_TR_BASE, HOST_GDTR_BASE, HOST_IDTR_BASE,
        HOST_IA32_SYSENTER_ESP, HOST_IA32_SYSENTER_EIP, HOST_RSP, HOST_RIP,
    };
    for (int i = 0; i < NESTED_NR_HOST_FIELDS; i++)
        if (fake_vmcs_get(host[i]) != (0xabc000 + (uint64_t)i) && VMCS_FIELD_WIDTH(host[i]) != VMCS_WIDTH_16)
            abort(); /* host state not hv's */
    /* L2 runs on EPT01, or on this vCPU's EPT02 when vmcs12 enables EPT: never on a table
     * L1 chose. Unrestricted guest only when vmcs12 asks for it (and has EPT). */
    uint64_t eptp02 = fake_vmcs_get(EPT_POINTER);
    uint32_t p2_12 = (uint32_t)vmcs12_get(ns.cache, SECONDARY_VM_EXEC_CONTROL);
    bool ept12 = (vmcs12_get(ns.cache, CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_ACTIVATE_SECONDARY) &&
                 (p2_12 & SECONDARY_EPT);
    if (!(fake_vmcs_get(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_EPT))
        abort();
    if (ept12 ? !ns.ept02 || eptp02 != ns.ept02->eptp : eptp02 != EPTP01)
        abort(); /* L2 not on hv's EPT01 / EPT02 */
    if ((fake_vmcs_get(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_UNRESTRICTED_GUEST) &&
        !(ept12 && (p2_12 & SECONDARY_UNRESTRICTED_GUEST)))
        abort();
    uint64_t msr_bm = fake_vmcs_get(MSR_BITMAP);
    /* hv's merged MSR bitmap, never a page L1 chose; every I/O instruction exits to hv, which
     * asks L1's bitmaps at the exit (no I/O bitmap in vmcs02 at all). */
    uint32_t proc02 = (uint32_t)fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL);
    bool io_ok = (proc02 & CPU_BASED_UNCOND_IO_EXITING) && !(proc02 & CPU_BASED_USE_IO_BITMAPS);
    if ((msr_bm && msr_bm != (uint64_t)(uintptr_t)ns.msr_bitmap02) || !io_ok)
        abort(); /* the CPU would read a bitmap L1 chose */
    if (fake_vmcs_get(VMCS_LINK_POINTER) != ~0ull || fake_vmcs_get(VM_ENTRY_MSR_LOAD_COUNT) ||
        fake_vmcs_get(VM_EXIT_MSR_LOAD_COUNT) || fake_vmcs_get(VM_EXIT_MSR_STORE_COUNT))
        abort(); /* the CPU would follow an L1 pointer */
    if (fake_vmcs_get(GUEST_CR3) != vmcs12_get(ns.cache, GUEST_CR3))
        abort(); /* the GUEST_CR3 rule */
    if (fake_vmcs_get(SECONDARY_VM_EXEC_CONTROL) & SECONDARY_SHADOW_VMCS)
        abort();
    if (!(fake_vmcs_get(GUEST_CR0) & 0x20) || !(fake_vmcs_get(GUEST_CR4) & 0x2000))
        abort(); /* VMX's fixed bits (CR0.NE, CR4.VMXE) stay set in the real registers */
    return 0;
}
