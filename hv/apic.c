/*
 * The guest's writes to its local APIC's interrupt command register, seen by hv so that no
 * SIPI is lost (docs/architecture.md, "INIT and SIPI").
 *
 * A SIPI reaches a CPU only in the wait-for-SIPI state; one that arrives while the target
 * is in VMX root operation, handling the INIT exit that precedes it, is discarded by the
 * CPU. OSes send INIT and SIPI back to back, so hv latches them on the sender's side: the
 * xAPIC page is read-only in EPT01 (its writes exit and hv performs them after decoding
 * the store) and the x2APIC ICR (MSR 0x830) write exits. For each target vCPU the sender
 * records "INIT sent", then the first SIPI's vector; the target's INIT handler takes the
 * vector from there (hv/exit_init.c), whenever it comes.
 */
#include "apic.h"
#include "../lib/log.h"
#include "../lib/x86.h"
#include "../nested/gva.h"
#include "../vmx/vmx_bits.h"
#include "exit.h"

#define ICR_MODE(lo) (((lo) >> 8) & 7)
#define ICR_MODE_INIT 5
#define ICR_MODE_SIPI 6
#define ICR_LOGICAL (1u << 11)
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_TRIGGER_LEVEL (1u << 15)
#define ICR_SHORTHAND(lo) (((lo) >> 18) & 3)

