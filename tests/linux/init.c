/*
 * /init of the test-linux initramfs: reports how many CPUs Linux brought up and
 * powers off (S5 through the fixture's ACPI tables ends Bochs). Static: the initramfs
 * holds nothing else but /kvmtest and KVM's modules. Lines start with "init: " for the
 * test's assertions. With "hvtest=kvm" on the kernel command line (test-kvm) it first
 * loads KVM's modules, prints kvm_intel's parameters and runs /kvmtest. "init: tsc N" is
 * the TSC at /init's start (tests/linux/bench-kvm.sh).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <termios.h>
#include <unistd.h>
#include "hvcall.h"

static int con = -1;
/* test-kvm: /dev/kmsg, so that a line is one kernel log record and kernel messages
 * (KVM's warnings) cannot land in the middle of it on the console. */
static int kmsg = -1;

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
    int fd = kmsg >= 0 ? kmsg : con >= 0 ? con : 1;
    if (write(fd, buf, n) < 0)
        return;
    if (fd == kmsg)
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

/* The kernel command line has WORD as a whole word. */
static int cmdline_has(const char *word)
{
    char buf[2048];
    int fd = open("/proc/cmdline", O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    size_t w = strlen(word);
    for (char *p = buf; (p = strstr(p, word)); p += w)
        if ((p == buf || p[-1] == ' ') && (p[w] == ' ' || p[w] == '\n' || !p[w]))
            return 1;
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* test-kvm: no modules.dep, so load KVM's modules in dependency order. */
static void run_kvm(void)
{
    static const char *const mods[] = {"irqbypass.ko", "kvm.ko", "kvm-intel.ko"};
    if (mount("sysfs", "/sys", "sysfs", 0, NULL) != 0)
        say("init: mount /sys failed");
    /* /dev/kvm appears in devtmpfs when kvm registers its misc device. */
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0 && errno != EBUSY)
        say("init: mount devtmpfs failed (errno %d)", errno);
    /* The kernel limits /dev/kmsg writers to 10 lines in 5 s unless printk.devkmsg=on. */
    kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
    if (kmsg < 0)
        say("init: open /dev/kmsg failed (errno %d): lines may interleave with the kernel's", errno);
    for (unsigned i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/lib/modules/%s", mods[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) != 0)
            say("init: loading %s failed (errno %d)", mods[i], errno);
        else
            say("init: loaded %s", mods[i]);
        if (fd >= 0)
            close(fd);
    }
    struct dirent **ents;
    const char *dir = "/sys/module/kvm_intel/parameters";
    int n = scandir(dir, &ents, NULL, by_name);
    if (n < 0)
        say("kvmtest: no kvm_intel parameters (no %s)", dir);
    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.') {
            char path[320], val[128] = "<unreadable>";
            snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
            int fd = open(path, O_RDONLY);
            ssize_t len = fd >= 0 ? read(fd, val, sizeof(val) - 1) : -1;
            if (len >= 0) {
                val[len] = 0;
                val[strcspn(val, "\n")] = 0;
            }
            if (fd >= 0)
                close(fd);
            say("kvmtest: param %s=%s", ents[i]->d_name, val);
        }
        free(ents[i]);
    }
    if (n >= 0)
        free(ents);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = kmsg >= 0 ? kmsg : con >= 0 ? con : 1;
        dup2(fd, 1);
        dup2(fd, 2);
        execl("/kvmtest", "kvmtest", (char *)NULL);
        say("init: exec /kvmtest failed (errno %d)", errno);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        say("init: running /kvmtest failed (errno %d)", errno);
    else if (WIFSIGNALED(st))
        say("init: /kvmtest killed by signal %d", WTERMSIG(st));
    else
        say("init: /kvmtest exit status %d", WEXITSTATUS(st));
}

int main(void)
{
    /* The initramfs holds a /dev/console node; fall back to devtmpfs if it is missing. */
    con = open("/dev/console", O_WRONLY | O_NOCTTY);
    if (con < 0 && mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) == 0)
        con = open("/dev/console", O_WRONLY | O_NOCTTY);
    uint64_t t0 = tsc(); /* bench-kvm: Linux's boot to here, in TSC ticks */
    say("init: running");
    say("init: tsc %llu", (unsigned long long)t0);
    /* bench-kvm: hv's exit counts at this point (test_hooks=on only; else nothing). */
    if (hv_user_call(HV_HC_PRINT_STATS, NULL) == 0)
        say("init: asked hv for its exit statistics");
    if (mount("proc", "/proc", "proc", 0, NULL) != 0)
        say("init: mount /proc failed");
    int cpus = count_processors();
    say("init: cpus online %d (sysconf %ld)", cpus, sysconf(_SC_NPROCESSORS_ONLN));
    if (cmdline_has("hvtest=kvm"))
        run_kvm();
    say("init: powering off");
    sync();
    reboot(RB_POWER_OFF);
    say("init: reboot(RB_POWER_OFF) returned");
    for (;;)
        pause(); /* init must not exit: the kernel would panic */
}
