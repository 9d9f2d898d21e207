#!/bin/bash
# test-hvhv: hv as L1 of hv. The outer hv (L0, log prefix "hv") takes over Bochs and starts
# \EFI\hv1\hv.efi, the inner hv (L1, log_prefix=hv1 in \EFI\hv1\hv.cfg), which blue-pills the
# firmware under the outer one (its VMXON, VMCS, EPT are emulated by the outer's nested VMX)
# and starts the payload or l1.efi as its own guest (l1.efi's L2 is then the machine's L3).
# Runs, 1 CPU each but one, all at once:
#   full-l1    outer offers all it can; l1.efi's "l1: " lines must equal bare Bochs'
#              (build/nested/bare.txt from tests/nested/run-diff.sh, reused when newer than
#              hv.efi and l1.efi, else booted here as hvhv/bare)
#   kvm-l1     outer with l1_vmx_hide=$KVM_LIKE (what a nested KVM typically lacks); l1.efi's
#              lines must equal kvm-ref's: the inner hv offers exactly what it was offered
#   kvm-ref    one hv with the same l1_vmx_hide=, l1.efi its direct L1
#   kvm-pay    KVM-like outer (and one unknown name, warned about), the payload under the inner
#              hv: sees hv, hv's memory hidden
#   full-pay2  the same on the full set with 2 CPUs: the inner hv starts its AP through the
#              firmware's INIT-SIPI-SIPI under the outer hv; the payload sees it on both
#   no-ug, no-mtf, no-2m  the outer hides what hv needs (unrestricted guest; the monitor trap
#              flag of hv's write steps; 2 MiB EPT pages for EPT01): the inner hv says which and
#              boots the payload anyway (under the outer hv)
# Logs: build/hvhv/<run>/serial.log. Ends with "hvhv: N passed, N failed".
source "$(dirname "$0")/../boot/lib.sh"
H=$B/hvhv
T=${HVHV_TIMEOUT:-300}
KVM_LIKE="shadow-vmcs preemption-timer-save ept-ad pml ept-ve vmfunc activity-shutdown"
for f in "$B/hv.efi" "$B/l1.efi" "$B/payload.efi" "$BOCHS"; do
    [ -e "$f" ] || { echo "hvhv: $f missing (make all build/l1.efi bochs)"; echo "hvhv: 0 passed, 1 failed"; exit 2; }
done
mkdir -p "$H"

# hvhv_disk NAME OUTER_CFG INNER_CFG PAYLOAD: the outer hv as BOOTX64.EFI, the inner in \EFI\hv1.
hvhv_disk() {
    local d=$H/$1
    mkdisk "$d" "$2" "$4:/EFI/hv/$(basename "$4")"
    printf '%s' "$3" >"$d/inner.cfg"
    mmd -i "$d/disk.img" ::/EFI/hv1
    mcopy -i "$d/disk.img" "$B/hv.efi" ::/EFI/hv1/hv.efi
    mcopy -i "$d/disk.img" "$d/inner.cfg" ::/EFI/hv1/hv.cfg
}
OUTER=$'next=\\EFI\\hv1\\hv.efi\r\n'
INNER=$'log_prefix=hv1\r\n'
hvhv_disk full-l1 "$OUTER" "$INNER"$'next=\\EFI\\hv\\l1.efi\r\n' "$B/l1.efi"
hvhv_disk kvm-l1 "$OUTER""l1_vmx_hide=$KVM_LIKE"$'\r\n' "$INNER"$'next=\\EFI\\hv\\l1.efi\r\n' "$B/l1.efi"
mkdisk "$H/kvm-ref" $'next=\\EFI\\hv\\l1.efi\r\n'"l1_vmx_hide=$KVM_LIKE"$'\r\n' "$B/l1.efi:/EFI/hv/l1.efi"
hvhv_disk kvm-pay "$OUTER""l1_vmx_hide=$KVM_LIKE warp-drive"$'\r\n' "$INNER"$'next=\\EFI\\hv\\payload.efi\r\n' "$B/payload.efi"
hvhv_disk full-pay2 "$OUTER" "$INNER"$'next=\\EFI\\hv\\payload.efi\r\n' "$B/payload.efi"
MISSING=("no-ug|unrestricted-guest|unrestricted guest" "no-mtf|mtf|monitor trap flag" "no-2m|ept-2m|2 MiB EPT pages")
for x in "${MISSING[@]}"; do
    IFS='|' read -r r hide why <<<"$x"
    hvhv_disk "$r" "$OUTER""l1_vmx_hide=$hide"$'\r\n' "$INNER"$'next=\\EFI\\hv\\payload.efi\r\n' "$B/payload.efi"
