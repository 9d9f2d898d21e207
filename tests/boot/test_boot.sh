#!/bin/bash
# Boot tests: hv.efi + hv.cfg + the test payload on one ESP image.
# QEMU (TCG: no VMX) checks the fallback; Bochs 3.0 (VMX) with 1 and 2 CPUs
# checks VMX operation. Runs boots in parallel; logs stay in build/tests/.
source "$(dirname "$0")/lib.sh"
T=$B/tests
CFG=$'# boot test config\r\nnext=\\EFI\\hv\\payload.efi\r\nargs=hello from hv.cfg\r\nlog=debug\r\n'

mkdisk "$T/qemu" "$CFG" "$B/payload.efi:/EFI/hv/payload.efi"
mkdisk "$T/bochs1" "$CFG" "$B/payload.efi:/EFI/hv/payload.efi"
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
    expect "$m" "$d" '^payload: done' "payload finished"
    expect_not "$m" "$d" '^hv: ERROR' "no errors logged"
done
expect qemu "$T/qemu" '^hv: WARN: VMX unavailable: no VMX' "QEMU/TCG: VMX unavailable and why"
expect qemu "$T/qemu" 'continuing without virtualization' "QEMU/TCG: boots on without VMX"
for m in bochs1 bochs2; do
    expect "$m" "$T/$m" '^hv: vmx: VMCS revision 0x' "VMX capabilities logged"
    expect "$m" "$T/$m" '^hv: cpu0: VMXON ok' "VMXON on the boot CPU"
    expect "$m" "$T/$m" '^hv: cpu0: VMXOFF ok' "VMXOFF on the boot CPU"
done
expect bochs2 "$T/bochs2" '^hv: cpu: .*, 2 CPU\(s\)' "both CPUs seen"
expect bochs2 "$T/bochs2" '^hv: cpu1: VMXON ok' "VMXON on the AP"
expect bochs2 "$T/bochs2" '^hv: cpu1: VMXOFF ok' "VMXOFF on the AP"
show_failures
echo "boot: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