static void latch(struct vcpu *t, uint32_t mode, uint32_t vector)
{
    uint32_t s = __atomic_load_n(&t->sipi, __ATOMIC_ACQUIRE);
    if (mode == ICR_MODE_INIT) {
        __atomic_store_n(&t->sipi, APIC_SIPI_INIT_SENT, __ATOMIC_RELEASE);
        return;
    }
    /* A SIPI counts after an INIT, once: a CPU that runs ignores it (SDM 10.4.7.3 / 11.4.7.3). */
    while ((s & (APIC_SIPI_INIT_SENT | APIC_SIPI_WAITING)) && !(s & APIC_SIPI_VALID))
        if (__atomic_compare_exchange_n(&t->sipi, &s, s | APIC_SIPI_VALID | (vector & 0xff), false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            break;
}

void apic_icr_write(struct vcpu *v, uint32_t lo, uint32_t dest, bool x2apic)
{
    uint32_t mode = ICR_MODE(lo);
    if (mode != ICR_MODE_INIT && mode != ICR_MODE_SIPI)
        return;
    if (mode == ICR_MODE_INIT && !(lo & ICR_LEVEL_ASSERT) && (lo & ICR_TRIGGER_LEVEL))
        return; /* INIT level de-assert: no INIT on these CPUs */
    unsigned sh = ICR_SHORTHAND(lo);
    if (sh == 0 && (lo & ICR_LOGICAL)) {
        static bool logged;
        if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
            log_warn("cpu%u: INIT/SIPI with a logical destination: not latched (a SIPI may need the CPU's own path)",
                     v->id);
        return;
    }
    for (uint32_t i = 0; i < HV_MAX_CPUS; i++) {
        struct vcpu *t = hv.vcpus[i];
        if (!t)
            continue;
        uint32_t id = x2apic ? dest : dest & 0xff, all = x2apic ? 0xffffffffu : 0xff; /* physical broadcast */
        bool to = sh == 1 ? t == v : sh == 2 ? true : sh == 3 ? t != v : id == all || t->apic_id == id;
        if (to)
            latch(t, mode, lo & 0xff);
    }
    v->stats.icr_latched++;
}

/* ---- xAPIC: the store that wrote the APIC page --------------------------------------- */

int apic_decode_store(const uint8_t *b, unsigned n, bool long_mode, bool addr32_default,
                      struct apic_store *st)
{
    unsigned i = 0;
    bool rex_r = false, addr16 = !long_mode && !addr32_default, asize = false;
    for (; i < n && i < 14; i++) { /* legacy prefixes */
        uint8_t p = b[i];
        if (p == 0x26 || p == 0x2e || p == 0x36 || p == 0x3e || p == 0x64 || p == 0x65)
            continue;
        if (p == 0x67) {
            addr16 = !long_mode && !addr16;
            asize = true;
            continue;
        }
        break;
    }
    if (i < n && long_mode && (b[i] & 0xf0) == 0x40) { /* REX */
        rex_r = b[i] & 4;
        i++;
    }
    if (addr16 || i + 1 > n)
        return -1;
    if (b[i] == 0xa3) { /* MOV moffs32, EAX: an absolute address, 8 bytes in 64-bit mode (4 with 67) */
        i += 1 + (long_mode && !asize ? 8 : 4);
        if (i > n || i > 15)
            return -1;
        *st = (struct apic_store){.reg = 0, .len = i};
        return 0;
    }
    if (i + 2 > n)
        return -1;
    uint8_t op = b[i++], modrm = b[i++];
    unsigned mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
    if (mod == 3 || (op != 0x89 && op != 0x87 && !(op == 0xc7 && reg == 0)))
        return -1;
    unsigned disp = mod == 1 ? 1 : mod == 2 ? 4 : 0;
    if (rm == 4) { /* SIB */
        if (i >= n)
            return -1;
        if (mod == 0 && (b[i] & 7) == 5)
            disp = 4;
        i++;
    } else if (mod == 0 && rm == 5) {
        disp = 4; /* disp32, RIP-relative in 64-bit mode */
    }
    i += disp;
    st->xchg = op == 0x87;
    st->reg = op == 0xc7 ? -1 : (int)(reg + (rex_r ? 8 : 0));
    if (op == 0xc7) {
        if (i + 4 > n)
            return -1;
        st->imm = (uint32_t)b[i] | (uint32_t)b[i + 1] << 8 | (uint32_t)b[i + 2] << 16 | (uint32_t)b[i + 3] << 24;
        i += 4;
    }
    if (i > n || i > 15)
        return -1;
    st->len = i;
    return 0;
}

/* A write to the xAPIC page (EPT violation): decode the store, perform it, skip it. */
bool apic_mmio_write(struct vcpu *v, uint64_t gpa)
{
    uint8_t b[15] = {0};
    uint64_t rip = reg_rip(&v->rc), efer = vm_read(v, GUEST_IA32_EFER);
    uint32_t cs_ar = (uint32_t)vm_read(v, GUEST_CS_AR_BYTES);
    bool long_mode = (efer & EFER_LMA) && (cs_ar & (1u << 13));
    uint64_t lin = (long_mode ? 0 : vm_read(v, GUEST_CS_BASE)) + rip;
    unsigned n = 0;
    while (n < sizeof(b)) { /* up to the end of the instruction's page(s) */
        uint64_t pa;
        uint32_t err;
        if (gva_to_gpa(&v->nv, lin + n, false, &pa, &err) || !hv_gpa_is_ram(pa, 1))
            break;
        unsigned k = (unsigned)(4096 - (pa & 4095));
        for (unsigned j = 0; j < k && n < sizeof(b); j++)
            b[n++] = *(const volatile uint8_t *)(uintptr_t)(pa + j);
    }
    struct apic_store st;
    if (apic_decode_store(b, n, long_mode, cs_ar & (1u << 14), &st)) {
        static bool logged;
        if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
            log_err("cpu%u: a store to the local APIC hv cannot decode at rip 0x%llx (%02x %02x %02x %02x): #UD",
                    v->id, (unsigned long long)rip, b[0], b[1], b[2], b[3]);
        inject_ud(v);
        return true;
    }
    uint32_t val = st.reg < 0 ? st.imm : (uint32_t)v->rc.regs[st.reg], off = (uint32_t)(gpa & 0xffc);
    volatile uint32_t *reg = (volatile uint32_t *)(uintptr_t)(gpa & ~3ull);
    if (st.reg == HV_REG_RSP) /* RSP is the VMCS's */
        val = (uint32_t)reg_read(&v->rc, HV_REG_RSP);
    if (off == 0x300)
        apic_icr_write(v, val, *(volatile uint32_t *)(uintptr_t)((gpa & ~0xfffull) + 0x310) >> 24, false);
    uint32_t old = st.xchg ? *reg : 0;
    *reg = val;
    if (st.xchg && st.reg != HV_REG_RSP)
        v->rc.regs[st.reg] = old; /* a 32-bit destination: zero-extended */
    reg_advance_rip(&v->rc, st.len);
    v->stats.apic_writes++;
    return true;
}
