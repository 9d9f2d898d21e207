/*
 * Bench mode (`make bench`, tests/boot/bench.sh): the cost of one L2 CPUID exit handled
 * by L1, in Bochs TSC ticks (about one per instruction: path lengths, not wall time).
 * L2 (asm.asm l2_bench) executes CPUID leaf 0 in a loop; L1's exit handler is a dedicated
 * assembly loop (asm.asm bench_rt), so no C code is measured: VMREAD exit reason, VMREAD
 * instruction length, VMREAD GUEST_RIP, VMWRITE GUEST_RIP + length, VMRESUME. The same
 * handler without the VM entry (bench_handler) is the baseline: what L1's four VMX
 * instructions cost by themselves (on hv, without VMCS shadowing, each one exits).
 * bench_split then splits the round trip at L2's own RDTSC: VM entry half, exit half.
 * Under hv (CPUID 0x40000000 signature), VMCALL HV_HC_GET_EXITS around each window gives
 * hv's L0 exits for it. bench_kvm is bench_rt with KVM's hot-path fields read and written
 * each round (exit qualification, IDT-vectoring and interruption info, L2's RSP, RFLAGS and
 * interruptibility, the event injection, TPR threshold, HOST_CR3, HOST_RSP). No preemption timer here: L2 exits on every CPUID anyway.
 */
#include "l1.h"
#include "../../hv/hypercall.h"

#define CR4_VMXE (1ull << 13)
enum { N = 1000, RUNS = 5 };

static void cpuid(u32 leaf, u32 r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

/* "12.34" of v / N, without floating point. */
static const char *hundredths(u64 v)
{
    static char bufs[2][32];
    static unsigned k;
    char *s = bufs[k++ & 1], d[24];
    u64 x = v * 100 / N;
    int i = 0, j = 0;
    u64 w = x / 100;
    do {
        d[j++] = (char)('0' + w % 10);
        w /= 10;
    } while (w);
    while (j)
        s[i++] = d[--j];
    s[i++] = '.';
    s[i++] = (char)('0' + x / 10 % 10);
    s[i++] = (char)('0' + x % 10);
    s[i] = 0;
    return s;
}

static BOOLEAN bad(const char *what, u64 t)
{
    if (t == BENCH_UNEXPECTED)
        out("bench: %s: unexpected exit reason 0x%x", what, bench_reason);
    else if (t == BENCH_FAILED)
        out("bench: %s: VMRESUME failed: %s", what, st_str(ST(ST_VALID, (int)vr(INSN_ERROR))));
    else
        return FALSE;
    return TRUE;
}

void s_bench(void)
{
    u32 r[4];
    cpuid(HV_CPUID_LEAF_BASE, r);
    const u32 hvhv = 0x76687668; /* "hvhv" */
    u64 hv = r[1] == hvhv && r[2] == hvhv && r[3] == hvhv;
    out("bench: %s; L1's exit handler is an assembly loop (asm.asm bench_rt)",
        hv ? "hv's CPUID signature present (L1 runs on hv)" : "no hv signature (bare Bochs VMX)");

    *(u32 *)m.vmxon = cap.revision;
    write_cr4((cr4_orig | cap.cr4_fixed0) & cap.cr4_fixed1); /* SDM A.8 */
    int st = vmxon_(PA(m.vmxon));
    if (st != ST_OK) {
        out("bench: vmxon: %s", st_str(st));
        return;
    }
    in_vmx = TRUE;

    vmcs_init(0, l2_bench);
    vw(PIN_CTLS, adj(PIN_EXT_INT, cap.pin)); /* vmcs_init's watchdog timer off */
    struct exit e;
    l2_run(&e); /* VMLAUNCH: L2's first CPUID */
    if (e.st != ST_OK || e.reason != R_CPUID) {
        pr_exit("bench: first exit", &e, F_LEN);
        return;
    }
    l2_skip(&e);

    u64 best = ~0ull, base = ~0ull, ex_rt = 0, ex_h = 0;
    for (int run = 0; run < RUNS; run++) {
        u64 x = 0, t = bench_rt(N, hv, &x);
        reload_tables(); /* a VM exit leaves GDTR/IDTR limits at 0xffff */
        vw(H_RIP, PA(vmx_exit_landing));
        if (bad("round trips", t))
            return;
        if (t < best) {
            best = t;
            ex_rt = x;
        }
        u64 rip = vr(G_RIP);
        t = bench_handler(N, hv, &x);
        vw(G_RIP, rip);
        if (bad("handler alone", t))
            return;
        if (t < base) {
            base = t;
            ex_h = x;
        }
    }
    /* KVM's field pattern (asm.asm bench_kvm): the same round trip, L1 also reading and
     * writing the fields KVM touches on every exit. */
    u64 kbest = ~0ull, ex_k = 0;
    for (int run = 0; run < RUNS; run++) {
        u64 x = 0, t = bench_kvm(N, hv, &x);
        reload_tables();
        vw(H_RIP, PA(vmx_exit_landing));
        if (bad("KVM pattern", t))
            return;
        if (t < kbest) {
            kbest = t;
            ex_k = x;
        }
    }
    /* The two halves, L2 reading the TSC as well (a few more instructions per trip). */
    u64 sum[2] = {0, 0};
    vw(G_RIP, PA(l2_bench_tsc));
    u64 t = bench_split(N, sum);
    reload_tables();
    vw(H_RIP, PA(vmx_exit_landing));
    if (bad("split", t))
        return;
    out("bench: %u round trips, %s cycles per L2 CPUID round trip", (unsigned)N, hundredths(best));
    out("bench: L1's handler alone (same loop, no VM entry): %s cycles per iteration", hundredths(base));
    out("bench: KVM's field pattern: %s cycles per L2 CPUID round trip", hundredths(kbest));
    out("bench: split: L1's VMRESUME to L2 %s cycles, L2's CPUID to L1's handler %s cycles", hundredths(sum[0]),
        hundredths(sum[1]));
    if (hv) {
        /* Each count includes the exit of the second VMCALL itself. */
        ex_rt--;
        ex_h--;
        out("bench: hv counted %llu L0 exits, %s per round trip", ex_rt, hundredths(ex_rt));
        out("bench: hv counted %llu L0 exits in the handler alone, %s per iteration", ex_h, hundredths(ex_h));
        ex_k--;
        out("bench: hv counted %llu L0 exits with KVM's field pattern, %s per round trip", ex_k, hundredths(ex_k));
    }
}
