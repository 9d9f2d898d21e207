/*
 * Host tests for hv/apic.c and the INIT/SIPI handling of hv/exit_init.c: ICR writes latch
 * INIT and SIPI for their targets, so a SIPI that comes before the target has handled its
 * INIT exit still starts it (once), an INIT while L1 is in VMX root operation waits for
 * VMXOFF, and the xAPIC stores hv decodes are performed and skipped exactly.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "exits_harness.h"
#include "hv/apic.h"
#include "lib/x86.h"
#include "vmx/vmx.h"
#include "vmx/vmx_bits.h"

enum vmx_status invept(uint64_t type, uint64_t eptp) { return VMX_OK; }
void hv_inject_page_fault(struct regcache *rc, uint64_t cr2, uint32_t error) {}
uint64_t hv_text_checksum(void) { return 0; }
/* Guest code at its own (identity) address in the harness's one RAM page. */
int gva_to_gpa(struct nested_vcpu *nv, uint64_t gva, bool write, uint64_t *gpa, uint32_t *pferr)
{
    *gpa = gva;
    return 0;
}

#define RAM 0x10000000ull

static struct vcpu cpu1, cpu2;

static void cpus(void)
{
    memset(&cpu1, 0, sizeof(cpu1));
    memset(&cpu2, 0, sizeof(cpu2));
    v.apic_id = 0, cpu1.apic_id = 1, cpu2.apic_id = 2;
    cpu1.id = 1, cpu2.id = 2;
    hv.vcpus[1] = &cpu1, hv.vcpus[2] = &cpu2;
}

static void test_decode(void)
{
    static const struct {
        uint8_t b[15];
        unsigned n;
        bool lm;
        int reg;
        unsigned len;
        bool xchg;
        const char *what;
    } c[] = {
        {{0x89, 0x11}, 2, true, 2, 2, false, "mov [rcx], edx"},
        {{0x89, 0x04, 0x25, 0x00, 0x03, 0xe0, 0xfe}, 7, true, 0, 7, false, "mov [disp32], eax (SIB)"},
        {{0x44, 0x89, 0x4b, 0x10}, 4, true, 9, 4, false, "mov [rbx+0x10], r9d"},
        {{0x3e, 0x89, 0x90, 0x00, 0x03, 0x00, 0x00}, 7, false, 2, 7, false, "ds: mov [eax+0x300], edx (32-bit)"},
        {{0x87, 0x08}, 2, true, 1, 2, true, "xchg [rax], ecx"},
        {{0x89, 0x54, 0x24, 0x08}, 4, true, 2, 4, false, "mov [rsp+8], edx"},
        {{0xa3, 0x10, 0x03, 0xe0, 0xfe, 0, 0, 0, 0}, 9, true, 0, 9, false, "movabs [0xfee00310], eax"},
        {{0xa3, 0x10, 0x03, 0xe0, 0xfe}, 5, false, 0, 5, false, "mov [0xfee00310], eax (32-bit)"},
        {{0x67, 0xa3, 0x10, 0x03, 0xe0, 0xfe, 0x90, 0x90, 0x90, 0x90}, 10, true, 0, 6, false, "addr32 movabs: 4-byte moffs"},
    };
    for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        struct apic_store st;
        int r = apic_decode_store(c[i].b, c[i].n, c[i].lm, true, &st);
        CHECK(r == 0 && st.reg == c[i].reg && st.len == c[i].len && st.xchg == c[i].xchg,
              "%s: r %d reg %d len %u", c[i].what, r, st.reg, st.len);
    }
    struct apic_store st;
    static const uint8_t imm[] = {0xc7, 0x05, 1, 2, 3, 4, 0x00, 0x45, 0x00, 0x00};
    CHECK(!apic_decode_store(imm, sizeof(imm), true, true, &st) && st.reg == -1 && st.imm == 0x4500 && st.len == 10,
          "mov dword [rip+x], 0x4500: reg %d imm %#x len %u", st.reg, st.imm, st.len);
    static const uint8_t load[] = {0x8b, 0x00}, regdst[] = {0x89, 0xc0}, trunc[] = {0x89, 0x04};
    CHECK(apic_decode_store(load, 2, true, true, &st) < 0, "a load is not a store");
    CHECK(apic_decode_store(regdst, 2, true, true, &st) < 0, "a register destination is not a store");
    CHECK(apic_decode_store(trunc, 2, true, true, &st) < 0, "a truncated instruction");
    CHECK(apic_decode_store(c[0].b, 2, false, false, &st) < 0, "16-bit addressing is not decoded");
}

