/* "l1: " lines on COM1 (no libc here), status strings, power-off. */
#include "l1.h"
#include "../../boot/log.h"
#include "../../lib/serial.h"

void out(const char *fmt, ...)
{
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    bline("l1: ", fmt, ap); /* boot/log.c's formatter: one for hv.efi and its test apps */
    __builtin_va_end(ap);
}

void outhv(const char *fmt, ...)
{
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    bline("l1hv: ", fmt, ap);
    __builtin_va_end(ap);
}

void outcap(const char *fmt, ...)
{
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    bline("l1cap: ", fmt, ap);
    __builtin_va_end(ap);
}

static const char *exc_name(unsigned v)
{
    static const char *n[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO",
                              "#TS", "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM"};
    return v < sizeof(n) / sizeof(n[0]) ? n[v] : "#exc";
}

/* Rotating buffers so one out() can hold several statuses. */
const char *st_str(int st)
{
    static char bufs[4][24];
    static unsigned k;
    char *s = bufs[k++ & 3];
    switch (ST_KIND(st)) {
    case ST_OK:
        return "ok";
    case ST_INVALID:
        return "VMfailInvalid";
    case ST_EXC:
        return exc_name(ST_NUM(st));
    case ST_VALID: {
        const char *p = "VMfailValid(";
        int i = 0, n = ST_NUM(st);
        while (*p)
            s[i++] = *p++;
        char d[8];
        int j = 0;
        do {
            d[j++] = (char)('0' + n % 10);
            n /= 10;
        } while (n);
        while (j)
            s[i++] = d[--j];
        s[i++] = ')';
        s[i] = 0;
        return s;
    }
    }
    return "unknown-status";
}

void power_off(void)
{
    uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, EFI_SUCCESS, 0, NULL);
    out("ERROR: ResetSystem returned");
    for (;;)
        __asm__ volatile("cli; hlt");
}
