#!/bin/bash
# `make bench`: figures, not a timed test. Bochs TSC ticks ≈ instructions, so the
# numbers are path lengths. Boots (in parallel, 1 CPU each):
#  - hv + payload bench, and the same with vmx=off (bare Bochs: CPUID does not exit);
#  - l1.efi bench (tests/nested/bench.c: L2 CPUID exits handled by L1, a small VMX
#    hypervisor) on bare Bochs VMX (vmx=off) and as hv's guest (nested=on), and as hv's
#    guest with vmcs_shadowing=off for comparison.
source "$(dirname "$0")/lib.sh"
T=$B/bench
# The Makefile's bench target builds hv.efi and payload.efi only: l1.efi here (a no-op
# when it is up to date; also rebuilds a stale one).
(cd "$ROOT" && make -s build/l1.efi) || { echo "bench: cannot build build/l1.efi"; exit 1; }
mkdisk "$T/hv" $'next=\\EFI\\hv\\payload.efi\nargs=bench\n' "$B/payload.efi:/EFI/hv/payload.efi"
mkdisk "$T/bare" $'next=\\EFI\\hv\\payload.efi\nargs=bench\nvmx=off\n' "$B/payload.efi:/EFI/hv/payload.efi"
mkdisk "$T/l1-hv" $'next=\\EFI\\hv\\l1.efi\nargs=bench\nnested=on\n' "$B/l1.efi:/EFI/hv/l1.efi"
mkdisk "$T/l1-bare" $'next=\\EFI\\hv\\l1.efi\nargs=bench\nvmx=off\n' "$B/l1.efi:/EFI/hv/l1.efi"
mkdisk "$T/l1-hv-noshadow" $'next=\\EFI\\hv\\l1.efi\nargs=bench\nnested=on\nvmcs_shadowing=off\n' "$B/l1.efi:/EFI/hv/l1.efi"
run_bochs "$T/hv" 1 300 &
run_bochs "$T/bare" 1 300 &
run_bochs "$T/l1-hv" 1 300 &
run_bochs "$T/l1-bare" 1 300 &
run_bochs "$T/l1-hv-noshadow" 1 300 &
wait
fig() { tr -d '\r' <"$1/serial.log" | grep -a "$2" | head -1; }
hvc=$(fig "$T/hv" 'payload: bench: cpuid' | sed -E 's/.*cpuid ([0-9.]+) cycles.*/\1/')
bare=$(fig "$T/bare" 'payload: bench: cpuid' | sed -E 's/.*cpuid ([0-9.]+) cycles.*/\1/')
echo "bench: CPUID under hv (one exit + hv's handler + entry): ${hvc:-?} cycles per CPUID"
echo "bench: CPUID on bare Bochs (vmx=off):                  ${bare:-?} cycles per CPUID"
[ -n "$hvc" ] && [ -n "$bare" ] && echo "bench: hv's exit path costs $(echo "$hvc - $bare" | bc 2>/dev/null || echo "?") cycles per CPUID exit"
fig "$T/hv" 'hv counted'
echo "bench: hv.efi is $(( $(stat -c %s "$B/hv.efi") / 1024 )) KiB; core image $(( $(stat -c %s "$B/core.bin") / 1024 )) KiB"
fig "$T/hv" 'hv reserved' | sed 's/^hv: memory: /bench: /'
fig "$T/hv" 'core loaded at' | sed 's/^hv: /bench: /'
fig "$T/hv" 'EPT01:' | sed 's/^hv: /bench: /'

