/* Port I/O: hv traps only the ACPI PM1a control port, to see the guest power the
 * machine off (SLP_EN) and print its exit statistics first; the write then goes on. */
#include "../lib/log.h"
#include "../lib/x86.h"
#include "exit.h"

#define SLP_EN (1u << 13)

void io_bitmap_intercept(uint8_t *a, uint8_t *b, uint16_t port)
{
    uint8_t *bm = port < 0x8000 ? a : b;
    bm[(port & 0x7fff) / 8] |= (uint8_t)(1u << (port % 8));
}

void handle_io(struct vcpu *v)
{
    uint64_t q = reg_exit_qual(&v->rc);
    unsigned size = (q & 7) + 1, in = (q >> 3) & 1, string = (q >> 4) & 1;
    uint16_t port = (uint16_t)(q >> 16);
    uint64_t *rax = &v->rc.regs[HV_REG_RAX];
    if (string || (size != 1 && size != 2 && size != 4))
        exit_fatal(v, "string I/O on a port hv traps");
    if (in) {
        uint32_t x = size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
        *rax = size == 4 ? x : (*rax & ~((1ull << (size * 8)) - 1)) | x;
    } else {
        uint32_t x = (uint32_t)*rax;
        /* SLP_EN is bit 13 of the 16-bit register: bit 5 of its high byte. */
        uint32_t val16 = port == hv.pm1a_cnt ? x : port == hv.pm1a_cnt + 1 ? x << 8 : 0;
        if (hv.pm1a_cnt && (val16 & SLP_EN)) {
            log_info("cpu%u: guest enters ACPI sleep state (SLP_TYP %u): power-off or reset", v->id,
                     (val16 >> 10) & 7);
            stats_print_all("guest power-off");
        }
        if (size == 1)
            outb(port, (uint8_t)x);
        else if (size == 2)
            outw(port, (uint16_t)x);
        else
            outl(port, x);
    }
    reg_skip_instruction(&v->rc);
}
