#!/bin/bash
# Device isolation (docs/architecture.md, "Device isolation"): QEMU q35 with an Intel IOMMU
# (-device intel-iommu: a DMAR table and one remapping unit). TCG has no VMX, so hv keeps
# DMA remapping on while boot services run and polls the fault records from a UEFI timer.
# The payload ("dma") has the disk controller read sectors into hv's region, which must be
# blocked (hv's page unchanged, the fault logged by hv) and into its own page, which must work;
# the next stage itself is read from disk by DMA too. Two more boots: dma_protect=off and no
# IOMMU, where hv goes on as before. Logs: build/tests/dma-*/serial.log, qemu.out.
source "$(dirname "$0")/lib.sh"
T=$B/tests
P=$'next=\\EFI\\hv\\payload.efi\r\nargs=dma\r\n'

# run_qemu_iommu DIR TIMEOUT [-device intel-iommu]
run_qemu_iommu() {
    local dir=$1 t=$2; shift 2
    : >"$dir/serial.log"
    timeout --foreground -k 5 "$t" qemu-system-x86_64 -machine q35 "$@" -m 256 -bios "$OVMF" \
        -drive file="$dir/disk.img",format=raw,if=none,id=d1 -device ide-hd,drive=d1,bus=ide.0,bootindex=0 \
        -display none -serial file:"$dir/serial.log" -monitor none -no-reboot -net none >"$dir/qemu.out" 2>&1
    echo $? >"$dir/rc"
}

mkdisk "$T/dma-on" "$P" "$B/payload.efi:/EFI/hv/payload.efi"
mkdisk "$T/dma-off" "$P"$'dma_protect=off\r\n' "$B/payload.efi:/EFI/hv/payload.efi"
mkdisk "$T/dma-none" "$P" "$B/payload.efi:/EFI/hv/payload.efi"
run_qemu_iommu "$T/dma-on" 60 -device intel-iommu
run_qemu_iommu "$T/dma-off" 60 -device intel-iommu
run_qemu_iommu "$T/dma-none" 60

d=$T/dma-on
echo "dma test: QEMU q35 + intel-iommu, no VMX, dma_protect on (the default):"
expect dma-on "$d" '^hv: dma: DMAR at 0x[0-9a-f]+: 1 unit\(s\)' "DMAR table found and parsed"
expect dma-on "$d" '^hv: dma: unit 0 at 0xfed90000: VT-d [0-9]+\.[0-9]+, CAP 0x' "the unit's version and capabilities"
expect dma-on "$d" "^hv: dma: [34]-level identity map of \[0, 0x[0-9a-f]+\) without hv's region" "identity tables without hv's region"
expect dma-on "$d" '^hv: dma: unit 0: remapping on' "translation enabled"
expect dma-on "$d" '^hv: WARN: dma: hv does not virtualize this machine: DMA remapping stays on' "without VMX: stays on, says so"
expect dma-on "$d" '^payload: started' "the next stage was read from disk (DMA outside hv's region works)"
expect dma-on "$d" "^payload: dma: disk read into hv's region at 0x[0-9a-f]+ .*: status 0x[0-9a-f]+, hv's page unchanged$" \
    "a disk read into hv's region leaves hv's page as it was"
expect dma-on "$d" '^payload: dma: disk read elsewhere at 0x[0-9a-f]+: status 0x0, boot sector signature 55aa, label HVTEST' \
    "a disk read into the payload's page brings the boot sector"
expect dma-on "$d" '^hv: dma: unit 0: translation off \(1 fault\(s\), 1 on hv.s region\)' \
    "at ExitBootServices: translation off, one fault counted, on hv's region"
expect dma-on "$d" '^payload: dma: boot services exited' "the payload exited boot services"
expect dma-on "$d" '^payload: done' "payload finished"
expect_not dma-on "$d" '^hv: (ERROR|FATAL)' "no errors logged"
# The page the payload aimed at is hv's (as hv logged its region), and hv's fault line names it.
log=$(tr -d '\r' <"$d/serial.log")
target=$(sed -n "s/^payload: dma: disk read into hv's region at \(0x[0-9a-f]*\) .*/\1/p" <<<"$log" | head -1)
region=$(sed -n "s/^hv: dma: .*without hv's region \(0x[0-9a-f]*\)-\(0x[0-9a-f]*\):.*/\1 \2/p" <<<"$log" | head -1)
if [ -n "$target" ] && [ -n "$region" ] && (( target >= ${region% *} && target <= ${region#* } )); then
    PASS=$((PASS + 1)); echo "  ok   dma-on: the payload's target $target is inside hv's region ${region/ /-}"
else
    FAIL=$((FAIL + 1)); echo "  FAIL dma-on: target '$target' not inside hv's region '$region'"; FAILED_DIRS+=("$d")
fi
expect dma-on "$d" "^hv: WARN: dma: device 00:1f\.2 write to hv memory at ${target:-none} blocked \(unit 0, fault reason 0x5" \
    "hv logs the blocked write: the AHCI controller 00:1f.2, the address, the reason"
if grep -q "detected translation failure (dev=00:1f:02, iova=${target:-none})" "$d/qemu.out"; then
    PASS=$((PASS + 1)); echo "  ok   dma-on: QEMU's IOMMU reports the same DMA as blocked"
else
    FAIL=$((FAIL + 1)); echo "  FAIL dma-on: QEMU reported no translation failure at ${target:-none}"; FAILED_DIRS+=("$d")
fi

d=$T/dma-off
echo "dma test: dma_protect=off:"
expect dma-off "$d" '^hv: WARN: dma: dma_protect=off in hv.cfg' "the key is honoured and logged"
expect_not dma-off "$d" '^hv: dma: unit 0: remapping on' "no remapping"
expect dma-off "$d" '^hv: hv not active: its [0-9]+ KiB wiped' "hv steps aside as before"
expect dma-off "$d" '^payload: done' "payload finished"

d=$T/dma-none
echo "dma test: no IOMMU (no DMAR table):"
expect dma-none "$d" '^hv: WARN: dma: no DMAR table' "no DMAR: said so"
expect dma-none "$d" '^hv: hv not active: its [0-9]+ KiB wiped' "hv steps aside as before"
expect dma-none "$d" '^payload: dma: disk read elsewhere at 0x[0-9a-f]+: status 0x0, boot sector signature 55aa' \
    "disk reads work"
expect dma-none "$d" '^payload: done' "payload finished"
show_failures
echo "dma: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
