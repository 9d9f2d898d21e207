/*
 * INIT and SIPI from the OS's side ("sipi" in the load options, 2 or more CPUs): the BSP
 * sends the first AP INIT and SIPI through its local APIC, as OSes do, and counts how often
 * the AP started at the SIPI's vector (a real-mode stub that increments a counter and halts).
 *  1. INIT, then one SIPI at once (kvm-unit-tests; Linux on recent CPUs);
 *  2. INIT, SIPI, SIPI at once: one start (the second SIPI finds the AP running);
 *  3. INIT, a pause, SIPI, a pause, SIPI (the MP specification's sequence): one start.
 * Under hv the SIPI of 1 and 2 arrives while the AP is still in hv with its INIT exit.
 */
#include "payload.h"

#define APIC_BASE 0xfee00000ull
#define ICR_LO 0x300
#define ICR_HI 0x310
#define ICR_INIT 0x4500u /* INIT, level assert, physical */
#define ICR_SIPI 0x4600u /* start-up, vector in bits 7:0 */
#define COUNTER 0x100    /* in the stub's page */

static volatile UINT32 *apic(UINT32 reg) { return (volatile UINT32 *)(UINTN)(APIC_BASE + reg); }

static void icr(UINT32 dest, UINT32 lo)
{
    *apic(ICR_HI) = dest << 24;
    *apic(ICR_LO) = lo;
    for (int i = 0; i < 100000 && (*apic(ICR_LO) & (1u << 12)); i++)
        __asm__ volatile("pause");
}

static void pause_loops(UINTN n)
{
    for (UINTN i = 0; i < n; i++)
        __asm__ volatile("pause");
}

/* Waits for the count to reach want; then a while longer, so a second start would show. */
static UINT32 starts_after(volatile UINT32 *count, UINT32 before, UINT32 want)
{
    for (UINTN i = 0; i < 20000000 && *count - before < want; i++)
        __asm__ volatile("pause");
    pause_loops(2000000);
    return *count - before;
}

void sipi_test(void)
{
    MP_SERVICES *mp;
    UINTN n;
    MP_PROCESSOR_INFO info;
    if (!first_ap(&mp, &n, &info)) {
        out("sipi: skipped (one CPU)");
        return;
    }
    EFI_PHYSICAL_ADDRESS page = 0x9f000;
    if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderCode, 1, &page))) {
        out("sipi: no page below 1 MiB");
        return;
    }
    /* cli; mov ax, cs; mov ds, ax; lock inc dword [COUNTER]; 1: hlt; jmp 1b */
    static const UINT8 stub[] = {0xfa, 0x8c, 0xc8, 0x8e, 0xd8, 0xf0, 0x66, 0xff, 0x06, COUNTER & 0xff, COUNTER >> 8,
                                 0xf4, 0xeb, 0xfd};
    UINT8 *p = (UINT8 *)(UINTN)page;
    SetMem(p, 4096, 0);
    CopyMem(p, (void *)stub, sizeof(stub));
    volatile UINT32 *count = (volatile UINT32 *)(p + COUNTER);
    UINT32 ap = (UINT32)info.ProcessorId, vector = (UINT32)(page >> 12);

    UINT32 before = *count;
    icr(ap, ICR_INIT);
    icr(ap, ICR_SIPI | vector);
    out("sipi: INIT, SIPI at once: the AP started %u time(s)", starts_after(count, before, 1));

    before = *count;
    icr(ap, ICR_INIT);
    icr(ap, ICR_SIPI | vector);
    icr(ap, ICR_SIPI | vector);
    out("sipi: INIT, SIPI, SIPI at once: the AP started %u time(s)", starts_after(count, before, 1));

    before = *count;
    icr(ap, ICR_INIT);
    pause_loops(200000);
    icr(ap, ICR_SIPI | vector);
    pause_loops(20000);
    icr(ap, ICR_SIPI | vector);
    out("sipi: INIT, pause, SIPI, pause, SIPI: the AP started %u time(s)", starts_after(count, before, 1));
    /* The AP halts in the stub; the machine powers off next. */
}
