/*
 * Host tests for regcache/: every VMCS access goes through tests/unit/fake_vmcs.c,
 * so the tests can count exactly what a VM-exit cycle would cost.
 */
#include <stdio.h>
#include <string.h>
#include "regcache/regcache.h"
#include "tests/unit/fake_vmcs.h"
#include "tests/unit/test_util.h"

#define ULL(x) ((unsigned long long)(x))

/* A fresh vCPU that has just taken a VM exit. */
static void setup(struct regcache *rc)
{
    fake_vmcs_reset();
    regcache_warn_reset();
    test_log_clear();
    regcache_init(rc, true);
    regcache_reset(rc);
}

/* The cache's own counters must agree with what the fake VMCS saw. */
static void check_counters(const struct regcache *rc, const char *test)
{
    CHECK(rc->vmreads == fake_vmcs_reads, "%s: vmreads %llu vs fake %llu", test,
          ULL(rc->vmreads), ULL(fake_vmcs_reads));
    CHECK(rc->vmwrites == fake_vmcs_writes, "%s: vmwrites %llu vs fake %llu", test,
          ULL(rc->vmwrites), ULL(fake_vmcs_writes));
    CHECK(fake_vmcs_ro_writes == 0 && fake_vmcs_bad_fields == 0,
          "%s: ro writes %llu, bad fields %llu", test, ULL(fake_vmcs_ro_writes),
          ULL(fake_vmcs_bad_fields));
}

static void test_read_twice_one_vmread(void)
{
    struct regcache rc;
    uint64_t a, b;

    setup(&rc);
    fake_vmcs_set(GUEST_RIP, 0xffffffff81000000ull);
    a = reg_rip(&rc);
    b = reg_rip(&rc);
    CHECK(a == 0xffffffff81000000ull && b == a, "rip %#llx then %#llx", ULL(a), ULL(b));
    CHECK(fake_vmcs_read_count(GUEST_RIP) == 1, "GUEST_RIP read %u times",
          fake_vmcs_read_count(GUEST_RIP));
    CHECK(fake_vmcs_reads == 1, "total VMREADs %llu", ULL(fake_vmcs_reads));
    check_counters(&rc, __func__);
}

static void test_cr3_untouched_is_free(void)
{
    struct regcache rc;

    setup(&rc);
    fake_vmcs_set(GUEST_CR3, 0x1000);
    /* Exit cycle with a handler that never touches CR3 (but does other work). */
    regcache_reset(&rc);
    reg_set_rip(&rc, reg_rip(&rc) + 2);
    regcache_flush(&rc);
    CHECK(fake_vmcs_read_count(GUEST_CR3) == 0, "GUEST_CR3 read %u times",
          fake_vmcs_read_count(GUEST_CR3));
    CHECK(fake_vmcs_write_count(GUEST_CR3) == 0, "GUEST_CR3 written %u times",
          fake_vmcs_write_count(GUEST_CR3));
    CHECK(fake_vmcs_writes == 1, "total VMWRITEs %llu (expected RIP only)",
          ULL(fake_vmcs_writes));
    CHECK(fake_vmcs_get(GUEST_CR3) == 0x1000, "GUEST_CR3 now %#llx",
          ULL(fake_vmcs_get(GUEST_CR3)));
    check_counters(&rc, __func__);
}

static void test_cr3_same_value_no_write(void)
{
    struct regcache rc;
    uint64_t cr3;

    setup(&rc);
    fake_vmcs_set(GUEST_CR3, 0x7000);
    cr3 = reg_cr3(&rc);
    reg_set_cr3(&rc, cr3);
    CHECK(!reg_is_dirty(&rc, HV_REG_CR3), "same CR3 marked dirty");
    regcache_flush(&rc);
    CHECK(fake_vmcs_read_count(GUEST_CR3) == 1, "GUEST_CR3 read %u times",
          fake_vmcs_read_count(GUEST_CR3));
    CHECK(fake_vmcs_write_count(GUEST_CR3) == 0, "GUEST_CR3 written %u times",
          fake_vmcs_write_count(GUEST_CR3));
    /* A different value must still go out, exactly once. */
    regcache_reset(&rc);
    reg_set_cr3(&rc, 0x9000);
    regcache_flush(&rc);
    CHECK(fake_vmcs_write_count(GUEST_CR3) == 1 && fake_vmcs_get(GUEST_CR3) == 0x9000,
          "new CR3: %u writes, value %#llx", fake_vmcs_write_count(GUEST_CR3),
          ULL(fake_vmcs_get(GUEST_CR3)));
    check_counters(&rc, __func__);
}