# ---- nested: an L2 CPUID exit handled by L1 (l1.efi bench mode, tests/nested/bench.c) ----
# L1's handler (an assembly loop): VMREAD exit reason, VMREAD instruction length, VMREAD
# GUEST_RIP, VMWRITE GUEST_RIP + length, VMRESUME. "handler alone" is the same loop
# without the VM entry; "halves" splits the round trip at an RDTSC in L2 (Bochs updates
# the TSC per trace of instructions, so the bare halves are only good to ~20 ticks). hv's counts
# come from VMCALL HV_HC_GET_EXITS around each window (l1.efi subtracts the VMCALL's own).
calc() { echo "scale=2; $1" | bc 2>/dev/null | sed -E 's/^(-?)\./\10./'; }
yes() { [ "$(calc "$1")" = 1 ]; }
# l1figs DIR PREFIX: PREFIX_rt (cycles per round trip), _h (handler alone), _e/_x (halves),
# _r (L0 exits per round trip), _rh (L0 exits per handler-alone iteration): "" if absent.
l1figs() {
    local l
    l=$(tr -d '\r' <"$1/serial.log" 2>/dev/null | grep -a '^l1: bench: ')
    printf -v "$2_rt" '%s' "$(sed -nE 's/.* round trips, ([0-9.]+) cycles per L2 CPUID round trip.*/\1/p' <<<"$l")"
    printf -v "$2_h" '%s' "$(sed -nE 's/.*handler alone .*: ([0-9.]+) cycles per iteration.*/\1/p' <<<"$l")"
    printf -v "$2_e" '%s' "$(sed -nE 's/.*split: .*VMRESUME to L2 ([0-9.]+) cycles.*/\1/p' <<<"$l")"
    printf -v "$2_x" '%s' "$(sed -nE 's/.*split: .*to L1.s handler ([0-9.]+) cycles.*/\1/p' <<<"$l")"
    printf -v "$2_r" '%s' "$(sed -nE 's/.*hv counted [0-9]+ L0 exits, ([0-9.]+) per round trip.*/\1/p' <<<"$l")"
    printf -v "$2_rh" '%s' "$(sed -nE 's/.*hv counted [0-9]+ L0 exits in the handler alone, ([0-9.]+) per iteration.*/\1/p' <<<"$l")"
    printf -v "$2_k" '%s' "$(sed -nE 's/.*KVM.s field pattern: ([0-9.]+) cycles per L2 CPUID round trip.*/\1/p' <<<"$l")"
    printf -v "$2_kr" '%s' "$(sed -nE 's/.*L0 exits with KVM.s field pattern, ([0-9.]+) per round trip.*/\1/p' <<<"$l")"
}
l1figs "$T/l1-bare" b
l1figs "$T/l1-hv" h
l1figs "$T/l1-hv-noshadow" n
ratio=?
[ -n "$b_rt" ] && [ -n "$h_rt" ] && ratio=$(calc "$h_rt / $b_rt")
echo "bench: L2 CPUID round trip handled by L1: bare ${b_rt:-?} cycles, on hv ${h_rt:-?} cycles, ratio ${ratio}"
echo "bench: hv L0 exits per round trip: ${h_r:-?} (floor 2: the L2 exit and L1's VMRESUME)"
echo "bench: KVM's field pattern (L1 also reads/writes KVM's hot fields, HOST_RSP included): bare ${b_k:-?} cycles, on hv ${h_k:-?} cycles, ${h_kr:-?} L0 exits per round trip (floor 2)"
if [ -n "$h_r" ] && [ -n "$h_rh" ] && [ -n "$b_h" ] && [ -n "$h_h" ]; then
    rest=$(calc "$h_r - 2")
    if yes "$rest < 0.01"; then
        echo "bench: hv is at the floor: L1's 3 VMREADs + 1 VMWRITE run without exits (VMCS shadowing; handler alone: $h_rh L0 exits, bare $b_h cycles, on hv $h_h)"
    else
        why="L1's VMREAD/VMWRITE exiting to hv (VMCS shadowing not in use)"
        yes "$h_rh < 0.01" && why="not L1's VMREAD/VMWRITE (the handler alone takes no L0 exit)"
        other=$(calc "$rest - $h_rh")
        yes "$other > 0.01 || $other < -0.01" && why="$why; $other per round trip not from the handler"
        echo "bench: the rest: $rest L0 exits per round trip; the handler alone takes $h_rh per iteration: $why"
        echo "bench: the rest costs $(calc "$h_h - $b_h") cycles per round trip (handler alone: bare $b_h, on hv $h_h), $(calc "100 * ($h_h - $b_h) / $h_rt")% of it"
    fi
fi
if [ -n "$h_e" ] && [ -n "$b_e" ] && [ -n "$h_x" ] && [ -n "$b_x" ]; then
    echo "bench: round trip in halves (L2 reads the TSC too): L1's VMRESUME to L2 bare $b_e, on hv $h_e cycles; L2's CPUID to L1's handler bare $b_x, on hv $h_x cycles"
    echo "bench: so per floor exit hv spends $(calc "$h_e - $b_e") cycles emulating L1's VMRESUME and $(calc "$h_x - $b_x") reflecting L2's exit to L1$([ -n "$hvc" ] && [ -n "$bare" ] && echo " (a CPUID exit from a plain guest: $(calc "$hvc - $bare"))")"
fi
if [ -n "$n_rt" ] && [ -n "$n_r" ]; then
    echo "bench: for comparison, hv with vmcs_shadowing=off: ${n_rt} cycles per round trip (ratio $(calc "$n_rt / $b_rt")), ${n_r} L0 exits ($(calc "$n_r - 2") above the floor; the handler alone: ${n_rh} exits, ${n_h} cycles$(yes "${n_rh:-0} > 0.01" && echo ", $(calc "($n_h - $b_h) / $n_rh") per VMREAD/VMWRITE exit"))"
fi
ok=1
for d in l1-bare l1-hv l1-hv-noshadow; do
    grep -aq 'l1: bench: [0-9]* round trips' "$T/$d/serial.log" 2>/dev/null && continue
    [ "$d" = l1-hv-noshadow ] && { echo "bench: (no figure from the vmcs_shadowing=off comparison run: $T/$d/serial.log)"; continue; }
    ok=0
    echo "bench: no figure from the $d run; its l1 lines and tail:"
    tr -d '\r' <"$T/$d/serial.log" | grep -a '^l1: ' | tail -10
    tail -5 "$T/$d/serial.log"
done
[ -n "$hvc" ] || { echo "bench: no figure from the hv run; tail of its log:"; tail -20 "$T/hv/serial.log"; exit 1; }
[ "$ok" = 1 ]
