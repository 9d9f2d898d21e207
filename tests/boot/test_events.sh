#!/bin/bash
# Events the OS sends between CPUs, on bare Bochs (hv with vmx=off starts the payload
# natively: the reference) and under hv, with 1 and 2 CPUs; hv's lines must equal bare
# Bochs' lines:
#  - NMI stress (tests/payload/nmi.c): NMIs sent by the BSP to itself and to an AP that loops
#    on CPUID (plain, after STI, after MOV SS, inside its NMI handler, around a #GP). Every
#    NMI must arrive exactly once.
#  - INIT and SIPI (tests/payload/sipi.c, 2 CPUs): INIT+SIPI at once, INIT+SIPI+SIPI at
#    once, INIT-pause-SIPI-pause-SIPI: the AP starts exactly once each time.
# Logs: build/tests/nmi-{bare,hv}{1,2}/serial.log.
source "$(dirname "$0")/lib.sh"
T=$B/tests
CFG=$'next=\\EFI\\hv\\payload.efi\r\nargs=nmi\r\n'
for n in 1 2; do
    mkdisk "$T/nmi-bare$n" "$CFG"$'vmx=off\r\n' "$B/payload.efi:/EFI/hv/payload.efi"
    mkdisk "$T/nmi-hv$n" "$CFG" "$B/payload.efi:/EFI/hv/payload.efi"
done
start=$(date +%s)
run_bochs "$T/nmi-bare1" 1 300 &
run_bochs "$T/nmi-hv1" 1 300 &
wait
run_bochs "$T/nmi-bare2" 2 300 &
run_bochs "$T/nmi-hv2" 2 300 &
wait
echo "events: the four runs took $(($(date +%s) - start)) s"
lines() { tr -d '\r' <"$1/serial.log" | grep -a -E '^payload: (nmi|sipi): '; }
for n in 1 2; do
    bare=$T/nmi-bare$n hv=$T/nmi-hv$n
    echo "events test, $n CPU(s):"
    expect "bare$n" "$bare" '^payload: nmi: self: 4[0-9][0-9] sent, 4[0-9][0-9] received \(0 missing, 0 extra\), 0 waits timed out' \
        "bare Bochs: every self NMI arrives once"
    expect "hv$n" "$hv" '^payload: nmi: self: 4[0-9][0-9] sent, 4[0-9][0-9] received \(0 missing, 0 extra\), 0 waits timed out' \
        "under hv: every self NMI arrives once"
    expect "hv$n" "$hv" '^payload: nmi: self: [1-9][0-9]* sent by the NMI handler, 100 #GP delivered' \
        "NMIs sent inside the NMI handler and #GP around NMIs"
    if [ "$n" = 2 ]; then
        expect "bare$n" "$bare" '^payload: nmi: cross: 2000 sent, 2000 received \(0 missing, 0 extra\)' \
            "bare Bochs: 2000 NMIs to the AP, each once"
        expect "hv$n" "$hv" '^payload: nmi: cross: 2000 sent, 2000 received \(0 missing, 0 extra\)' \
            "under hv: 2000 NMIs to the AP, each once"
        expect "hv$n" "$hv" '^payload: nmi: cross: the receiver ran every variant' "the AP looped in every variant"
        expect "hv$n" "$hv" '^payload: nmi: burst: 2000 sent back to back, at most that many received' \
            "2000 NMIs back to back: the machine keeps running, none duplicated"
        expect "hv$n" "$hv" '^hv: stats: cpu1:   NMIs: [0-9]+ received, [0-9]+ injected' "hv delivered the AP's NMIs"
        for b in "$bare" "$hv"; do
            m=$(basename "$b")
            expect "$m" "$b" '^payload: sipi: INIT, SIPI at once: the AP started 1 time' "INIT, SIPI at once: one start"
            expect "$m" "$b" '^payload: sipi: INIT, SIPI, SIPI at once: the AP started 1 time' \
                "INIT, SIPI, SIPI at once: one start"
            expect "$m" "$b" '^payload: sipi: INIT, pause, SIPI, pause, SIPI: the AP started 1 time' \
                "INIT, pause, SIPI, pause, SIPI: one start"
        done
        expect "hv$n" "$hv" '^hv: stats: cpu1:   INIT/SIPI: [1-9][0-9]* start\(s\) from a latched SIPI' \
            "the AP started from SIPIs hv latched"
    fi
    expect "hv$n" "$hv" '^hv: stats: cpu0:   NMIs: [0-9]+ received, [0-9]+ injected' "hv delivered the BSP's NMIs"
    if [ "$(lines "$bare")" = "$(lines "$hv")" ] && [ -n "$(lines "$bare")" ]; then
        PASS=$((PASS + 1)); echo "  ok   hv$n: the payload's NMI lines equal bare Bochs'"
    else
        FAIL=$((FAIL + 1)); echo "  FAIL hv$n: NMI lines differ from bare Bochs':"
        diff <(lines "$bare") <(lines "$hv") | head -10; FAILED_DIRS+=("$hv")
    fi
    expect_not "hv$n" "$hv" '^hv: ERROR' "no errors logged"
    expect "hv$n" "$hv" '^payload: done' "the payload finished"
done
show_failures
echo "events: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