static void test_dirty_written_once(void)
{
    struct regcache rc;

    setup(&rc);
    reg_set_rip(&rc, 0x1111);
    reg_set_rip(&rc, 0x2222); /* last value wins, still one VMWRITE */
    CHECK(reg_is_dirty(&rc, HV_REG_RIP) && reg_is_available(&rc, HV_REG_RIP),
          "RIP avail/dirty after write");
    regcache_flush(&rc);
    CHECK(fake_vmcs_write_count(GUEST_RIP) == 1, "GUEST_RIP written %u times",
          fake_vmcs_write_count(GUEST_RIP));
    CHECK(fake_vmcs_get(GUEST_RIP) == 0x2222, "GUEST_RIP %#llx", ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(!reg_is_dirty(&rc, HV_REG_RIP), "RIP still dirty after flush");
    regcache_flush(&rc);
    CHECK(fake_vmcs_writes == 1, "second flush wrote: total %llu", ULL(fake_vmcs_writes));
    CHECK(fake_vmcs_reads == 0, "writes caused %llu VMREADs", ULL(fake_vmcs_reads));
    check_counters(&rc, __func__);
}

static void test_multiple_dirty(void)
{
    static const struct { enum hv_reg reg; uint32_t field; uint64_t val; } w[] = {
        { HV_REG_RIP, GUEST_RIP, 0x401000 },   { HV_REG_RSP, GUEST_RSP, 0x7ff0 },
        { HV_REG_RFLAGS, GUEST_RFLAGS, 0x246 }, { HV_REG_CR0, GUEST_CR0, 0x80050033 },
        { HV_REG_CR4, GUEST_CR4, 0x3706f0 },   { HV_REG_PDPTR2, GUEST_PDPTR2, 0xabc001 },
    };
    const unsigned n = sizeof(w) / sizeof(w[0]);
    struct regcache rc;

    setup(&rc);
    for (unsigned i = 0; i < n; i++)
        reg_write(&rc, w[i].reg, w[i].val);
    regcache_flush(&rc);
    for (unsigned i = 0; i < n; i++)
        CHECK(fake_vmcs_write_count(w[i].field) == 1 && fake_vmcs_get(w[i].field) == w[i].val,
              "field %#x: %u writes, value %#llx", w[i].field, fake_vmcs_write_count(w[i].field),
              ULL(fake_vmcs_get(w[i].field)));
    CHECK(fake_vmcs_writes == n, "total VMWRITEs %llu, expected %u", ULL(fake_vmcs_writes), n);
    CHECK(rc.dirty == 0, "dirty %#llx after flush", ULL(rc.dirty));
    check_counters(&rc, __func__);
}

static void test_bad_index(void)
{
    const int bad[] = { HV_NR_REGS, -1, 1000 };
    static const char *const helpers[] = {
        "in reg_is_available", "in reg_is_dirty", "in reg_mark_available",
        "in reg_mark_dirty", "in reg_read", "in reg_write",
    };
    struct regcache rc, before;
    char idx[32];

    for (unsigned i = 0; i < 3; i++) {
        enum hv_reg r = (enum hv_reg)bad[i];

        setup(&rc);
        /* Set bits above HV_NR_REGS too, so a bad test of bit 35/63 would return true. */
        rc.avail = ~0ull;
        rc.dirty = ~0ull & ~HV_REG_BIT(HV_REG_RIP);
        before = rc;
        for (int rep = 0; rep < 2; rep++) {
            CHECK(!reg_is_available(&rc, r), "reg_is_available(%d) true", bad[i]);
            CHECK(!reg_is_dirty(&rc, r), "reg_is_dirty(%d) true", bad[i]);
            reg_mark_available(&rc, r);
            reg_mark_dirty(&rc, r);
            CHECK(reg_read(&rc, r) == 0, "reg_read(%d) nonzero", bad[i]);
            reg_write(&rc, r, 0xdead);
        }
        CHECK(!memcmp(rc.regs, before.regs, sizeof(rc.regs)) && rc.avail == before.avail &&
                  rc.dirty == before.dirty,
              "index %d changed state: avail %#llx dirty %#llx", bad[i], ULL(rc.avail),
              ULL(rc.dirty));
        CHECK(fake_vmcs_reads == 0 && fake_vmcs_writes == 0, "index %d touched the VMCS",
              bad[i]);
        snprintf(idx, sizeof(idx), "index %d ", bad[i]);
        CHECK(test_log_contains(idx), "log lacks \"%s\": %s", idx, test_log_text());
        for (unsigned h = 0; h < sizeof(helpers) / sizeof(helpers[0]); h++)
            CHECK(test_log_count(helpers[h]) == 1, "\"%s\" logged %d times", helpers[h],
                  test_log_count(helpers[h]));
    }
    /* Once per helper even across different bad indexes (no warn reset here). */
    test_log_clear();
    CHECK(!reg_is_available(&rc, (enum hv_reg)-1), "reg_is_available(-1) true");
    CHECK(!test_log_contains("bad register index"), "warned twice: %s", test_log_text());
}

static void test_reset_invalidates_exit_info(void)
{
    struct regcache rc;
    uint64_t q;

    setup(&rc);
    fake_vmcs_set(EXIT_QUALIFICATION, 0x31);
    q = reg_exit_qual(&rc);
    q += reg_exit_qual(&rc);
    CHECK(q == 0x62 && fake_vmcs_read_count(EXIT_QUALIFICATION) == 1,
          "first exit: sum %#llx, %u reads", ULL(q), fake_vmcs_read_count(EXIT_QUALIFICATION));
    /* Next exit: hardware wrote a new qualification. */
    fake_vmcs_set(EXIT_QUALIFICATION, 0x44);
    regcache_reset(&rc);
    CHECK(!reg_is_available(&rc, HV_REG_EXIT_QUALIFICATION), "still available after reset");
    q = reg_exit_qual(&rc);
    CHECK(q == 0x44 && fake_vmcs_read_count(EXIT_QUALIFICATION) == 2,
          "second exit: %#llx, %u reads", ULL(q), fake_vmcs_read_count(EXIT_QUALIFICATION));
    check_counters(&rc, __func__);
}

static void test_gprs_need_no_vmread(void)
{
    struct regcache rc;
    bool ok = true;

    setup(&rc);
    for (int r = HV_REG_RAX; r <= HV_REG_R15; r++)
        rc.regs[r] = 0x100 + (uint64_t)r; /* what the exit stub would store */
    fake_vmcs_set(GUEST_RSP, 0x8000);
    regcache_reset(&rc);
    for (int r = HV_REG_RAX; r <= HV_REG_R15; r++) {
        if (r == HV_REG_RSP)
            continue;
        ok &= reg_is_available(&rc, (enum hv_reg)r);
        ok &= reg_read(&rc, (enum hv_reg)r) == 0x100 + (uint64_t)r;
    }
    CHECK(ok, "a stub-saved GPR was unavailable or changed by reset");
    CHECK(fake_vmcs_reads == 0, "GPR reads cost %llu VMREADs", ULL(fake_vmcs_reads));
    CHECK(!reg_is_available(&rc, HV_REG_RSP), "RSP available after reset");
    CHECK(reg_rsp(&rc) == 0x8000 && fake_vmcs_read_count(GUEST_RSP) == 1,
          "RSP %#llx, %u reads", ULL(rc.regs[HV_REG_RSP]), fake_vmcs_read_count(GUEST_RSP));
    /* GPR writes live in regs[] for the stub; flush must not VMWRITE them. */
    reg_write(&rc, HV_REG_RBX, 7);
    regcache_flush(&rc);
    CHECK(rc.regs[HV_REG_RBX] == 7 && fake_vmcs_writes == 0, "RBX write: %llu VMWRITEs",
          ULL(fake_vmcs_writes));
    check_counters(&rc, __func__);
}

static void test_exit_info_dirty(void)
{
    struct regcache rc;

    setup(&rc);
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, 3);
    reg_mark_dirty(&rc, HV_REG_EXIT_QUALIFICATION);
    reg_write(&rc, HV_REG_EXIT_INSTR_LEN, 5);
    regcache_flush(&rc);
    CHECK(fake_vmcs_writes == 0, "read-only fields written %llu times", ULL(fake_vmcs_writes));
    CHECK(fake_vmcs_get(VM_EXIT_INSTRUCTION_LEN) == 3, "instr len changed");
    CHECK(test_log_contains("read-only"), "no warning: %s", test_log_text());
    CHECK(rc.dirty == 0, "dirty %#llx after flush", ULL(rc.dirty));
    /* Warn once only. */
    reg_mark_dirty(&rc, HV_REG_EXIT_INTR_INFO);
    regcache_flush(&rc);
    CHECK(test_log_count("read-only") == 1, "warned %d times", test_log_count("read-only"));
    CHECK(fake_vmcs_writes == 0, "read-only fields written %llu times", ULL(fake_vmcs_writes));
    check_counters(&rc, __func__);
}

