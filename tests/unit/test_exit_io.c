/*
 * Host tests for hv/exit_io.c: port I/O that exits to hv (the PM1a control port of hv's own
 * bitmap; every I/O of an L2, which vmcs02 sends to hv) gets the architectural result: IN
 * and OUT performed by hv, string instructions run natively for one step with I/O exiting
 * off (never a fatal error), the step over at the next exit of any kind.
 */
#include <string.h>
#include "exits_harness.h"
#include "lib/x86.h"
#include "vmx/vmx.h"
#include "vmx/vmx_bits.h"

#define PM1A 0xb004
#define PROC01 (CPU_BASED_USE_IO_BITMAPS | CPU_BASED_USE_MSR_BITMAPS | CPU_BASED_ACTIVATE_SECONDARY)
#define PROC02 (CPU_BASED_UNCOND_IO_EXITING | CPU_BASED_USE_MSR_BITMAPS | CPU_BASED_ACTIVATE_SECONDARY)

/* An I/O exit: exit qualification per SDM Table 28-5. */
static void io_exit(uint16_t port, unsigned size, bool in, bool string, bool rep, uint32_t proc)
{
    setup(EXIT_REASON_IO_INSTRUCTION);
    hv.pm1a_cnt = PM1A;
    fake_vmcs_set(EXIT_QUALIFICATION, (uint64_t)(size - 1) | (in ? 8u : 0) | (string ? 16u : 0) | (rep ? 32u : 0) |
                                          ((uint64_t)port << 16));
    fake_vmcs_set(CPU_BASED_VM_EXEC_CONTROL, proc);
}

/* hv/exit_ept.c is linked for the MTF rules of steps (step_restore_mtf); no EPT here. */
enum vmx_status invept(uint64_t type, uint64_t eptp) { return VMX_OK; }
void hv_inject_page_fault(struct regcache *rc, uint64_t cr2, uint32_t error) {}
uint64_t hv_text_checksum(void) { return 0; }

static struct vmcs12 io_vmcs12;

static void as_l2(uint32_t proc12)
{
    memset(&io_vmcs12, 0, sizeof(io_vmcs12));
    vmcs12_set(&io_vmcs12, CPU_BASED_VM_EXEC_CONTROL, proc12);
    v.nested.cache = &io_vmcs12;
    v.nested.guest_mode = true;
    v.nested.vmxon = true;
    l2_exit_result = false; /* nested_l2_exit: L1's live bitmaps do not want it */
}

static void check_step_on(const char *test, uint32_t proc)
{
    uint32_t p = (uint32_t)fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL);
    CHECK(v.io_step && (p & CPU_BASED_MONITOR_TRAP_FLAG) &&
              !(p & (CPU_BASED_UNCOND_IO_EXITING | CPU_BASED_USE_IO_BITMAPS)) &&
              (p & ~(CPU_BASED_MONITOR_TRAP_FLAG | CPU_BASED_UNCOND_IO_EXITING | CPU_BASED_USE_IO_BITMAPS)) ==
                  (proc & ~(CPU_BASED_UNCOND_IO_EXITING | CPU_BASED_USE_IO_BITMAPS)),
          "%s: step %d, controls %#x (before %#x)", test, v.io_step, p, proc);
    check_rip_unchanged(test);
    CHECK(nport_ops == 0, "%s: hv touched a port itself (%u)", test, nport_ops);
}

/* The next exit after the step: I/O exiting and MTF as they were. */
static bool next_exit(uint32_t reason)
{
    fake_vmcs_set(VM_EXIT_REASON, reason);
    fake_vmcs_set(EXIT_QUALIFICATION, 0);
    v.rc.regs[HV_REG_RAX] = 0; /* a CPUID leaf hv passes on */
    return run();
}

