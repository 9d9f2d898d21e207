#!/bin/bash
# From stick to OS (issue 10): `make usb` builds a GPT stick image; write-usb.sh refuses
# disks that are not a stick; `make run-qemu` boots it; hv on the stick finds the OS loader on
# a second disk by label or partition GUID through a list of next= candidates (QEMU and
# Bochs, where the loader runs as hv's guest), and falls back to the firmware's next boot
# option when none starts. Boots run in parallel; logs in build/tests/usb-*/serial.log.
source "$(dirname "$0")/lib.sh"
T=$B/tests
cd "$ROOT"; mkdir -p "$T"
GUID=4a8b1d52-3f2e-4c1a-9d6b-0e5f7a2c9b31 # the second disk's ESP, "Debian's"
rm -f "$B/hv-usb.img"
make --no-print-directory usb >"$T/usb-make.out" 2>&1; mrc=$?

# The stick: hv as the removable-media loader, the test's hv.cfg; the "installed" disk: an ESP
# labelled EFI with the payload as Debian's shim (and as its fallback loader, for the firmware).
stick() { # DIR CFG
    mkdir -p "$1"; printf '%s' "$2" >"$1/hv.cfg"
    tests/tools/mkgpt.sh "$1/disk.img" HVBOOT "" "$B/hv.efi:/EFI/BOOT/BOOTX64.EFI" "$1/hv.cfg:/EFI/BOOT/hv.cfg"
    tests/tools/mkgpt.sh "$1/disk2.img" EFI "$GUID" "$B/payload.efi:/EFI/debian/shimx64.efi" \
        "$B/payload.efi:/EFI/BOOT/BOOTX64.EFI"
}
CROSS=$'# candidates in order: no such volume, no such file, then the partition by GUID\r\n'
CROSS+=$'next=label:NOSUCH:\\EFI\\debian\\shimx64.efi\r\nnext=label:efi:/EFI/debian/missing.efi\r\n'
CROSS+="next=guid:$GUID:\\EFI\\debian\\shimx64.efi"$'\r\nargs=hello from the other disk\r\nlog=debug\r\n'
stick "$T/usb-qemu" "$CROSS"
stick "$T/usb-bochs" "$CROSS"$'nested=off\r\n'
# By label, then the fallback: nothing of the list starts, the firmware boots the second disk.
stick "$T/usb-label" $'next=label:EFI:\\EFI\\debian\\shimx64.efi\r\nargs=by label\r\n'
stick "$T/usb-fallback" $'next=label:NOSUCH:\\x.efi\r\nnext=\\EFI\\BOOT\\nothere.efi\r\nargs=from hv.cfg\r\n'
run_qemu "$T/usb-qemu" 120 &
run_qemu "$T/usb-label" 120 &
wait
run_bochs "$T/usb-bochs" 1 300 &
run_qemu "$T/usb-fallback" 120 &
mkdir -p "$T/usb-runqemu"
HV_QEMU_TIMEOUT=60 make --no-print-directory run-qemu </dev/null 2>&1 | tr -d '\r' >"$T/usb-runqemu/serial.log"
wait

