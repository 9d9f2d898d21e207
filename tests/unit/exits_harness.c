/*
 * The harness shared by the exit-handler host tests (test_exits.c, test_exit_cr_init.c):
 * stubs for what cannot run on the host (platform_reset longjmps back to the test, MSR and
 * XSETBV accessors are table-driven fakes, the EPT/MTF/I/O handlers and nested/ only count
 * their calls) and a vCPU that has just taken a VM exit on the fake VMCS. The stubs of
 * hv/exit_ept.c are weak: test_exit_ept links the real file.
 */
#include "exits_harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hv/host.h"
#include "hv/vmcs01.h"
#include "lib/log.h"
#include "lib/x86.h"
#include "nested/ept02.h"

struct hv_global hv;

/* ---- stubs ------------------------------------------------------------------ */

jmp_buf reset_jmp;
bool reset_armed;
int reset_calls;
const char *reset_why;
int dump_calls;

__attribute__((noreturn)) void platform_reset(const char *why)
{
    reset_calls++;
    reset_why = why;
    if (!reset_armed) {
        fprintf(stderr, "FAIL: platform_reset(\"%s\") outside a test run\n", why);
        abort();
    }
    longjmp(reset_jmp, 1);
}

/* The end of a fatal error on the host: back to the test, as platform_reset. */
int halt_calls, stop_others_calls;
__attribute__((noreturn)) void cpu_halt_forever(void)
{
    halt_calls++;
    if (!reset_armed) {
        fprintf(stderr, "FAIL: cpu_halt_forever() outside a test run\n");
        abort();
    }
    longjmp(reset_jmp, 1);
}
void host_stop_other_cpus(void) { stop_others_calls++; }

void vmcs01_dump_guest(struct vcpu *v) { dump_calls++; }
int hw_refused_calls;
uint32_t hw_refused_err;
void nested_hw_refused(struct nested_vcpu *nv, uint32_t err) { hw_refused_calls++, hw_refused_err = err; }
/* EPT12 walks are tested in test_ept02; the CR handlers here never run an L2 on L1's EPT. */
enum ept12_status ept12_walk(const struct ept02 *e, uint64_t l2_gpa, struct ept12_walk *w)
{
    w->status = EPT12_NOT_PRESENT;
    return EPT12_NOT_PRESENT;
}