static void test_nested_owns_cr3(void)
{
    struct regcache rc;

    setup(&rc);
    fake_vmcs_set(GUEST_CR3, 0x5000);
    rc.guest_cr3_owned_by_nested = true;
    reg_set_cr3(&rc, 0x6000);
    reg_set_rip(&rc, 0x10);
    /* Refused: the cache must never hold a CR3 that reaches neither vmcs02 nor vmcs12 (the
     * seed bug's class); reading CR3 gives what vmcs02 holds. */
    CHECK(reg_cr3(&rc) == 0x5000, "cached CR3 %#llx, vmcs02 holds 0x5000", ULL(rc.regs[HV_REG_CR3]));
    CHECK(!reg_is_dirty(&rc, HV_REG_CR3), "CR3 dirty while nested owns it");
    CHECK(rc.refused_cr3_writes == 1, "refused CR3 writes %llu", ULL(rc.refused_cr3_writes));
    CHECK(test_log_count("nested owns GUEST_CR3") == 1 && test_log_contains("ERROR"), "log: %s", test_log_text());
    regcache_flush(&rc);
    /* Even an explicit dirty mark must not reach vmcs02. */
    reg_mark_dirty(&rc, HV_REG_CR3);
    regcache_flush(&rc);
    CHECK(fake_vmcs_write_count(GUEST_CR3) == 0 && fake_vmcs_get(GUEST_CR3) == 0x5000,
          "GUEST_CR3 written %u times", fake_vmcs_write_count(GUEST_CR3));
    CHECK(fake_vmcs_write_count(GUEST_RIP) == 1, "RIP not flushed alongside");
    reg_set_cr3(&rc, 0x7000);
    CHECK(test_log_count("nested owns GUEST_CR3") == 1, "warned again: %s", test_log_text());
    CHECK(reg_cr3(&rc) == 0x5000 && rc.refused_cr3_writes == 2, "second refused write changed the cache");
    /* Back in L1: the same write goes out again. */
    rc.guest_cr3_owned_by_nested = false;
    regcache_reset(&rc);
    reg_set_cr3(&rc, 0x8000);
    regcache_flush(&rc);
    CHECK(fake_vmcs_write_count(GUEST_CR3) == 1, "L1 CR3 written %u times",
          fake_vmcs_write_count(GUEST_CR3));
    check_counters(&rc, __func__);
}

