#!/bin/bash
# test-nested: run l1.efi (a small VMX hypervisor, tests/nested/) twice under Bochs 3.0
# with 1 CPU: on "bare Bochs" (hv with vmx=off starts it natively, so Bochs is the VMX
# hardware) and as hv's guest (nested=on: hv emulates VMX). Every "l1: " line of the bare
# run is one check: the hv run must have the same line at the same position (of its section:
# the EPT scenario's lines are compared apart, see below).
# Logs: build/nested/{bare,hv}/serial.log; extracted lines: build/nested/{bare,hv}.txt, split
# into build/nested/{bare,hv}.{main,ept}.
source "$(dirname "$0")/../boot/lib.sh"
N=$B/nested
mkdir -p "$N"
for f in "$B/hv.efi" "$B/l1.efi" "$BOCHS"; do
    [ -e "$f" ] || { echo "nested-diff: $f missing (make all build/l1.efi bochs)"; exit 2; }
done

mkdisk "$N/bare" $'next=\\EFI\\hv\\l1.efi\r\nvmx=off\r\n' "$B/l1.efi:/EFI/hv/l1.efi"
mkdisk "$N/hv" $'next=\\EFI\\hv\\l1.efi\r\nnested=on\r\n' "$B/l1.efi:/EFI/hv/l1.efi"
# The same L1 on a 2-CPU machine under hv: nested state is per vCPU, the AP idles in
# the firmware meanwhile; L1 must see exactly what it sees with one CPU.
mkdisk "$N/hv2" $'next=\\EFI\\hv\\l1.efi\r\nnested=on\r\n' "$B/l1.efi:/EFI/hv/l1.efi"
start=$(date +%s)
run_bochs "$N/bare" 1 300 &
run_bochs "$N/hv" 1 300 &
run_bochs "$N/hv2" 2 300 &
wait
echo "nested-diff: the runs took $(($(date +%s) - start)) s (bare exit $(cat "$N/bare/rc"), hv exit $(cat "$N/hv/rc"))"

extract() { tr -d '\r' <"$1/serial.log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | grep -a '^l1: ' >"$2" || true; }
extract "$N/bare" "$N/bare.txt"
extract "$N/hv" "$N/hv.txt"
extract "$N/hv2" "$N/hv2.txt"
# What L1 sees next to what the CPU has (the note's and docs/nested.md's table).
if "$(dirname "$0")/../tools/captable.sh" "$N/bare/serial.log" "$N/hv/serial.log" >"$N/captable.md" 2>&1; then
    echo "nested-diff: capability MSRs, CPU and L1: $N/captable.md"
fi

PASS=0 FAIL=0
if grep -qx 'l1: done' "$N/bare.txt"; then
    PASS=$((PASS + 1))
else
    FAIL=$((FAIL + 1))
    echo "FAIL bare run did not reach 'l1: done' (see $N/bare/serial.log)"
fi
# Two sections, each compared by position: the EPT section (the last scenario, EPT and
# unrestricted guest, which hv may not offer yet: then its run prints one "ept: not offered")
# runs from the first "l1: ept: " line up to "l1: vmxoff"/"l1: done"; all the other lines are
# the main section. So the EPT section's length (and any line it prints without the "ept:"
# prefix, such as an "ERROR: vmwrite") shifts nothing in the main section.
# Line numbers are those of the section.
split() { # LINES MAIN EPT
    awk -v main="$2" -v ept="$3" 'BEGIN { s = 0; printf "" >main; printf "" >ept }
        s == 0 && /^l1: ept: / { s = 1 }
        s == 1 && /^l1: (vmxoff: |done$)/ { s = 2 }
        { print >(s == 1 ? ept : main) }' "$1"
}
split "$N/bare.txt" "$N/bare.main" "$N/bare.ept"
split "$N/hv.txt" "$N/hv.main" "$N/hv.ept"
compare() { # PREFIX SUFFIX: compares bare.SUFFIX with hv.SUFFIX; sets SEC_PASS, SEC_FAIL
    local name=$1 i
    SEC_PASS=0 SEC_FAIL=0
    mapfile -t bare <"$N/bare.$2"
    mapfile -t hv <"$N/hv.$2"
    for i in "${!bare[@]}"; do
        if [ "${bare[$i]}" == "${hv[$i]-}" ]; then
            SEC_PASS=$((SEC_PASS + 1))
        else
            SEC_FAIL=$((SEC_FAIL + 1))
            echo "${name}line $((i + 1)):"
            echo "  bare: ${bare[$i]}"
            echo "  hv:   ${hv[$i]-<missing>}"
        fi
    done
    [ "${#hv[@]}" -gt "${#bare[@]}" ] && echo "(the hv run printed $((${#hv[@]} - ${#bare[@]})) more ${name}l1 lines)"
    return 0
}
compare "" main
PASS=$((PASS + SEC_PASS)) FAIL=$((FAIL + SEC_FAIL))
compare "ept " ept
if [ -s "$N/hv2.txt" ] && cmp -s "$N/hv.txt" "$N/hv2.txt"; then
    PASS=$((PASS + 1))
else
    FAIL=$((FAIL + 1))
    echo "FAIL the 2-CPU hv run differs from the 1-CPU one:"; diff "$N/hv.txt" "$N/hv2.txt" | head -10
fi
# Scenario 10 (s_hidden.c), under hv only: L2's writes into hv's memory through EPT01 and
# EPT02 are dropped and counted, L2 and L1 read zeros, hv's self-check is clean.
for r in hv hv2; do
    for w in "EPT01, 8-byte store|0x0" "EPT01, rep stosb|0xab" "EPT02, 8-byte store|0x0" "EPT02, rep stosb|0xab"; do
        re="^l1hv: hidden: L2 on ${w%%|*} across two pages: L2 reached its VMCALL, L2 read ${w#*|}, hv's region reads zeros, [1-9][0-9]* dropped, self-check 0x0\$"
        if tr -d '\r' <"$N/$r/serial.log" | grep -qaE "$re"; then
            PASS=$((PASS + 1))
        else
            FAIL=$((FAIL + 1))
            echo "FAIL $r: L2 on ${w%%|*}: no line matching /$re/ in $N/$r/serial.log"
            tr -d '\r' <"$N/$r/serial.log" | grep -a "^l1hv: hidden: L2 on ${w%%|*}" | head -2
        fi
    done
done
echo "nested-diff: $((PASS + SEC_PASS)) passed, $((FAIL + SEC_FAIL)) failed" \
    "(EPT section: $SEC_PASS passed, $SEC_FAIL failed)"
[ $((FAIL + SEC_FAIL)) -eq 0 ]
