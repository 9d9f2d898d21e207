/*
 * /kvmtest of the test-linux initramfs (test-kvm): runs small guests through /dev/kvm, so
 * Linux's kvm_intel is an L1 hypervisor (under hv) or runs on Bochs's VMX (bare). Every
 * result is one stable line "kvmtest: NAME: EXIT EXIT ... " listing the guest's exits to
 * user space in order; test-kvm.sh compares the lines of the two runs and checks them.
 * Guests: real mode (OUT, HLT), long mode (OUT, IN, MMIO write and read, HLT), an
 * interrupt injected with KVM_INTERRUPT (user-space interrupt controller: no
 * KVM_CREATE_IRQCHIP, so HLT exits to us too) at once or after an interrupt window, and two vCPUs on two host CPUs at once
 * (a ping-pong through guest memory, which needs both running).
 * Then the benchmark (tests/linux/bench-kvm.sh; its lines start with "kvmbench: " and are
 * not compared): I/O round trips and a loop without exits, timed with the TSC.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "hvcall.h"

#define MEM_SIZE 0x200000ul /* guest RAM: GPA 0 .. 2 MiB, one memory slot */
#define MMIO_GPA 0x300000ul /* no memory slot there: accesses exit as KVM_EXIT_MMIO */
#define MAX_EXITS 64

static int kvm_fd = -1;
static int failures;

static void out_line(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    /* One write: /init makes fd 1 /dev/kmsg, where a write is one log record. */
    if (write(1, buf, n) < 0)
        return;
}

#define FAIL(...) (failures++, out_line("kvmtest: ERROR: " __VA_ARGS__))

/* ---- guests (GNU as; each copied into guest RAM at the address its test names) ---- */
extern const uint8_t rm_start[], rm_end[], irq_start[], irq_end[], irqw_start[], irqw_end[], lm_start[], lm_end[];
extern const uint8_t smp0_start[], smp0_end[], smp1_start[], smp1_end[];
__asm__(".pushsection .rodata\n"
        ".code16\n"
        /* Real mode at 0:0x1000: OUT 0..4 to port 0x10, then HLT. */
        "rm_start: xor %ax, %ax\n"
        "  mov $5, %cx\n"
        "1: out %al, $0x10\n"
        "  inc %al\n"
        "  loop 1b\n"
        "  hlt\n"
        "rm_end:\n"
        /* Real mode at 0:0x1000: IVT entry 0x20 -> irq_handler, STI, OUT 0x12 (the test
         * injects vector 0x20 there), HLT; the handler OUTs the IP it will return to. */
        "irq_start: xor %ax, %ax\n"
        "  mov %ax, %ds\n"
        "  movw $(irq_handler - irq_start + 0x1000), (0x80)\n"
        "  movw $0, (0x82)\n"
        "  sti\n"
        "  nop\n" /* out of STI's interrupt shadow before the exit */
        "  out %al, $0x12\n"
        "  hlt\n"
        "  out %al, $0x13\n"
        "  hlt\n"
        "irq_handler: mov %sp, %bp\n"
        "  mov (%bp), %ax\n"
        "  out %ax, $0x11\n"
        "  iret\n"
        "irq_end:\n"
        /* As irq_start, but the OUT to port 0x12 comes with IF=0: the test asks for an
         * interrupt window, which opens after STI and the instruction after it. */
        "irqw_start: xor %ax, %ax\n"
        "  mov %ax, %ds\n"
        "  movw $(irqw_handler - irqw_start + 0x1000), (0x80)\n"
        "  movw $0, (0x82)\n"
        "  cli\n"
        "  out %al, $0x12\n"
        "  sti\n"
        "  nop\n"
        "  hlt\n"
        "  out %al, $0x13\n"
        "  hlt\n"
        "irqw_handler: mov %sp, %bp\n"
        "  mov (%bp), %ax\n"
        "  out %ax, $0x11\n"
        "  iret\n"
        "irqw_end:\n"
        /* Two vCPUs, real mode, vCPU 0 at 0x1000, vCPU 1 at 0x1100: 100 rounds of ping-pong
         * through the word at 0x600 (vCPU 0 writes odd values, vCPU 1 even ones). */
        "smp0_start: xor %ax, %ax\n"
        "  mov %ax, %ds\n"
        "  mov $100, %cx\n"
        "1: inc %ax\n"
        "  mov %ax, (0x600)\n"
        "  inc %ax\n"
        "2: pause\n"
        "  cmp (0x600), %ax\n"
        "  jne 2b\n"
        "  loop 1b\n"
        "  out %ax, $0x20\n"
        "  hlt\n"
        "smp0_end:\n"
        "smp1_start: xor %ax, %ax\n"
        "  mov %ax, %ds\n"
        "  mov $100, %cx\n"
        "1: inc %ax\n"
        "2: pause\n"
        "  cmp (0x600), %ax\n"
        "  jne 2b\n"
        "  inc %ax\n"
        "  mov %ax, (0x600)\n"
        "  loop 1b\n"
        "  out %ax, $0x21\n"
        "  hlt\n"
        "smp1_end:\n"
        ".code64\n"
        /* Long mode at 0x10000: OUT dword, IN dword, MMIO write of what IN read, MMIO
         * qword read, OUT of both halves of what it read, HLT. */
        "lm_start: mov $0x12345678, %eax\n"
        "  out %eax, $0x10\n"
        "  in $0x11, %eax\n"
        "  movl %eax, 0x300000\n"
        "  movq 0x300008, %rax\n"
        "  out %eax, $0x10\n"
        "  shr $32, %rax\n"
        "  out %eax, $0x10\n"
        "  hlt\n"
        "lm_end:\n"
        ".popsection\n");