/* An instruction hv completes for the guest ends blocking by STI and by MOV SS, as the CPU
 * would (SDM 25.4.2 Table 25-3); NMI blocking stays. */
static void test_skip_ends_sti_and_mov_ss_blocking(void)
{
    static const uint64_t states[] = {1, 2, 1 | 8, 2 | 8};
    for (unsigned i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        struct regcache rc;

        setup(&rc);
        fake_vmcs_set(GUEST_RIP, 0x1000);
        fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, 1);
        fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, states[i]);
        reg_skip_instruction(&rc);
        regcache_flush(&rc);
        CHECK(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO) == (states[i] & 8) &&
                  fake_vmcs_write_count(GUEST_INTERRUPTIBILITY_INFO) == 1,
              "interruptibility %#llx after skip: %#llx, written %u times", ULL(states[i]),
              ULL(fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO)), fake_vmcs_write_count(GUEST_INTERRUPTIBILITY_INFO));
        CHECK(fake_vmcs_get(GUEST_RIP) == 0x1001, "rip %#llx", ULL(fake_vmcs_get(GUEST_RIP)));
        check_counters(&rc, __func__);
    }
}

static void test_rflags_and_shadows(void)
{
    const uint64_t raw = 0x202 | X86_EFLAGS_VM | X86_EFLAGS_IOPL;
    struct regcache rc;
    uint64_t v;

    setup(&rc);
    fake_vmcs_set(GUEST_RFLAGS, raw);
    rc.vm86_active = true; /* ignored with unrestricted guest */
    v = reg_rflags(&rc);
    CHECK(v == raw, "unrestricted rflags %#llx", ULL(v));
    rc.unrestricted_guest = false;
    v = reg_rflags(&rc);
    CHECK(v == 0x202, "vm86 rflags %#llx (VM/IOPL must be hidden)", ULL(v));
    reg_set_rflags(&rc, 0x202);
    CHECK(rc.regs[HV_REG_RFLAGS] == (0x202 | X86_EFLAGS_VM | X86_EFLAGS_IOPL),
          "vm86 set_rflags stored %#llx", ULL(rc.regs[HV_REG_RFLAGS]));
    CHECK(fake_vmcs_reads == 1, "rflags read %llu times", ULL(fake_vmcs_reads));

    fake_vmcs_set(GUEST_CR0, 0x80000031);     /* PG NE ET PE */
    v = reg_read_cr0_shadowed(&rc, 0x20, 0);  /* host forces NE, guest thinks 0 */
    CHECK(v == 0x80000011, "shadowed cr0 %#llx", ULL(v));
    check_counters(&rc, __func__);
}

