/* Minimal formatted output for "payload: " lines (no libc here). */
#include "payload.h"
#include "../../boot/log.h"

void out(const char *fmt, ...)
{
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    bline("payload: ", fmt, ap); /* boot/log.c's formatter: one for hv.efi and its test apps */
    __builtin_va_end(ap);
}
