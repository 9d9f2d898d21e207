/* "l1: " lines on COM1 (no libc here), status strings, power-off. */
#include "l1.h"
#include "../../lib/serial.h"

struct buf {
    char s[200];
    UINTN n;
};

static void put(struct buf *b, char c)
{
    if (b->n < sizeof(b->s) - 1) /* keep room for the '\n' */
        b->s[b->n++] = c;
}

static void put_num(struct buf *b, u64 v, unsigned base, int neg)
{
    char tmp[24];
    int i = 0;
    if (neg)
        put(b, '-');
    do {
        tmp[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (i)
        put(b, tmp[--i]);
}

void out(const char *fmt, ...)
{
    struct buf b = {.n = 0};
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    for (const char *p = "l1: "; *p; p++)
        put(&b, *p);
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(&b, *f);
            continue;
        }
        f++;
        if (*f == 's') {
            for (const char *s = __builtin_va_arg(ap, const char *); *s; s++)
                put(&b, *s);
        } else if (*f == 'c') {
            put(&b, (char)__builtin_va_arg(ap, int));
        } else if (*f == 'u' || *f == 'x') {
            put_num(&b, __builtin_va_arg(ap, unsigned int), *f == 'u' ? 10 : 16, 0);
        } else if (*f == 'd') {
            int v = __builtin_va_arg(ap, int);
            put_num(&b, v < 0 ? -(u64)v : (u64)v, 10, v < 0);
        } else if (f[0] == 'l' && f[1] == 'l' && (f[2] == 'u' || f[2] == 'x')) {
            put_num(&b, __builtin_va_arg(ap, unsigned long long), f[2] == 'u' ? 10 : 16, 0);
            f += 2;
        } else {
            put(&b, '?'); /* unsupported conversion: visible, not silent */
            if (!*f)
                break;
        }
    }
    __builtin_va_end(ap);
    b.s[b.n++] = '\n';
    serial_write(b.s, b.n);
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