static void test_skip_instruction_and_lost_dirty(void)
{
    struct regcache rc;

    setup(&rc);
    fake_vmcs_set(GUEST_RIP, 0x1000);
    fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, 3);
    reg_skip_instruction(&rc);
    regcache_flush(&rc);
    /* RIP, the instruction length, the interruptibility state (no blocking to end) and
     * RFLAGS (no TF: no single-step trap). */
    CHECK(fake_vmcs_get(GUEST_RIP) == 0x1003 && fake_vmcs_reads == 4 && fake_vmcs_writes == 1,
          "rip %#llx, %llu reads, %llu writes", ULL(fake_vmcs_get(GUEST_RIP)),
          ULL(fake_vmcs_reads), ULL(fake_vmcs_writes));
    /* A write after flush is lost at the next exit: say so. */
    reg_set_rip(&rc, 0x2000);
    regcache_reset(&rc);
    CHECK(test_log_contains("unflushed"), "no lost-write warning: %s", test_log_text());
    CHECK(!reg_is_dirty(&rc, HV_REG_RIP), "RIP dirty after reset");
    check_counters(&rc, __func__);
}

/* RFLAGS.TF: the completed instruction's single-step trap is pending (BS) after the skip,
 * next to what was pending; not with DEBUGCTL.BTF, not without TF. */
