#include "serial.h"
#include "x86.h"

static uint16_t com;

void serial_init(uint16_t port)
{
    /* Let a previous owner's bytes (boot/ before the core) leave before the FIFO is reset. */
    for (unsigned i = 0; port && i < 100000 && !(inb(port + 5) & 0x40); i++)
        cpu_relax();
    com = port;
    if (!com)
        return;
    outb(com + 1, 0x00); /* no interrupts: hv never takes the UART's IRQ from the guest */
    outb(com + 3, 0x80); /* DLAB */
    outb(com + 0, 0x01); /* divisor 1: 115200 baud */
    outb(com + 1, 0x00);
    outb(com + 3, 0x03); /* 8N1 */
    outb(com + 2, 0xc7); /* FIFO on, cleared */
    outb(com + 4, 0x03); /* DTR, RTS */
}

uint16_t serial_port(void) { return com; }

static void put(char c)
{
    /* LSR bit 5: transmit holding register empty. Bounded so a missing UART cannot hang hv. */
    for (unsigned i = 0; i < 100000 && !(inb(com + 5) & 0x20); i++)
        cpu_relax();
    outb(com, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
    if (!com)
        return;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            put('\r');
        put(s[i]);
    }
}
