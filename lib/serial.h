/* 16550 UART output by polling: Bochs drops bytes written while the FIFO is full. */
#ifndef LIB_SERIAL_H
#define LIB_SERIAL_H
#include <stddef.h>
#include <stdint.h>
void serial_init(uint16_t port);            /* 115200 8N1; port 0 disables output */
void serial_write(const char *s, size_t n); /* '\n' becomes "\r\n" */
uint16_t serial_port(void);
#endif