static void test_string_io(void)
{
    /* L1: OUTSW onto the PM1a control port (hv's bitmap): a step, not a fatal error; hv
     * prints its statistics first, as for any possible power-off. */
    io_exit(PM1A, 2, false, true, false, PROC01);
    run_ok("L1 OUTS to PM1a");
    check_step_on("L1 OUTS to PM1a", PROC01);
    CHECK(test_log_contains("OUTS") && test_log_contains("stats:"), "no statistics before a possible power-off");
    CHECK(!next_exit(EXIT_REASON_MONITOR_TRAP_FLAG), "the step's MTF exit");
    CHECK(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) == PROC01 && !v.io_step, "after the step: controls %#llx",
          ULL(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL)));
    CHECK(mtf_calls == 0, "the step's MTF exit reached handle_mtf");

    /* REP INSD whose range wraps past 0xffff: the CPU exits whatever the bitmaps say; hv steps. */
    io_exit(0xfffe, 4, true, true, true, PROC01);
    run_ok("REP INS wrapping");
    check_step_on("REP INS wrapping", PROC01);
    /* The step ends at an exit that is not its MTF one (here CPUID): controls back first. */
    CHECK(!next_exit(EXIT_REASON_CPUID), "CPUID after the step");
    CHECK(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) == PROC01 && !v.io_step, "step not over at CPUID: %#llx",
          ULL(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL)));

    /* A failed VM entry ends it too: no exit will. */
    io_exit(0x60, 1, true, true, false, PROC01);
    run_ok("INS before a failed entry");
    fake_vmcs_set(VM_INSTRUCTION_ERROR, 7);
    as_l2(0); /* a refused vmcs02: back to L1 */
    vmresume_failed(&v);
    CHECK(!v.io_step && !(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_MONITOR_TRAP_FLAG),
          "step left on after a failed entry");
    v.nested.guest_mode = false;
}

static void test_l2_io(void)
{
    /* L2's OUT to a port L1 does not intercept (now): hv performs it, on L2's RAX. */
    io_exit(0x80, 1, false, false, false, PROC02);
    as_l2(0);
    v.rc.regs[HV_REG_RAX] = 0x1234;
    run_ok("L2 OUT");
    CHECK(nport_ops == 1 && port_ops[0].port == 0x80 && !port_ops[0].in && port_ops[0].size == 1 &&
              port_ops[0].val == 0x34, "L2 OUT: %u ops, port %#x val %#x", nport_ops, port_ops[0].port, port_ops[0].val);
    check_rip_advanced("L2 OUT");
    CHECK(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) == PROC02, "controls changed");

    /* L2's IN AX keeps RAX's upper bits. */
    io_exit(0x71, 2, true, false, false, PROC02);
    as_l2(0);
    v.rc.regs[HV_REG_RAX] = 0xffffffff00000000ull;
    port_in_value = 0xbeef;
    run_ok("L2 IN");
    CHECK(v.rc.regs[HV_REG_RAX] == 0xffffffff0000beefull, "L2 IN: rax %#llx", ULL(v.rc.regs[HV_REG_RAX]));

    /* L2's string I/O: a step in vmcs02; L1 asked for MTF itself, so the MTF exit after the
     * step is L1's (it goes on to nested/), with MTF kept on. */
    io_exit(0x3f8, 1, false, true, true, PROC02 | CPU_BASED_MONITOR_TRAP_FLAG);
    as_l2(CPU_BASED_MONITOR_TRAP_FLAG);
    run_ok("L2 REP OUTSB");
    CHECK(v.io_step && !(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED_UNCOND_IO_EXITING), "no step for L2");
    l2_exit_result = true; /* the MTF exit is L1's */
    l2_exit_calls = 0;
    l2_exit_saw_step = false;
    CHECK(!next_exit(EXIT_REASON_MONITOR_TRAP_FLAG), "MTF after L2's step");
    CHECK(l2_exit_calls == 1 && !l2_exit_saw_step, "L1's MTF exit: reflected %d time(s), step still on: %d",
          l2_exit_calls, l2_exit_saw_step);
    CHECK(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL) == (PROC02 | CPU_BASED_MONITOR_TRAP_FLAG),
          "vmcs02 controls after the step %#llx", ULL(fake_vmcs_get(CPU_BASED_VM_EXEC_CONTROL)));
    v.nested.guest_mode = v.nested.vmxon = false;
}

int main(void)
{
    test_log_capture();
    test_string_io();
    test_l2_io();
    return test_summary();
}