static void test_skip_single_step(void)
{
    static const struct { uint64_t rflags, debugctl, bs; } cases[] = {
        {0x102, 0, 1}, {0x102, 2, 0}, {0x002, 0, 0}, {0x302, 1, 1},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct regcache rc;
        setup(&rc);
        fake_vmcs_set(GUEST_RIP, 0x1000);
        fake_vmcs_set(VM_EXIT_INSTRUCTION_LEN, 2);
        fake_vmcs_set(GUEST_RFLAGS, cases[i].rflags);
        fake_vmcs_set(GUEST_IA32_DEBUGCTL, cases[i].debugctl);
        fake_vmcs_set(GUEST_PENDING_DBG_EXCEPTIONS, 1); /* B0 already pending: kept */
        reg_skip_instruction(&rc);
        regcache_flush(&rc);
        CHECK(fake_vmcs_get(GUEST_PENDING_DBG_EXCEPTIONS) == (1 | cases[i].bs << 14),
              "rflags %#llx debugctl %#llx: pending %#llx", ULL(cases[i].rflags), ULL(cases[i].debugctl),
              ULL(fake_vmcs_get(GUEST_PENDING_DBG_EXCEPTIONS)));
        CHECK(fake_vmcs_get(GUEST_RIP) == 0x1002 && fake_vmcs_get(GUEST_RFLAGS) == cases[i].rflags, "rip, rflags kept");
        check_counters(&rc, __func__);
    }
}

/* reg_peek (a reflected exit's reads before the cache is discarded): the cached value, dirty
 * ones included (what hv changed before it made up an exit), else one uncached VMREAD; and
 * reg_write_now: in the VMCS at once, clean, so the flush writes nothing. */
static void test_peek_and_write_now(void)
{
    struct regcache rc;
    setup(&rc);
    fake_vmcs_set(GUEST_RIP, 0x1000);
    fake_vmcs_set(GUEST_RSP, 0x8000);
    reg_write(&rc, HV_REG_RIP, 0x1003); /* hv stepped over an instruction */
    uint64_t reads = fake_vmcs_reads;
    CHECK(reg_peek(&rc, HV_REG_RIP) == 0x1003 && fake_vmcs_reads == reads, "dirty RIP from the cache, no VMREAD");
    CHECK(reg_peek(&rc, HV_REG_RSP) == 0x8000 && fake_vmcs_reads == reads + 1, "RSP: one VMREAD");
    CHECK(!reg_is_available(&rc, HV_REG_RSP), "not cached");
    CHECK(reg_peek(&rc, HV_REG_RAX) == rc.regs[HV_REG_RAX] && fake_vmcs_reads == reads + 1, "a GPR: the stub's value");
    check_counters(&rc, "peek");
    regcache_discard(&rc);
    reg_write_now(&rc, HV_REG_RSP, 0x9000);
    reg_write_now(&rc, HV_REG_RIP, 0x2000);
    CHECK(fake_vmcs_get(GUEST_RSP) == 0x9000 && fake_vmcs_get(GUEST_RIP) == 0x2000, "in the VMCS at once");
    CHECK(reg_is_available(&rc, HV_REG_RIP) && !reg_is_dirty(&rc, HV_REG_RIP) && reg_rip(&rc) == 0x2000, "clean, cached");
    uint64_t writes = fake_vmcs_writes;
    regcache_flush(&rc);
    CHECK(fake_vmcs_writes == writes, "the flush writes nothing");
    rc.guest_cr3_owned_by_nested = true;
    reg_write_now(&rc, HV_REG_CR3, 0x5000);
    CHECK(rc.refused_cr3_writes == 1 && fake_vmcs_writes == writes, "CR3 nested owns: refused");
    check_counters(&rc, "write_now");
}

int main(void)
{
    test_peek_and_write_now();
    test_log_capture();
    test_read_twice_one_vmread();
    test_cr3_untouched_is_free();
    test_cr3_same_value_no_write();
    test_dirty_written_once();
    test_multiple_dirty();
    test_bad_index();
    test_reset_invalidates_exit_info();
    test_gprs_need_no_vmread();
    test_exit_info_dirty();
    test_nested_owns_cr3();
    test_rflags_and_shadows();
    test_skip_instruction_and_lost_dirty();
    test_skip_ends_sti_and_mov_ss_blocking();
    test_skip_single_step();
    return test_summary();
}