done

BARE=$B/nested/bare.txt
runs=(full-l1 kvm-l1 kvm-ref kvm-pay full-pay2 no-ug no-mtf no-2m)
if [ -s "$BARE" ] && [ "$BARE" -nt "$B/l1.efi" ] && [ "$BARE" -nt "$B/hv.efi" ] && grep -qx 'l1: done' "$BARE"; then
    echo "hvhv: bare Bochs' l1 lines from $BARE (tests/nested/run-diff.sh)"
else
    mkdisk "$H/bare" $'next=\\EFI\\hv\\l1.efi\r\nvmx=off\r\n' "$B/l1.efi:/EFI/hv/l1.efi"
    runs+=(bare)
    BARE=$H/bare.txt
fi
start=$(date +%s)
for r in "${runs[@]}"; do run_bochs "$H/$r" "$([ "$r" = full-pay2 ] && echo 2 || echo 1)" "$T" & done
wait
echo "hvhv: ${#runs[@]} runs took $(($(date +%s) - start)) s (each: $(for r in "${runs[@]}"; do printf '%s %ss, ' "$r" "$(cat "$H/$r/elapsed")"; done | sed 's/, $//'))"
extract() { tr -d '\r' <"$1/serial.log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | grep -a '^l1: ' >"$2" || true; }
[ "$BARE" = "$H/bare.txt" ] && extract "$H/bare" "$BARE"
for r in full-l1 kvm-l1 kvm-ref; do extract "$H/$r" "$H/$r.txt"; done

# same_lines NAME REF RUN: every line of REF at the same position in RUN
same_lines() {
    local name=$1 ref=$2 run=$3 n bad
    n=$(wc -l <"$ref")
    bad=$(diff "$ref" "$run" | grep -c '^[<>]')
    if [ "$n" -gt 100 ] && grep -qx 'l1: done' "$ref" && cmp -s "$ref" "$run"; then
        PASS=$((PASS + 1)); echo "  ok   $name: all $n l1 lines identical"
    else
        FAIL=$((FAIL + 1)); echo "  FAIL $name: $bad of $n l1 lines differ ($ref vs $run):"
        diff "$ref" "$run" | head -20
        FAILED_DIRS+=("$(dirname "$run")/$(basename "$run" .txt)")
    fi
}

both_levels() { # RUN: what every two-level run shows
    local r=$1 d=$H/$1
    expect "$r" "$d" '^hv: cpu0: VMXON ok, launching the firmware as guest' "outer hv (L0) up"
    expect "$r" "$d" '^hv: starting next stage .*\\hv1\\hv\.efi' "outer hv starts the inner hv.efi"
    expect "$r" "$d" '^hv1: hv [0-9.]+ starting' "the inner hv's first line already has its log_prefix"
    expect "$r" "$d" '^hv1: config .*hv1\\hv.cfg: [0-9]+ bytes' "inner hv reads its own hv.cfg"
    expect "$r" "$d" '^hv1: core [0-9.]+ running on its own page tables' "inner core loaded"
    expect_not "$r" "$d" '^hv1?: (ERROR|FATAL)' "no errors at either level"
}

PASS=0 FAIL=0
echo "hvhv full-l1 (outer offers everything; l1.efi under the inner hv; its L2 is L3):"
both_levels full-l1
d=$H/full-l1
expect full-l1 "$d" '^hv1: cpu0: VMXON ok, launching the firmware as guest' "inner hv in VMX root under the outer"
expect full-l1 "$d" '^hv1: EPT01: identity map' "inner hv's EPT01 (on the outer's EPT02)"
expect full-l1 "$d" '^hv: stats: cpu0: +nested: [1-9][0-9]* VM entries into L2' "outer counts the inner's guest as L2"
expect full-l1 "$d" '^hv1: stats: cpu0: +nested: [1-9][0-9]* VM entries into L2' "inner counts l1.efi's guests as L2"
same_lines full-l1 "$BARE" "$H/full-l1.txt"

echo "hvhv kvm-l1 (outer: l1_vmx_hide=$KVM_LIKE):"
both_levels kvm-l1
d=$H/kvm-l1
expect kvm-l1 "$d" '^hv: l1_vmx_hide: not offered to L1: shadow-vmcs' "outer logs what it hides"
expect kvm-l1 "$d" '^hv1: vmx: the CPU lacks .*preemption-timer-save' "inner hv names the capabilities it misses"
expect kvm-l1 "$d" '^hv1: cpu0: VMXON ok, launching the firmware as guest' "inner hv in VMX root on the KVM-like set"
expect kvm-ref "$H/kvm-ref" '^l1: done' "reference: l1.efi under one hv with the same l1_vmx_hide"
same_lines kvm-l1 "$H/kvm-ref.txt" "$H/kvm-l1.txt"

for r in full-pay2 kvm-pay; do
    d=$H/$r
    echo "hvhv $r (the payload under the inner hv):"
    both_levels $r
    expect $r "$d" '^hv1: cpu0: VMXON ok, launching the firmware as guest' "inner hv in VMX root"
    expect $r "$d" '^hv1: starting next stage .*payload.efi' "inner hv starts the payload"
    expect $r "$d" '^payload: cpu0: signature hvhvhvhvhvhv' "payload sees a hypervisor (hv's CPUID signature)"
    expect $r "$d" '^payload: cpu0: vmx bit set' "payload sees VMX (the inner hv's nested VMX)"
    expect $r "$d" '^payload: log ring: [0-9]+ bytes .*first: "hv1: core' "the payload's hypercalls reach the inner hv: its log ring"
    expect $r "$d" '^payload: canary scan: [1-9][0-9]* MiB scanned, 0 hits' "neither hv's canary in guest memory"
    expect $r "$d" '^payload: hv memory writes \(bsp\): .*reads zeros, [1-9][0-9]* dropped, self-check 0x0$' \
        "writes into the inner hv's memory dropped, its self-check clean"
    expect $r "$d" '^payload: debug: DR7 0xd0401 .* watchpoint #DB 1 time' "a watchpoint survives exits through two levels"
    expect $r "$d" '^hv1: stats: exit statistics \(hypercall\)' "statistics hypercall answered by the inner hv"
    expect $r "$d" '^payload: done' "payload finished"
    expect $r "$d" '^hv: stats: exit statistics \(guest power-off\)' "outer hv sees the power-off"
done
expect kvm-pay "$H/kvm-pay" '^hv: WARN: l1_vmx_hide: 1 unknown feature name\(s\), the first "warp-drive": ignored' \
    "an unknown l1_vmx_hide name is named in a warning, the rest applies"
expect kvm-pay "$H/kvm-pay" '^hv1: vmx: the CPU lacks .*shadow-vmcs' "the inner hv lists what it lacks: shadow-vmcs"
expect kvm-pay "$H/kvm-pay" '^hv1: vmx: the CPU lacks .*activity-shutdown' "... through the last hidden name (lines cut after a name)"

echo "hvhv full-pay2 (2 CPUs):"
d=$H/full-pay2
expect full-pay2 "$d" '^hv: cpu1: VMXON ok, launching the firmware as guest' "outer hv on the AP"
expect full-pay2 "$d" '^hv1: cpu1: VMXON ok, launching the firmware as guest' "inner hv on the AP, under the outer"
expect full-pay2 "$d" '^hv1: stats: cpu1: +INIT/SIPI: [1-9][0-9]* start' "the inner hv's AP started by INIT-SIPI-SIPI"
expect full-pay2 "$d" '^payload: cpu1: signature hvhvhvhvhvhv' "payload on the AP sees hv"
expect full-pay2 "$d" '^payload: hv memory writes \(2 cpus at once\): reads zeros, [1-9][0-9]* dropped, self-check bsp 0x0 ap 0x0 now 0x0$' \
    "both CPUs writing the inner hv's pages at once: dropped, its memory intact"

for x in "${MISSING[@]}"; do
    IFS='|' read -r r hide why <<<"$x"
    d=$H/$r
    echo "hvhv $r (outer: l1_vmx_hide=$hide, which hv needs):"
    expect $r "$d" "^hv1: WARN: VMX unavailable: required feature missing: $why" "inner hv says which capability it misses"
    expect $r "$d" '^hv1: WARN: continuing without virtualization' "and steps aside"
    expect $r "$d" '^hv1: starting next stage .*payload.efi' "inner hv still boots its next stage"
    expect $r "$d" '^payload: cpu0: signature hvhvhvhvhvhv' "payload runs under the outer hv"
    expect $r "$d" '^payload: done' "payload finished"
    expect_not $r "$d" '^hv1?: (ERROR|FATAL)' "no errors at either level"
done

show_failures
echo "hvhv: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
