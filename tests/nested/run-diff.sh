#!/bin/bash
# test-nested: run l1.efi (a small VMX hypervisor, tests/nested/) twice under Bochs 3.0
# with 1 CPU: on "bare Bochs" (hv with vmx=off starts it natively, so Bochs is the VMX
# hardware) and as hv's guest (nested=on: hv emulates VMX). Every "l1: " line of the bare
# run is one check: the hv run must have the same line at the same position.
# Logs: build/nested/{bare,hv}/serial.log; extracted lines: build/nested/{bare,hv}.txt.
source "$(dirname "$0")/../boot/lib.sh"
N=$B/nested
mkdir -p "$N"
for f in "$B/hv.efi" "$B/l1.efi" "$BOCHS"; do
    [ -e "$f" ] || { echo "nested-diff: $f missing (make all build/l1.efi bochs)"; exit 2; }
done

mkdisk "$N/bare" $'next=\\EFI\\hv\\l1.efi\r\nvmx=off\r\n' "$B/l1.efi:/EFI/hv/l1.efi"
mkdisk "$N/hv" $'next=\\EFI\\hv\\l1.efi\r\nnested=on\r\n' "$B/l1.efi:/EFI/hv/l1.efi"
start=$(date +%s)
run_bochs "$N/bare" 1 300 &
run_bochs "$N/hv" 1 300 &
wait
echo "nested-diff: both runs took $(($(date +%s) - start)) s (bare exit $(cat "$N/bare/rc"), hv exit $(cat "$N/hv/rc"))"

extract() { tr -d '\r' <"$1/serial.log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | grep -a '^l1: ' >"$2" || true; }
extract "$N/bare" "$N/bare.txt"
extract "$N/hv" "$N/hv.txt"

PASS=0 FAIL=0
if grep -qx 'l1: done' "$N/bare.txt"; then
    PASS=$((PASS + 1))
else
    FAIL=$((FAIL + 1))
    echo "FAIL bare run did not reach 'l1: done' (see $N/bare/serial.log)"
fi
mapfile -t bare <"$N/bare.txt"
mapfile -t hv <"$N/hv.txt"
for i in "${!bare[@]}"; do
    if [ "${bare[$i]}" == "${hv[$i]-}" ]; then
        PASS=$((PASS + 1))
    else
        FAIL=$((FAIL + 1))
        echo "line $((i + 1)):"
        echo "  bare: ${bare[$i]}"
        echo "  hv:   ${hv[$i]-<missing>}"
    fi
done
[ "${#hv[@]}" -gt "${#bare[@]}" ] && echo "(the hv run printed $((${#hv[@]} - ${#bare[@]})) more l1 lines)"
echo "nested-diff: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
