/* Minimal formatted output for "payload: " lines (no libc here). */
#include "payload.h"
#include "../../lib/serial.h"

struct buf {
    char s[160];
    UINTN n;
};

static void put(struct buf *b, char c)
{
    if (b->n < sizeof(b->s) - 1) /* keep room for the '\n' */
        b->s[b->n++] = c;
}

static void put_num(struct buf *b, UINT64 v, unsigned base)
{
    char tmp[24];
    int i = 0;
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
    for (const char *p = "payload: "; *p; p++)
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
        } else if (*f == 'u') {
            put_num(&b, __builtin_va_arg(ap, unsigned int), 10);
        } else if (f[0] == 'l' && f[1] == 'l' && (f[2] == 'u' || f[2] == 'x')) {
            put_num(&b, __builtin_va_arg(ap, unsigned long long), f[2] == 'u' ? 10 : 16);
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