/* ---- VM and vCPU ---- */
struct vm {
    int fd;
    uint8_t *mem;
};
struct vcpu {
    int fd;
    struct kvm_run *run;
    int run_size;
    char log[MAX_EXITS * 32]; /* the exits, as the result line lists them */
    size_t len;
    int exits;
};

static int vm_create(struct vm *vm)
{
    vm->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (vm->fd < 0)
        return FAIL("KVM_CREATE_VM: %s", strerror(errno)), -1;
    /* Real mode without unrestricted guest needs a TSS for vm86 (Intel only). */
    if (ioctl(vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
        return FAIL("KVM_SET_TSS_ADDR: %s", strerror(errno)), -1;
    vm->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (vm->mem == MAP_FAILED)
        return FAIL("mmap guest RAM: %s", strerror(errno)), -1;
    struct kvm_userspace_memory_region r = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)vm->mem};
    if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return FAIL("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno)), -1;
    return 0;
}

/* The kvm_run mapping holds the vCPU, and so the VM, alive after close (and a new VM's
 * debugfs directory "PID-FD" would then clash with the old one's). */
static void vcpu_destroy(struct vcpu *c)
{
    munmap(c->run, c->run_size);
    close(c->fd);
}

static void vm_destroy(struct vm *vm)
{
    munmap(vm->mem, MEM_SIZE);
    close(vm->fd);
}

static int vcpu_create(struct vm *vm, struct vcpu *c, int id)
{
    memset(c, 0, sizeof(*c));
    c->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
    if (c->fd < 0)
        return FAIL("KVM_CREATE_VCPU %d: %s", id, strerror(errno)), -1;
    int sz = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    c->run_size = sz;
    c->run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (c->run == MAP_FAILED)
        return FAIL("mmap kvm_run: %s", strerror(errno)), -1;
    /* The CPUID KVM supports (long mode needs LM in the guest's CPUID). */
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[100];
    } cpuid = {.h.nent = 100};
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0 || ioctl(c->fd, KVM_SET_CPUID2, &cpuid) < 0)
        return FAIL("CPUID: %s", strerror(errno)), -1;
    return 0;
}

static void note(struct vcpu *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->log + c->len, sizeof(c->log) - c->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->len = c->len + n < sizeof(c->log) ? c->len + n : sizeof(c->log) - 1;
}

static int set_real_mode(struct vcpu *c, uint64_t rip)
{
    struct kvm_sregs s;
    if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
        return FAIL("KVM_GET_SREGS: %s", strerror(errno)), -1;
    struct kvm_segment *segs[] = {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss};
    for (unsigned i = 0; i < 6; i++)
        segs[i]->base = 0, segs[i]->selector = 0;
    if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
        return FAIL("KVM_SET_SREGS: %s", strerror(errno)), -1;
    struct kvm_regs r = {.rip = rip, .rsp = 0x8000, .rflags = 2};
    if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
        return FAIL("KVM_SET_REGS: %s", strerror(errno)), -1;
    return 0;
}