int ept_calls, mtf_calls, io_calls;
__attribute__((weak)) void handle_ept_violation(struct vcpu *v) { ept_calls++; }
__attribute__((weak)) void handle_mtf(struct vcpu *v) { mtf_calls++; }
__attribute__((weak)) bool hidden_step_exit(struct vcpu *v, uint32_t basic) { return false; }
__attribute__((weak)) bool hidden_step_end(struct vcpu *v) { return false; }
__attribute__((weak)) uint64_t hidden_writes_total(void) { return 0; }
__attribute__((weak)) uint64_t hidden_self_check(struct vcpu *v) { return 0; }
/* nested/gva.c: no guest paging here (test_apic supplies its own). */
__attribute__((weak)) int gva_to_gpa(struct nested_vcpu *nv, uint64_t gva, bool write, uint64_t *gpa, uint32_t *pferr)
{
    return -1;
}
__attribute__((weak)) bool hidden_step_extends(struct vcpu *v, uint32_t basic) { return false; }
__attribute__((weak)) void step_restore_mtf(struct vcpu *v) {}
__attribute__((weak)) bool step_mtf_exit_is_hvs(struct vcpu *v, uint32_t basic) { return false; }
/* hv/exit_io.c is linked by test_exit_io only. */
__attribute__((weak)) void handle_io(struct vcpu *v) { io_calls++; }
__attribute__((weak)) bool io_step_exit(struct vcpu *v, uint32_t basic) { return false; }
__attribute__((weak)) void io_step_end(struct vcpu *v) {}
/* Ports: a log of what hv did on them, and what an IN reads. */
struct port_op port_ops[16];
unsigned nport_ops;
uint32_t port_in_value = 0xa5a5a5a5u;
uint32_t fake_port_in(uint16_t port, unsigned size)
{
    if (nport_ops < 16)
        port_ops[nport_ops++] = (struct port_op){port, size, true, 0};
    return port_in_value & (size == 4 ? ~0u : (1u << (size * 8)) - 1);
}
void fake_port_out(uint16_t port, unsigned size, uint32_t val)
{
    if (nport_ops < 16)
        port_ops[nport_ops++] = (struct port_op){port, size, false, val};
}
/* nested/ is tested on its own (test_vmcs12, test_nested_*: nested_harness.c); here it is stubbed. */
int vmx_insn_calls, l2_exit_calls;
bool l2_exit_result = true;
bool l2_exit_saw_step; /* hv's step over a dropped write was still on when the exit went to nested/ */
bool vmx_insn_enters; /* the stub's VMLAUNCH/VMRESUME enters L2 */
void nested_handle_vmx_insn(struct nested_vcpu *nv, uint32_t reason)
{
    vmx_insn_calls++;
    if (vmx_insn_enters && (reason == EXIT_REASON_VMLAUNCH || reason == EXIT_REASON_VMRESUME))
        v.nested.guest_mode = true;
}
void nested_handle_vmresume(struct nested_vcpu *nv) { nested_handle_vmx_insn(nv, EXIT_REASON_VMRESUME); }
int reflect_init_calls;
bool tpr_exit_pending;
bool nested_tpr_exit_after_entry(const struct nested_vcpu *nv) { (void)nv; return tpr_exit_pending; }
void nested_reflect_init(struct nested_vcpu *nv) { reflect_init_calls++; v.nested.guest_mode = false; }
bool nested_l2_exit(struct nested_vcpu *nv, uint32_t reason)
{
    l2_exit_calls++;
    l2_exit_saw_step |= v.step.active || v.io_step;
    /* As nested/vmexit.c: an EPT violation on EPT01 (no L1 EPT) is hv's. */
    if ((reason & 0xffff) == EXIT_REASON_EPT_VIOLATION && !v.nested.ept12)
        return false;
    return l2_exit_result;
}
int apic_page_write_calls;
bool apic_page_write_result; /* nested/apicv.c's answer: L1's APIC-access page (reflected) or not */
bool nested_l2_apic_page_write(struct nested_vcpu *nv, uint64_t gpa, uint64_t ept_qual)
{
    apic_page_write_calls++;
    return apic_page_write_result;
}
int reflect_nmi_calls;
void nested_reflect_nmi(struct nested_vcpu *nv) { reflect_nmi_calls++; v.nested.guest_mode = false; }
int reflect_exception_calls;
uint32_t reflect_exception_vector, reflect_exception_error;
void nested_reflect_exception(struct nested_vcpu *nv, uint8_t vector, bool has_error, uint32_t error, uint64_t qual)
{
    reflect_exception_calls++, reflect_exception_vector = vector, reflect_exception_error = error;
    v.nested.guest_mode = false;
}
/* Guest memory: the one page a test maps as "RAM" (see test_cr0_pae_loads_pdptrs). */
bool hv_gpa_is_ram(uint64_t gpa, uint64_t len) { return gpa >= 0x10000000 && gpa + len <= 0x10001000; }

/* MSRs the fake "CPU" knows. MTRRCAP is read-only: WRMSR to it faults. */
struct fake_msr msrs[4];
int rdmsr_calls, wrmsr_calls;

static void msrs_reset(void)
{
    msrs[0] = (struct fake_msr){MSR_IA32_APIC_BASE, 0xfee00900ull, false};
    msrs[1] = (struct fake_msr){MSR_IA32_PAT, 0x0007040600070406ull, false};
    msrs[2] = (struct fake_msr){MSR_TEST_KNOWN, 0x123456789abcdef0ull, false};
    msrs[3] = (struct fake_msr){MSR_IA32_MTRRCAP, 0x508ull, true};
    rdmsr_calls = wrmsr_calls = 0;
}

static struct fake_msr *msr_find(uint32_t msr)
{
    for (unsigned i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++)
        if (msrs[i].msr == msr)
            return &msrs[i];
    return NULL;
}