echo "make usb:"
ok() { PASS=$((PASS + 1)); echo "  ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "  FAIL $1"; }
img=$B/hv-usb.img
[ $mrc -eq 0 ] && [ -f "$img" ] && ok "make usb builds build/hv-usb.img" || { bad "make usb (exit $mrc)"; cat "$T/usb-make.out"; }
sfdisk -d "$img" 2>/dev/null | grep -q '^label: gpt' && ok "a GPT disk" || bad "no GPT on $img"
sfdisk -d "$img" 2>/dev/null | grep -qi 'start= *2048, .*type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B' &&
    ok "one EFI System Partition at 1 MiB" || bad "no ESP at 1 MiB"
ls=$(mdir -b -i "$img@@1M" ::/EFI/BOOT 2>/dev/null | tr '[:lower:]' '[:upper:]')
grep -q 'BOOTX64.EFI' <<<"$ls" && cmp -s <(mtype -i "$img@@1M" ::/EFI/BOOT/BOOTX64.EFI) "$B/hv.efi" &&
    ok "hv.efi is \\EFI\\BOOT\\BOOTX64.EFI" || bad "BOOTX64.EFI missing or not hv.efi"
mtype -i "$img@@1M" ::/EFI/BOOT/hv.cfg 2>/dev/null | grep -q '^#next=label:' && ok "a commented hv.cfg" || bad "hv.cfg missing"
minfo -i "$img@@1M" :: 2>/dev/null | grep -q 'disk type="FAT32' && ok "FAT32" || bad "not FAT32"

gcc -O2 -Wall -Wextra -Werror -o "$T/hvlog" tests/tools/hvlog.c 2>"$T/hvlog.err" && ok "tests/tools/hvlog.c builds (the Linux reader of hv's log ring)" ||
    { bad "tests/tools/hvlog.c does not build"; cat "$T/hvlog.err"; }

echo "make usb DEV= (dry run: checks only):"
refuses() { # WHY DEV — write-usb.sh must refuse DEV, naming WHY
    local out rc
    out=$(HV_USB_DRY_RUN=1 make --no-print-directory usb DEV="$2" 2>&1); rc=$?
    if [ $rc -ne 0 ] && grep -qE "refusing to write $2: .*($1)" <<<"$out" && grep -q 'nothing was written' <<<"$out"; then
        ok "refuses $2: $(grep -m1 refusing <<<"$out" | sed 's/.*refusing to write //')"
    else bad "$2 not refused for '$1' (exit $rc): $out"; fi
}
refuses "no such device" /dev/hv-no-such-disk
refuses "not a block device" "$img"
sysdisk=$(lsblk -nso NAME "$(findmnt -no SOURCE /)" 2>/dev/null | tail -1 | sed 's/^[^a-zA-Z0-9]*//')
if [ -n "$sysdisk" ] && [ -b "/dev/$sysdisk" ]; then
    refuses "not removable|mounted|holds this system" "/dev/$sysdisk"
else
    echo "  (no block device holds / here: the system-disk refusal is not exercised)"
fi
[ -e /dev/loop0 ] && refuses "not a USB stick" /dev/loop0

d=$T/usb-runqemu
echo "make run-qemu (HV_QEMU_TIMEOUT=60):"
expect run-qemu "$d" '^run-qemu: (TCG|KVM): ' "says which accelerator and why"
if [ -e /dev/kvm ] && grep -qw vmx /proc/cpuinfo; then :; else
    expect run-qemu "$d" '^run-qemu: TCG: (/dev/kvm|the CPU has no VMX)' "TCG here: no KVM or no VMX"; fi
expect run-qemu "$d" '^hv: hv [0-9.]+ starting' "hv starts from the stick image"
expect run-qemu "$d" '^hv: config \\EFI\\BOOT\\hv.cfg: [0-9]+ bytes$' "the stick's hv.cfg parses cleanly"
expect run-qemu "$d" '^hv: no next= in hv.cfg: returning to the firmware' "no next=: the firmware's next boot option"

for m in usb-qemu usb-bochs; do
    d=$T/$m
    echo "cross-device next= ($m):"
    expect "$m" "$d" '^hv: next: candidate 1 of 3: label:NOSUCH:' "candidates tried in order"
    expect "$m" "$d" '^hv: WARN: next: no volume with label NOSUCH; the volumes hv sees:' "a missing label is logged"
    expect "$m" "$d" "^hv: next: volume [0-9]+: label \"EFI\", partition GUID $GUID, " "... with the volumes hv saw"
    expect "$m" "$d" '^hv: next: candidate 2 of 3: label:efi:\\EFI\\debian\\missing.efi' "then the second candidate"
    expect "$m" "$d" '^hv: next: label efi is .*HD\(' "label found (any case), on a partition"
    expect "$m" "$d" '^hv: WARN: next stage label:efi:.*LoadImage of \\EFI\\debian\\missing.efi failed: file not found' \
        "a missing file is logged"
    expect "$m" "$d" "^hv: next: partition GUID $GUID is .*HD\\(" "partition found by its GUID"
    expect "$m" "$d" "^hv: starting next stage guid:$GUID:\\\\EFI\\\\debian\\\\shimx64.efi with args" "the third one starts"
    expect "$m" "$d" '^payload: args: hello from the other disk' "the loader on the other disk runs with args="
    expect_not "$m" "$d" '^hv: ERROR' "no errors"
done
expect usb-bochs "$T/usb-bochs" '^payload: cpu0: signature hvhvhvhvhvhv' "the other disk's loader runs as hv's guest (Bochs, VMX)"
expect usb-bochs "$T/usb-bochs" '^payload: done' "and finishes"
echo "by label (usb-label):"
expect usb-label "$T/usb-label" '^hv: starting next stage label:EFI:\\EFI\\debian\\shimx64.efi' "label:EFI: starts the loader"
expect usb-label "$T/usb-label" '^payload: args: by label' "which runs"
echo "fallback to the firmware (usb-fallback):"
d=$T/usb-fallback
expect usb-fallback "$d" '^hv: WARN: next stage \\EFI\\BOOT\\nothere.efi: LoadImage of \\EFI\\BOOT\\nothere.efi failed: file not found' \
    "a path on hv's own device, tried second"
expect usb-fallback "$d" '^hv: WARN: next: none of the 2 next= candidate\(s\) started: returning to the firmware' \
    "none started: back to the firmware"
expect usb-fallback "$d" '^payload: started' "the firmware booted its next boot option (the second disk)"
expect_not usb-fallback "$d" '^payload: args: from hv.cfg' "not started by hv (no args from hv.cfg)"
show_failures
echo "usb: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
