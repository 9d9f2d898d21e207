#!/bin/bash
# `make bench`: figures, not a timed test. Bochs TSC ticks ≈ instructions, so the
# numbers are path lengths. Boots (in parallel, 1 CPU each): hv + payload bench, and
# the same with vmx=off (bare Bochs: CPUID does not exit).
source "$(dirname "$0")/lib.sh"
T=$B/bench
mkdisk "$T/hv" $'next=\\EFI\\hv\\payload.efi\nargs=bench\n' "$B/payload.efi:/EFI/hv/payload.efi"
mkdisk "$T/bare" $'next=\\EFI\\hv\\payload.efi\nargs=bench\nvmx=off\n' "$B/payload.efi:/EFI/hv/payload.efi"
run_bochs "$T/hv" 1 300 &
run_bochs "$T/bare" 1 300 &
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
[ -n "$hvc" ] || { echo "bench: no figure from the hv run; tail of its log:"; tail -20 "$T/hv/serial.log"; exit 1; }
