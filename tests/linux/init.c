/*
 * /init of the test-linux initramfs: reports how many CPUs Linux brought up and
 * powers off (S5 through the fixture's ACPI tables ends Bochs). Static: the initramfs
 * holds nothing else. Lines start with "init: " for the test's assertions.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <termios.h>
#include <unistd.h>

static int con = -1;

static void say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    /* fd 1 too: if /dev/console failed, the kernel's console may still be fd 1. */
    int fd = con >= 0 ? con : 1;
    if (write(fd, buf, n) < 0)
        return;
    /* The UART sends from a buffer by interrupts: wait, so power-off cannot cut a line
     * and the kernel's own messages interleave less. */
    tcdrain(fd);
}

static int count_processors(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "processor", 9))
            n++;
    fclose(f);
    return n;
}

int main(void)
{
    /* The initramfs holds a /dev/console node; fall back to devtmpfs if it is missing. */
    con = open("/dev/console", O_WRONLY | O_NOCTTY);
    if (con < 0 && mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) == 0)
        con = open("/dev/console", O_WRONLY | O_NOCTTY);
    say("init: running");
    if (mount("proc", "/proc", "proc", 0, NULL) != 0)
        say("init: mount /proc failed");
    int cpus = count_processors();
    say("init: cpus online %d (sysconf %ld)", cpus, sysconf(_SC_NPROCESSORS_ONLN));
    say("init: powering off");
    sync();
    reboot(RB_POWER_OFF);
    say("init: reboot(RB_POWER_OFF) returned");
    for (;;)
        pause(); /* init must not exit: the kernel would panic */
}