/* Long mode with 2 MiB pages identity-mapping 0..4 MiB (RAM and MMIO_GPA); flat segments. */
static int set_long_mode(struct vm *vm, struct vcpu *c, uint64_t rip)
{
    uint64_t *pml4 = (uint64_t *)(vm->mem + 0x2000), *pdpt = (uint64_t *)(vm->mem + 0x3000),
             *pd = (uint64_t *)(vm->mem + 0x4000);
    pml4[0] = 0x3000 | 3;
    pdpt[0] = 0x4000 | 3;
    pd[0] = 0x000000 | 0x83; /* P, RW, PS */
    pd[1] = 0x200000 | 0x83;
    struct kvm_sregs s;
    if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
        return FAIL("KVM_GET_SREGS: %s", strerror(errno)), -1;
    struct kvm_segment code = {.base = 0, .limit = 0xffffffff, .selector = 8, .type = 11, .present = 1,
                               .s = 1, .l = 1, .g = 1};
    struct kvm_segment data = {.base = 0, .limit = 0xffffffff, .selector = 16, .type = 3, .present = 1,
                               .s = 1, .db = 1, .g = 1};
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.cr3 = 0x2000;
    s.cr4 = 0x20;                /* PAE */
    s.cr0 = 0x80050033;          /* PG, WP, NE, ET, MP, PE */
    s.efer = 0x500;              /* LMA, LME */
    if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
        return FAIL("KVM_SET_SREGS (long mode): %s", strerror(errno)), -1;
    struct kvm_regs r = {.rip = rip, .rsp = 0x8000, .rflags = 2};
    if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
        return FAIL("KVM_SET_REGS: %s", strerror(errno)), -1;
    return 0;
}