int safe_rdmsr(uint32_t msr, uint64_t *val)
{
    struct fake_msr *m = msr_find(msr);

    rdmsr_calls++;
    if (!m)
        return -1;
    *val = m->val;
    return 0;
}

int safe_wrmsr(uint32_t msr, uint64_t val)
{
    struct fake_msr *m = msr_find(msr);

    wrmsr_calls++;
    if (!m || m->ro)
        return -1;
    m->val = val;
    return 0;
}

bool xsetbv_fails;
int xsetbv_calls;
uint32_t xsetbv_xcr;
uint64_t xsetbv_val;

int safe_xsetbv(uint32_t xcr, uint64_t val)
{
    xsetbv_calls++;
    xsetbv_xcr = xcr;
    xsetbv_val = val;
    return xsetbv_fails ? -1 : 0;
}

/* ---- harness ---------------------------------------------------------------- */


struct vcpu v;

/* A vCPU that has just taken a VM exit with this (full) exit reason. */
void setup(uint32_t reason)
{
    fake_vmcs_reset();
    regcache_warn_reset();
    test_log_clear();
    memset(&v, 0, sizeof(v));
    regcache_init(&v.rc, true);
    memset(&hv, 0, sizeof(hv));
    hv.nested = false;
    cpuid_set_nested(hv.nested); /* as hv/virt.c does */
    hv.msrs.misc = 0x300481e5ull;   /* Bochs: HLT, shutdown, wait-for-SIPI activity states */
    hv.msrs.cr0_fixed0 = 0x80000021; /* Bochs-like */
    hv.msrs.cr0_fixed1 = 0xffffffff;
    hv.msrs.cr4_fixed0 = 0x2000;
    hv.msrs.cr4_fixed1 = 0x3767ff;
    hv.msrs.pinbased = 0x0000007f00000016ull; /* Bochs: NMI exiting and virtual NMIs allowed */
    /* vmcs01's pin-based controls as hv/vmcs01.c sets them */
    fake_vmcs_set(PIN_BASED_VM_EXEC_CONTROL, vmx_adjust_ctls(hv.msrs.pinbased, vmx_virtual_nmi_pin(hv.msrs.pinbased)));
    l2_exit_result = true;
    reflect_nmi_calls = reflect_exception_calls = 0;
    hv.vcpus[0] = &v;
    v.nv.n = &v.nested; /* as vcpu_nested_init does */
    v.nv.caps = &hv.ncaps;
    v.nv.rc = &v.rc;
    hv.nvcpus = 1;
    msrs_reset();
    reset_calls = dump_calls = halt_calls = stop_others_calls = 0;
    reset_why = NULL;
    ept_calls = mtf_calls = io_calls = 0;
    nport_ops = 0;
    l2_exit_saw_step = false;
    xsetbv_fails = false;
    xsetbv_calls = 0;
    xsetbv_xcr = 0;
    xsetbv_val = 0;
    fake_vmcs_set(VM_EXIT_REASON, reason);
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, ILEN);
    fake_vmcs_set(GUEST_RIP, RIP0);
    fake_vmcs_set(GUEST_SS_AR_BYTES, AR_CPL(0));
    fake_vmcs_set(VM_ENTRY_CONTROLS, 0x11ff); /* IA-32e mode guest (bit 9) clear */
}

/* Run vmexit_handler; true if it reached a fatal end (platform_reset or cpu_halt_forever). */
bool run(void)
{
    if (setjmp(reset_jmp) == 0) {
        reset_armed = true;
        struct vcpu *r = vmexit_handler(&v);
        reset_armed = false;
        CHECK(r == &v, "vmexit_handler returned %p, not its vcpu %p", (void *)r, (void *)&v);
        return false;
    }
    reset_armed = false;
    return true;
}

