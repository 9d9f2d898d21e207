#!/bin/bash
# Boot tests: hv.efi + hv.cfg + the test payload on one ESP image.
# QEMU (TCG: no VMX) checks the fallback; Bochs 3.0 (VMX) with 1 and 2 CPUs checks
# that firmware and payload run as hv's guest on every CPU. Boots run in parallel;
# logs stay in build/tests/<name>/serial.log.
source "$(dirname "$0")/lib.sh"
T=$B/tests
CFG=$'# boot test config\r\nnext=\\EFI\\hv\\payload.efi\r\nargs=hello from hv.cfg\r\nlog=debug\r\n'

mkdisk "$T/qemu" "$CFG" "$B/payload.efi:/EFI/hv/payload.efi"
mkdisk "$T/bochs1" "$CFG"$'nested=off\r\n' "$B/payload.efi:/EFI/hv/payload.efi"
mkdisk "$T/bochs2" "$CFG" "$B/payload.efi:/EFI/hv/payload.efi"
run_qemu "$T/qemu" 120 &
run_bochs "$T/bochs1" 1 300 &
wait
run_bochs "$T/bochs2" 2 300

for m in qemu bochs1 bochs2; do
    d=$T/$m
    echo "boot test $m:"
    expect "$m" "$d" '^hv: hv [0-9.]+ starting' "hv.efi starts and logs its version"
    expect "$m" "$d" '^hv: config .*hv.cfg: [0-9]+ bytes' "hv.cfg read from hv's own directory"
    expect "$m" "$d" '^hv: core loaded at 0x' "core loaded into reserved memory"
    expect "$m" "$d" '^hv: cpu: .* family 0x' "CPU identified"
    expect "$m" "$d" '^hv: memory: [0-9]+ MiB usable RAM; hv reserved' "reserved memory logged"
    expect "$m" "$d" '^hv: starting next stage .*payload.efi' "next stage named"
    expect "$m" "$d" '^payload: started' "payload ran"
    expect "$m" "$d" '^payload: args: hello from hv.cfg' "args= reached the payload"
    expect "$m" "$d" '^payload: canary scan: [1-9][0-9]* MiB scanned, 0 hits' "canary never found in guest memory"
    expect "$m" "$d" '^payload: done' "payload finished"
    expect_not "$m" "$d" '^hv: ERROR' "no errors logged"
done
echo "boot test qemu (no VMX):"
expect qemu "$T/qemu" '^hv: WARN: VMX unavailable: no VMX' "VMX unavailable and why"
expect qemu "$T/qemu" 'continuing without virtualization' "boots on without VMX"
expect_not qemu "$T/qemu" 'signature hvhvhvhvhvhv' "payload does not see hv"
for m in bochs1 bochs2; do
    d=$T/$m
    echo "boot test $m (VMX):"
    expect "$m" "$d" '^hv: vmx: VMCS revision 0x' "VMX capabilities logged"
    expect "$m" "$d" '^hv: EPT01: identity map' "EPT01 built"
    expect "$m" "$d" '^hv: cpu0: VMXON ok, launching the firmware as guest' "boot CPU under hv"
    expect "$m" "$d" '^payload: cpu0: hypervisor bit set' "CPUID.1:ECX[31] on cpu0"
    expect "$m" "$d" '^payload: cpu0: signature hvhvhvhvhvhv' "hv's CPUID signature on cpu0"
    expect "$m" "$d" '^payload: cpu0: hypercall version 0x200' "VMCALL version hypercall"
    expect "$m" "$d" '^payload: hv memory write: before 0x0 after 0x0 dropped' "write into hv's memory dropped, reads zero"
    expect "$m" "$d" "^hv: WARN: cpu0: guest wrote to hv's memory" "first write attempt logged"
    expect "$m" "$d" '^payload: hv memory writes \(bsp\): .*: reads zeros, [1-9][0-9]* dropped, self-check 0x0$' \
        "1/2/4/8-byte, page-straddling, REP STOSB/MOVSB writes into hv's memory dropped and counted; hv's memory intact"
    expect_not "$m" "$d" "^hv: WARN: .*step restarted" "no instruction wrote more pages of hv's than a step holds"
    expect "$m" "$d" '^hv: stats: exit statistics \(hypercall\)' "statistics on hypercall"
    expect "$m" "$d" '^hv: stats: exit statistics \(guest power-off\)' "statistics at power-off"
    expect "$m" "$d" '^hv: stats: cpu0: [0-9]+ exits, [0-9]+ VMREADs' "per-vCPU counts"
done
echo "boot test bochs1 (nested=off):"
expect bochs1 "$T/bochs1" '^payload: hv memory writes \(2 cpus at once\): skipped \(no AP' "1 CPU: no second writer"
expect bochs1 "$T/bochs1" '^payload: cpu0: vmx bit clear' "VMX hidden from the guest"
expect bochs1 "$T/bochs1" '^payload: cpu0: feature_control 0x1$' "IA32_FEATURE_CONTROL: locked, VMXON disabled"
echo "boot test bochs2 (nested on, the default):"
expect bochs2 "$T/bochs2" '^payload: cpu0: vmx bit set' "VMX offered to the guest"
expect bochs2 "$T/bochs2" '^payload: cpu0: feature_control 0x5$' "IA32_FEATURE_CONTROL: locked, VMXON enabled"
expect bochs2 "$T/bochs2" '^hv: cpu: .*, 2 CPU\(s\)' "both CPUs seen"
expect bochs2 "$T/bochs2" '^hv: cpu1: VMXON ok, launching the firmware as guest' "AP under hv"
expect bochs2 "$T/bochs2" '^hv: cpu1: SIPI vector 0x[0-9a-f]+' "AP woken by INIT-SIPI-SIPI under hv"
expect bochs2 "$T/bochs2" '^payload: cpu1: signature hvhvhvhvhvhv' "payload on the AP sees hv"
expect bochs2 "$T/bochs2" '^payload: cpu1: feature_control 0x5$' "IA32_FEATURE_CONTROL on the AP"
expect bochs2 "$T/bochs2" '^hv: stats: cpu1: [0-9]+ exits' "AP statistics"
expect bochs2 "$T/bochs2" '^payload: hv memory writes \(2 cpus at once\): reads zeros, [1-9][0-9]* dropped, self-check bsp 0x0 ap 0x0 now 0x0$' \
    "both CPUs writing the same pages of hv's at once: dropped, counted, hv's memory intact on each"
expect bochs2 "$T/bochs2" "^hv: stats: cpu1:   [1-9][0-9]* writes to hv's memory dropped" "the AP's dropped writes counted"
show_failures
echo "boot: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
