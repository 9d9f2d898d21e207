/* Port I/O. hv traps the ACPI PM1a control port, to see the guest power the machine off
 * (SLP_EN) and print its exit statistics first, and, while L2 runs, every I/O instruction
 * (vmcs02 has unconditional I/O exiting: nested/ asks L1's live bitmaps first). What is not
 * reflected to L1 happens as the CPU would have done it: IN/OUT hv performs itself; a string
 * instruction (INS/OUTS, REP or not, whatever ports it covers) runs natively for one
 * iteration with I/O exiting off and the monitor trap flag on (an I/O step), ended by the
 * next VM exit of any kind, like hv/exit_ept.c's steps. */
#include "../lib/log.h"
#include "../lib/x86.h"
#include "../vmx/vmx_bits.h"
#include "exit.h"

#define SLP_EN (1u << 13)
#define IO_EXITING (CPU_BASED_UNCOND_IO_EXITING | CPU_BASED_USE_IO_BITMAPS)

void io_bitmap_intercept(uint8_t *a, uint8_t *b, uint16_t port)
{
    uint8_t *bm = port < 0x8000 ? a : b;
    bm[(port & 0x7fff) / 8] |= (uint8_t)(1u << (port % 8));
}

/* Does [port, port + size) cover a byte of the PM1a control register (2 bytes)? */
static bool touches_pm1a(uint32_t port, unsigned size)
{
    return hv.pm1a_cnt && port < (uint32_t)hv.pm1a_cnt + 2 && port + size > hv.pm1a_cnt;
}

static void power_off_seen(struct vcpu *v, int slp_typ)
{
    if (slp_typ < 0)
        log_info("cpu%u: guest writes the ACPI PM1a control port with OUTS: perhaps a power-off", v->id);
    else
        log_info("cpu%u: guest enters ACPI sleep state (SLP_TYP %d): power-off or reset", v->id, slp_typ);
    stats_print_all("guest power-off");
}

static void io_step_begin(struct vcpu *v)
{
    uint32_t proc = (uint32_t)vm_read(v, CPU_BASED_VM_EXEC_CONTROL);
    v->io_step = true;
    v->io_step_ctls = proc & IO_EXITING;
    vm_write(v, CPU_BASED_VM_EXEC_CONTROL, (proc & ~IO_EXITING) | CPU_BASED_MONITOR_TRAP_FLAG);
    v->stats.io_steps++;
}

void io_step_end(struct vcpu *v)
{
    if (!v->io_step)
        return;
    v->io_step = false;
    vm_write(v, CPU_BASED_VM_EXEC_CONTROL, vm_read(v, CPU_BASED_VM_EXEC_CONTROL) | v->io_step_ctls);
    step_restore_mtf(v);
}

bool io_step_exit(struct vcpu *v, uint32_t basic)
{
    if (!v->io_step || hidden_step_extends(v, basic))
        return false; /* none; or the string instruction writes hv's memory: both steps go on */
    io_step_end(v);
    return step_mtf_exit_is_hvs(v, basic);
}

void handle_io(struct vcpu *v)
{
    uint64_t q = reg_exit_qual(&v->rc);
    unsigned size = (q & 7) + 1, in = (q >> 3) & 1, string = (q >> 4) & 1;
    uint16_t port = (uint16_t)(q >> 16);
    uint64_t *rax = &v->rc.regs[HV_REG_RAX];
    if (string) {
        /* hv does not see the data of OUTS: the statistics come first, in case it powers off. */
        if (!in && touches_pm1a(port, size))
            power_off_seen(v, -1);
        io_step_begin(v);
        return;
    }
    if (in) {
        uint32_t x = size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
        *rax = size == 4 ? x : (*rax & ~((1ull << (size * 8)) - 1)) | x;
    } else {
        uint32_t x = (uint32_t)*rax;
        /* SLP_EN is bit 13 of the 16-bit register: bit 5 of its high byte. */
        uint32_t val16 = port == hv.pm1a_cnt ? x : port == hv.pm1a_cnt + 1 ? x << 8 : 0;
        if (hv.pm1a_cnt && (val16 & SLP_EN))
            power_off_seen(v, (int)((val16 >> 10) & 7));
        if (size == 1)
            outb(port, (uint8_t)x);
        else if (size == 2)
            outw(port, (uint16_t)x);
        else
            outl(port, x);
    }
    reg_skip_instruction(&v->rc);
}