static void test_latch(void)
{
    setup(EXIT_REASON_CPUID);
    cpus();
    /* INIT then SIPI to APIC ID 1, physical: latched for cpu1 only, first vector kept. */
    apic_icr_write(&v, 0x4500, 1, false);
    apic_icr_write(&v, 0x4600 | 0x9a, 1, false);
    apic_icr_write(&v, 0x4600 | 0x77, 1, false);
    CHECK(cpu1.sipi == (APIC_SIPI_INIT_SENT | APIC_SIPI_VALID | 0x9a) && cpu2.sipi == 0 && v.sipi == 0,
          "INIT, SIPI, SIPI: cpu1 %#x cpu2 %#x", cpu1.sipi, cpu2.sipi);
    /* A SIPI without an INIT before it: a running CPU ignores it. */
    apic_icr_write(&v, 0x4600 | 0x10, 2, false);
    CHECK(cpu2.sipi == 0, "SIPI without INIT latched: %#x", cpu2.sipi);
    /* INIT level de-assert: not an INIT. */
    apic_icr_write(&v, 0x8500, 2, false);
    CHECK(cpu2.sipi == 0, "INIT de-assert latched as an INIT");
    /* All excluding self (OVMF's broadcast), then x2APIC with a 32-bit destination. */
    cpu1.sipi = 0;
    apic_icr_write(&v, 0xc4500, 0, false);
    CHECK(cpu1.sipi == APIC_SIPI_INIT_SENT && cpu2.sipi == APIC_SIPI_INIT_SENT && v.sipi == 0,
          "all-but-self INIT: %#x %#x %#x", cpu1.sipi, cpu2.sipi, v.sipi);
    apic_icr_write(&v, 0x4620, 2, true);
    CHECK(cpu2.sipi == (APIC_SIPI_INIT_SENT | APIC_SIPI_VALID | 0x20) && cpu1.sipi == APIC_SIPI_INIT_SENT,
          "x2APIC SIPI to 2: %#x", cpu2.sipi);
    /* A physical destination of all 1s is a broadcast (xAPIC 0xff, x2APIC 0xffffffff). */
    cpu1.sipi = cpu2.sipi = v.sipi = 0;
    apic_icr_write(&v, 0x4500, 0xff, false);
    apic_icr_write(&v, 0x4600 | 0x42, 0xffffffffu, true);
    CHECK(cpu1.sipi == (APIC_SIPI_INIT_SENT | APIC_SIPI_VALID | 0x42) && cpu2.sipi == cpu1.sipi && v.sipi == cpu1.sipi,
          "broadcast INIT/SIPI: %#x %#x %#x", cpu1.sipi, cpu2.sipi, v.sipi);
    hv.vcpus[1] = hv.vcpus[2] = NULL;
}