/* Run an exit that must be handled (no reset); check the access accounting. */
void run_ok(const char *test)
{
    bool reset = run();

    CHECK(!reset, "%s: platform_reset(\"%s\") reached", test, reset_why ? reset_why : "?");
    /* Handlers count every VMCS access through vm_read/vm_write or the cache. */
    CHECK(v.rc.vmreads == fake_vmcs_reads && v.rc.vmwrites == fake_vmcs_writes,
          "%s: counted %llu/%llu VMREAD/VMWRITE, fake saw %llu/%llu", test, ULL(v.rc.vmreads),
          ULL(v.rc.vmwrites), ULL(fake_vmcs_reads), ULL(fake_vmcs_writes));
    CHECK(fake_vmcs_ro_writes == 0 && fake_vmcs_bad_fields == 0, "%s: %llu read-only writes, %llu bad fields",
          test, ULL(fake_vmcs_ro_writes), ULL(fake_vmcs_bad_fields));
    CHECK(v.rc.dirty == 0, "%s: registers left dirty after the flush: %#llx", test, ULL(v.rc.dirty));
    /* SDM 26.2.1.1: NMI-window exiting needs virtual NMIs, which need NMI exiting (else the
     * VMRESUME fails with error 7). */
    uint64_t pin = fake_vmcs_get(PIN_BASED_VM_EXEC_CONTROL);
    CHECK(!(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_NMI_WINDOW_EXITING) ||
              ((pin & PIN_BASED_VIRTUAL_NMIS) && (pin & PIN_BASED_NMI_EXITING)),
          "%s: NMI-window exiting with pin-based controls %#llx", test, ULL(pin));
}

void check_rip_advanced(const char *test)
{
    uint64_t rip = fake_vmcs_get(GUEST_RIP);

    CHECK(rip == RIP0 + ILEN, "%s: rip %#llx, want %#llx", test, ULL(rip), ULL(RIP0 + ILEN));
    CHECK(fake_vmcs_write_count(GUEST_RIP) == 1, "%s: GUEST_RIP written %u times", test,
          fake_vmcs_write_count(GUEST_RIP));
}

void check_rip_unchanged(const char *test)
{
    uint64_t rip = fake_vmcs_get(GUEST_RIP);

    CHECK(rip == RIP0, "%s: rip %#llx, want it unchanged at %#llx", test, ULL(rip), ULL(RIP0));
    CHECK(fake_vmcs_write_count(GUEST_RIP) == 0, "%s: GUEST_RIP written %u times", test,
          fake_vmcs_write_count(GUEST_RIP));
}

void check_gp(const char *test)
{
    uint64_t info = fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD);

    CHECK(info == GP_INFO, "%s: entry interruption info %#llx, want #GP %#x", test, ULL(info), GP_INFO);
    CHECK(fake_vmcs_write_count(VM_ENTRY_EXCEPTION_ERROR_CODE) == 1 &&
              fake_vmcs_get(VM_ENTRY_EXCEPTION_ERROR_CODE) == 0,
          "%s: error code written %u times, value %#llx (want once, 0)", test,
          fake_vmcs_write_count(VM_ENTRY_EXCEPTION_ERROR_CODE), ULL(fake_vmcs_get(VM_ENTRY_EXCEPTION_ERROR_CODE)));
    check_rip_unchanged(test);
}

void check_ud(const char *test)
{
    uint64_t info = fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD);

    CHECK(info == UD_INFO, "%s: entry interruption info %#llx, want #UD %#x", test, ULL(info), UD_INFO);
    CHECK(fake_vmcs_write_count(VM_ENTRY_EXCEPTION_ERROR_CODE) == 0, "%s: #UD has no error code, written %u times",
          test, fake_vmcs_write_count(VM_ENTRY_EXCEPTION_ERROR_CODE));
    check_rip_unchanged(test);
}

void check_no_event(const char *test)
{
    CHECK(fake_vmcs_write_count(VM_ENTRY_INTR_INFO_FIELD) == 0, "%s: event injected: %#llx", test,
          ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)));
}

void rdmsr_exit(uint32_t msr)
{
    setup(EXIT_REASON_MSR_READ);
    v.rc.regs[HV_REG_RCX] = msr;
    v.rc.regs[HV_REG_RAX] = 0xaaaaaaaaaaaaaaaaull;
    v.rc.regs[HV_REG_RDX] = 0xbbbbbbbbbbbbbbbbull;
}
