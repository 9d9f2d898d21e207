/* newlib's system calls (MISSING_SYSCALL_NAMES: no underscores). hv has no files:
 * stdout/stderr go to the serial port, sbrk to hv's region, the rest fail with errno. */
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>
#include "pages.h"
#include "serial.h"
#include "x86.h"

#undef errno
extern int errno;

int write(int fd, const void *buf, size_t n)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    serial_write(buf, n);
    return (int)n;
}

void *sbrk(ptrdiff_t incr)
{
    void *p = sbrk_region(incr);
    if (p == (void *)-1)
        errno = ENOMEM;
    return p;
}

int read(int fd, void *buf, size_t n) { (void)fd; (void)buf; (void)n; errno = EBADF; return -1; }
int close(int fd) { (void)fd; errno = EBADF; return -1; }
long lseek(int fd, long off, int whence) { (void)fd; (void)off; (void)whence; errno = ESPIPE; return -1; }
int fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int isatty(int fd) { return fd <= 2; }
int kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
int getpid(void) { return 1; }

void _exit(int code)
{
    (void)code;
    /* abort() and assert() end here: nothing can be returned to, so stop this CPU. */
    for (;;) {
        cli();
        hlt();
    }
}
