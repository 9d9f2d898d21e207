/* hv's log ring through HV_HC_LOG_READ (docs/hypercalls.md): the whole ring read back, 24
 * bytes a call, as a guest without a serial port would. */
#include "payload.h"
#include "../../hv/hypercall.h"

static UINT64 log_read(UINT64 pos, UINT64 w[3], UINT64 *first, UINT64 *head)
{
    UINT64 a = HV_HC_LOG_READ, b = pos, c = 0, d = 0, si = 0, di = 0;
    __asm__ volatile("vmcall" : "+a"(a), "+b"(b), "+c"(c), "+d"(d), "+S"(si), "+D"(di) : : "memory");
    w[0] = b, w[1] = c, w[2] = d;
    *first = si, *head = di;
    return a;
}

static int contains(const char *s, UINTN n, const char *w)
{
    for (UINTN i = 0; i < n; i++) {
        UINTN j = 0;
        while (w[j] && i + j < n && s[i + j] == w[j])
            j++;
        if (!w[j])
            return 1;
    }
    return 0;
}

void check_log_ring(void)
{
    static char buf[128 * 1024];
    UINT64 pos = 0, first, head, start = 0, w[3], calls = 0;
    UINTN n = 0;
    for (;;) {
        UINT64 k = log_read(pos, w, &first, &head);
        calls++;
        if ((INT64)k < 0) {
            out("log ring: HV_HC_LOG_READ failed: %lld", (long long)k);
            return;
        }
        if (calls == 1)
            start = first;
        if (!k || k > 24 || n + k > sizeof(buf))
            break;
        CopyMem(buf + n, w, k);
        n += k;
        pos = first + k;
    }
    UINTN lines = 0, firstlen = 0;
    for (UINTN i = 0; i < n; i++)
        lines += buf[i] == '\n';
    while (firstlen < n && firstlen < 60 && buf[firstlen] != '\n')
        firstlen++;
    char fl[64];
    CopyMem(fl, buf, firstlen);
    fl[firstlen] = 0;
    out("log ring: %llu bytes from position %llu to %llu in %llu calls, %llu lines; first: \"%s\"",
        (unsigned long long)n, (unsigned long long)start, (unsigned long long)head, (unsigned long long)calls,
        (unsigned long long)lines, fl);
    out("log ring: has the VMXON line: %s; whole lines: %s", contains(buf, n, ": cpu0: VMXON ok") ? "yes" : "no",
        n && buf[n - 1] == '\n' ? "yes" : "no");
}