static void check_started(const char *test, uint32_t vector)
{
    CHECK(fake_vmcs_get(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_ACTIVE && fake_vmcs_get(GUEST_RIP) == 0 &&
              fake_vmcs_get(GUEST_CS_SELECTOR) == vector << 8 && fake_vmcs_get(GUEST_CS_BASE) == (uint64_t)vector << 12,
          "%s: activity %llu cs %#llx rip %#llx", test, ULL(fake_vmcs_get(GUEST_ACTIVITY_STATE)),
          ULL(fake_vmcs_get(GUEST_CS_SELECTOR)), ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(v.sipi == 0, "%s: latch left %#x", test, v.sipi);
}

static void test_init_sipi(void)
{
    /* The SIPI came while this CPU was still in hv with its INIT exit: it starts at once. */
    setup(EXIT_REASON_INIT_SIGNAL);
    v.sipi = APIC_SIPI_INIT_SENT | APIC_SIPI_VALID | 0x9a;
    run_ok("INIT, SIPI latched");
    check_started("INIT, SIPI latched", 0x9a);
    CHECK(v.stats.sipis_latched == 1, "latched starts %llu", ULL(v.stats.sipis_latched));

    /* No SIPI: after hv's wait, the CPU's wait-for-SIPI state; the SIPI exit then starts it. */
    setup(EXIT_REASON_INIT_SIGNAL);
    run_ok("INIT, no SIPI");
    CHECK(fake_vmcs_get(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_WAIT_SIPI && v.sipi == APIC_SIPI_WAITING,
          "INIT alone: activity %llu, latch %#x", ULL(fake_vmcs_get(GUEST_ACTIVITY_STATE)), v.sipi);
    uint32_t waiting = v.sipi;
    setup(EXIT_REASON_SIPI_SIGNAL);
    v.sipi = waiting | APIC_SIPI_VALID | 0x10; /* latched too, by its sender */
    fake_vmcs_set(EXIT_QUALIFICATION, 0x10);
    run_ok("SIPI exit");
    check_started("SIPI exit", 0x10);

    /* L1 in VMX root operation: INIT is blocked (nothing reset) until VMXOFF. */
    setup(EXIT_REASON_INIT_SIGNAL);
    v.nested.vmxon = true;
    fake_vmcs_set(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    v.rc.regs[HV_REG_RBX] = 0x1234;
    run_ok("INIT in VMX root");
    CHECK(v.init_blocked && v.rc.regs[HV_REG_RBX] == 0x1234 && fake_vmcs_write_count(GUEST_RIP) == 0 &&
              fake_vmcs_get(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_ACTIVE,
          "INIT in VMX root operation reset the vCPU");
    init_after_vmxoff(&v); /* still in VMX operation: nothing */
    CHECK(v.init_blocked, "INIT taken before VMXOFF");
    v.nested.vmxon = false;
    v.sipi = APIC_SIPI_INIT_SENT | APIC_SIPI_VALID | 0x33; /* came while INIT was blocked: lost */
    init_after_vmxoff(&v);
    regcache_flush(&v.rc);
    CHECK(!v.init_blocked && fake_vmcs_get(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_WAIT_SIPI &&
              v.rc.regs[HV_REG_RBX] == 0 && v.sipi == APIC_SIPI_WAITING,
          "after VMXOFF: activity %llu, latch %#x", ULL(fake_vmcs_get(GUEST_ACTIVITY_STATE)), v.sipi);

    /* The blocked INIT stays pending: L1's next VM entry into L2 gives L1 the INIT VM exit
     * (SDM 24.8, 25.2), L1 not reset. Not in wait-for-SIPI (it blocks INIT); an entry that
     * injects an event keeps it held (not emulated: the exit would follow the delivery). */
    setup(EXIT_REASON_INIT_SIGNAL);
    v.nested.vmxon = true;
    v.rc.regs[HV_REG_RBX] = 0x1234;
    run_ok("INIT in VMX root, then VM entry");
    hv.nested = true;
    vmx_insn_enters = true;
    reflect_init_calls = 0;
    fake_vmcs_set(VM_EXIT_REASON, EXIT_REASON_VMRESUME);
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x30);
    run_ok("VMRESUME injecting an interrupt");
    CHECK(v.init_blocked && !reflect_init_calls && v.nested.guest_mode, "injection: INIT held (%d exits)",
          reflect_init_calls);
    v.nested.guest_mode = false;
    fake_vmcs_set(VM_ENTRY_INTR_INFO_FIELD, 0);
    fake_vmcs_set(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_WAIT_SIPI);
    run_ok("VMRESUME into wait-for-SIPI");
    CHECK(v.init_blocked && !reflect_init_calls && v.nested.guest_mode, "wait-for-SIPI: INIT held");
    v.nested.guest_mode = false;
    fake_vmcs_set(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
    tpr_exit_pending = true; /* 26.7.7: the TPR-below-threshold exit comes first */
    run_ok("VMRESUME with a TPR-below-threshold exit after it");
    CHECK(v.init_blocked && !reflect_init_calls && v.nested.guest_mode, "TPR exit first: INIT held");
    tpr_exit_pending = false;
    v.nested.guest_mode = false;
    v.sipi = APIC_SIPI_INIT_SENT | APIC_SIPI_VALID | 0x44;
    run_ok("VMRESUME");
    CHECK(!v.init_blocked && reflect_init_calls == 1 && !v.nested.guest_mode && v.sipi == 0 &&
              v.rc.regs[HV_REG_RBX] == 0x1234 && fake_vmcs_get(GUEST_ACTIVITY_STATE) == GUEST_ACTIVITY_ACTIVE,
          "VM entry: L1's INIT exit (%d), L1 not reset, latch %#x", reflect_init_calls, v.sipi);
    run_ok("VMRESUME again");
    CHECK(reflect_init_calls == 1 && v.nested.guest_mode, "one INIT, one exit");
    vmx_insn_enters = false;
}

static void test_mmio(void)
{
    uint8_t *ram = mmap((void *)RAM, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    uint32_t *apic = aligned_alloc(4096, 4096);
    CHECK(ram == (void *)RAM && apic, "test memory");
    if (ram != (void *)RAM || !apic)
        return;
    memset(apic, 0, 4096);
    apic[0x310 / 4] = 1u << 24; /* ICR high: APIC ID 1 */
    static const uint8_t mov[] = {0x89, 0x11}; /* mov [rcx], edx */
    memcpy(ram, mov, sizeof(mov));

    setup(EXIT_REASON_EPT_VIOLATION);
    cpus();
    fake_vmcs_set(GUEST_RIP, RAM);
    fake_vmcs_set(GUEST_IA32_EFER, EFER_LMA | EFER_LME);
    fake_vmcs_set(GUEST_CS_AR_BYTES, 0xa09b);
    fake_vmcs_set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_STI);
    v.rc.regs[HV_REG_RDX] = 0x4500; /* INIT */
    CHECK(apic_mmio_write(&v, (uint64_t)(uintptr_t)apic + 0x300), "handled");
    regcache_flush(&v.rc);
    CHECK(apic[0x300 / 4] == 0x4500 && fake_vmcs_get(GUEST_RIP) == RAM + 2 &&
              fake_vmcs_get(GUEST_INTERRUPTIBILITY_INFO) == 0,
          "ICR %#x, rip %#llx, STI blocking ended", apic[0x300 / 4], ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(cpu1.sipi == APIC_SIPI_INIT_SENT && cpu2.sipi == 0, "INIT through the xAPIC page: %#x", cpu1.sipi);

    /* An instruction hv does not decode: #UD, not a fatal error, the APIC untouched. */
    ram[0] = 0x0f, ram[1] = 0x0b;
    setup(EXIT_REASON_EPT_VIOLATION);
    fake_vmcs_set(GUEST_RIP, RAM);
    apic[0xb0 / 4] = 7;
    CHECK(apic_mmio_write(&v, (uint64_t)(uintptr_t)apic + 0xb0), "handled");
    regcache_flush(&v.rc);
    CHECK(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD) == UD_INFO && fake_vmcs_get(GUEST_RIP) == RAM,
          "undecodable APIC store: info %#llx rip %#llx", ULL(fake_vmcs_get(VM_ENTRY_INTR_INFO_FIELD)),
          ULL(fake_vmcs_get(GUEST_RIP)));
    CHECK(apic[0xb0 / 4] == 7, "EOI register written");
    hv.vcpus[1] = hv.vcpus[2] = NULL;
    free(apic);
    munmap(ram, 4096);
}

int main(void)
{
    test_log_capture();
    test_decode();
    test_latch();
    test_init_sipi();
    test_mmio();
    return test_summary();
}