static uint64_t le_value(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* Values IN and MMIO reads get: fixed, so the guests' later OUTs are known. */
#define IN_VALUE 0xcafef00dul
#define MMIO_VALUE 0x1122334455667788ull

/* Runs the vCPU until HLT or MAX_EXITS, logging every exit; on_io (if set) sees I/O exits
 * after they are logged. Returns 0 at HLT. */
static int vcpu_run(struct vcpu *c, void (*on_io)(struct vcpu *))
{
    while (c->exits < MAX_EXITS) {
        if (ioctl(c->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR)
                continue;
            note(c, " KVM_RUN:%s", strerror(errno));
            return -1;
        }
        struct kvm_run *r = c->run;
        c->exits++;
        switch (r->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *d = (uint8_t *)r + r->io.data_offset;
            if (r->io.direction == KVM_EXIT_IO_OUT) {
                note(c, " out:0x%x/%u=0x%llx", r->io.port, r->io.size,
                     (unsigned long long)le_value(d, r->io.size));
            } else {
                note(c, " in:0x%x/%u", r->io.port, r->io.size);
                for (unsigned i = 0; i < r->io.size; i++)
                    d[i] = (uint8_t)(IN_VALUE >> (8 * i));
            }
            if (on_io)
                on_io(c);
            break;
        }
        case KVM_EXIT_MMIO:
            if (r->mmio.is_write) {
                note(c, " mmio-w:0x%llx/%u=0x%llx", (unsigned long long)r->mmio.phys_addr, r->mmio.len,
                     (unsigned long long)le_value(r->mmio.data, r->mmio.len));
            } else {
                note(c, " mmio-r:0x%llx/%u", (unsigned long long)r->mmio.phys_addr, r->mmio.len);
                for (unsigned i = 0; i < r->mmio.len && i < 8; i++)
                    r->mmio.data[i] = (uint8_t)(MMIO_VALUE >> (8 * i));
            }
            break;
        case KVM_EXIT_HLT: {
            struct kvm_regs regs;
            ioctl(c->fd, KVM_GET_REGS, &regs);
            note(c, " hlt(rip=0x%llx)", (unsigned long long)regs.rip);
            return 0;
        }
        case KVM_EXIT_IRQ_WINDOW_OPEN:
            note(c, " irq-window");
            if (on_io)
                on_io(c);
            break;
        case KVM_EXIT_FAIL_ENTRY:
            note(c, " fail-entry:0x%llx", (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
            return -1;
        case KVM_EXIT_INTERNAL_ERROR:
            note(c, " internal-error:%u", r->internal.suberror);
            return -1;
        case KVM_EXIT_SHUTDOWN:
            note(c, " shutdown");
            return -1;
        default:
            note(c, " exit:%u", r->exit_reason);
            return -1;
        }
    }
    note(c, " too-many-exits");
    return -1;
}

static void report(const char *name, struct vcpu *c, int rc, const char *extra)
{
    out_line("kvmtest: %s:%s%s", name, c->log, extra ? extra : "");
    if (rc)
        failures++;
}

/* ---- tests ---- */
static void test_guest(const char *name, const uint8_t *start, const uint8_t *end, uint64_t at, int long_mode)
{
    struct vm vm;
    struct vcpu c;
    if (vm_create(&vm) || vcpu_create(&vm, &c, 0))
        return;
    memcpy(vm.mem + at, start, end - start);
    if (long_mode ? set_long_mode(&vm, &c, at) : set_real_mode(&c, at))
        return;
    report(name, &c, vcpu_run(&c, NULL), NULL);
    vcpu_destroy(&c);
    vm_destroy(&vm);
}

/* At the OUT to port 0x12 the guest has IF=1 and no interrupt shadow: inject vector 0x20
 * with KVM_INTERRUPT (or, if KVM says it cannot take one yet, ask for an interrupt window). */
static void irq_on_io(struct vcpu *c)
{
    struct kvm_run *r = c->run;
    int at_out = r->exit_reason == KVM_EXIT_IO && r->io.port == 0x12;
    if (!at_out && r->exit_reason != KVM_EXIT_IRQ_WINDOW_OPEN)
        return;
    if (!r->ready_for_interrupt_injection || !r->if_flag) {
        note(c, " (not-ready:if=%u)", r->if_flag);
        r->request_interrupt_window = 1;
        return;
    }
    r->request_interrupt_window = 0;
    struct kvm_interrupt irq = {.irq = 0x20};
    if (ioctl(c->fd, KVM_INTERRUPT, &irq) < 0)
        note(c, " KVM_INTERRUPT:%s", strerror(errno));
    else
        note(c, " [KVM_INTERRUPT 0x20]");
}

static void test_irq(const char *name, const uint8_t *start, const uint8_t *end)
{
    struct vm vm;
    struct vcpu c;
    if (vm_create(&vm) || vcpu_create(&vm, &c, 0))
        return;
    memcpy(vm.mem + 0x1000, start, end - start);
    if (set_real_mode(&c, 0x1000))
        return;
    report(name, &c, vcpu_run(&c, irq_on_io), NULL);
    vcpu_destroy(&c);
    vm_destroy(&vm);
}

struct smp_arg {
    struct vcpu *c;
    int cpu, ran_on, rc;
    pthread_barrier_t *start;
};

static void *smp_thread(void *p)
{
    struct smp_arg *a = p;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(a->cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        note(a->c, " setaffinity:%s", strerror(errno));
    pthread_barrier_wait(a->start);
    a->rc = vcpu_run(a->c, NULL);
    a->ran_on = sched_getcpu();
    return NULL;
}

static void test_smp(void)
{
    struct vm vm;
    static struct vcpu c[2];
    if (vm_create(&vm) || vcpu_create(&vm, &c[0], 0) || vcpu_create(&vm, &c[1], 1))
        return;
    memcpy(vm.mem + 0x1000, smp0_start, smp0_end - smp0_start);
    memcpy(vm.mem + 0x1100, smp1_start, smp1_end - smp1_start);
    if (set_real_mode(&c[0], 0x1000) || set_real_mode(&c[1], 0x1100))
        return;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    struct smp_arg a[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        a[i] = (struct smp_arg){.c = &c[i], .cpu = i, .start = &start};
        pthread_create(&t[i], NULL, smp_thread, &a[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        char name[32], extra[32];
        snprintf(name, sizeof(name), "smp vcpu%d", i);
        snprintf(extra, sizeof(extra), " on-cpu%d", a[i].ran_on);
        report(name, &c[i], a[i].rc, extra);
        if (a[i].ran_on != i)
            FAIL("smp: vcpu%d ran on cpu%d", i, a[i].ran_on);
        vcpu_destroy(&c[i]);
    }
    vm_destroy(&vm);
}

/* ---- benchmark: lines "kvmbench: ...", figures only (tests/linux/bench-kvm.sh) ---- */
#define BENCH_IO_WARMUP 50
#define BENCH_IO_ROUNDS 1000
#define BENCH_CPU_ITERS "10000000"
extern const uint8_t bio_start[], bio_end[], bcpu_start[], bcpu_end[];
__asm__(".pushsection .rodata\n"
        ".code16\n"
        /* An OUT to port 0x14 forever: each is one round trip through KVM and kvmtest. */
        "bio_start: out %al, $0x14\n"
        "  jmp bio_start\n"
        "bio_end:\n"
        /* A loop that never exits by itself (2 instructions an iteration), then OUT 0x15. */
        "bcpu_start: mov $" BENCH_CPU_ITERS ", %ecx\n"
        "1: dec %ecx\n"
        "  jnz 1b\n"
        "  out %al, $0x15\n"
        "  hlt\n"
        "bcpu_end:\n"
        ".code64\n"
        ".popsection\n");

/* KVM_RUN until the next exit to us, which must be an OUT to PORT. */
static int bench_out(struct vcpu *c, unsigned port)
{
    while (ioctl(c->fd, KVM_RUN, 0) < 0)
        if (errno != EINTR)
            return FAIL("bench: KVM_RUN: %s", strerror(errno)), -1;
    if (c->run->exit_reason != KVM_EXIT_IO || c->run->io.port != port)
        return FAIL("bench: exit %u (port 0x%x), want an OUT to 0x%x", c->run->exit_reason, c->run->io.port,
                    port), -1;
    return 0;
}

/* hv's exit count of this CPU (hv with test_hooks=on); 0 elsewhere. */
static uint64_t l0_exits(int hv)
{
    uint64_t n = 0;
    if (hv)
        hv_user_call(HV_HC_GET_EXITS, &n);
    return n;
}

/* "; L0 exits N (X per UNIT)" under hv, "" elsewhere. GET_EXITS counts its own exit too. */
static const char *l0_note(char *buf, size_t len, int hv, uint64_t e0, uint64_t e1, double per, const char *unit)
{
    if (!hv)
        return "";
    snprintf(buf, len, "; L0 exits %llu (%.3f per %s)", (unsigned long long)(e1 - e0 - 1), (e1 - e0 - 1) / per,
             unit);
    return buf;
}

static void bench(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(1, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) { /* one CPU: cpu0 */
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        sched_setaffinity(0, sizeof(set), &set);
    }
    uint64_t e0, e1, t0, t1;
    int hv = hv_user_call(HV_HC_GET_EXITS, &e0) == 0;
    char note[96];
    struct vm vm;
    struct vcpu c;
    if (vm_create(&vm) || vcpu_create(&vm, &c, 0))
        return;
    memcpy(vm.mem + 0x1000, bio_start, bio_end - bio_start);
    if (set_real_mode(&c, 0x1000))
        return;
    for (int i = 0; i < BENCH_IO_WARMUP; i++)
        if (bench_out(&c, 0x14))
            return;
    if (hv) /* hv's statistics around the timed loop: bench-kvm.sh takes the difference */
        hv_user_call(HV_HC_PRINT_STATS, NULL);
    e0 = l0_exits(hv);
    t0 = tsc();
    for (int i = 0; i < BENCH_IO_ROUNDS; i++)
        if (bench_out(&c, 0x14))
            return;
    t1 = tsc();
    e1 = l0_exits(hv);
    if (hv)
        hv_user_call(HV_HC_PRINT_STATS, NULL);
    out_line("kvmbench: io: %d round trips on cpu%d, %llu ticks, %.0f ticks per round trip%s", BENCH_IO_ROUNDS,
             sched_getcpu(), (unsigned long long)(t1 - t0), (double)(t1 - t0) / BENCH_IO_ROUNDS,
             l0_note(note, sizeof(note), hv, e0, e1, BENCH_IO_ROUNDS, "round trip"));
    vcpu_destroy(&c);
    vm_destroy(&vm);

    if (vm_create(&vm) || vcpu_create(&vm, &c, 0))
        return;
    memcpy(vm.mem + 0x1000, bcpu_start, bcpu_end - bcpu_start);
    if (set_real_mode(&c, 0x1000))
        return;
    e0 = l0_exits(hv);
    t0 = tsc();
    int rc = bench_out(&c, 0x15);
    t1 = tsc();
    e1 = l0_exits(hv);
    double iters = atof(BENCH_CPU_ITERS);
    if (!rc)
        out_line("kvmbench: cpu: %s iterations on cpu%d, %llu ticks, %.3f ticks per iteration%s", BENCH_CPU_ITERS,
                 sched_getcpu(), (unsigned long long)(t1 - t0), (double)(t1 - t0) / iters,
                 l0_note(note, sizeof(note), hv, e0, e1, iters / 1e6, "million iterations"));
    vcpu_destroy(&c);
    vm_destroy(&vm);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    /* A guest that never exits must not hang the boot: SIGALRM ends us, /init reports it
     * (Bochs's guest time runs slower than wall time). */
    alarm(60);
    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0) {
        FAIL("open /dev/kvm: %s", strerror(errno));
        return 1;
    }
    int api = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
    out_line("kvmtest: api %d", api);
    test_guest("realmode", rm_start, rm_end, 0x1000, 0);
    test_guest("longmode", lm_start, lm_end, 0x10000, 1);
    test_irq("irq", irq_start, irq_end);
    test_irq("irq-window", irqw_start, irqw_end);
    test_smp();
    bench();
    out_line("kvmtest: done, %d error(s)", failures);
    return failures ? 1 : 0;
}
