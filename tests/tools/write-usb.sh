#!/bin/bash
# write-usb.sh DEV IMG — write hv's stick image to a USB stick, after checking that DEV is a
# whole, removable (or USB-attached) disk that nothing has mounted and that does not hold this
# system's root, /boot, /boot/efi or swap. HV_USB_DRY_RUN=1: every check, no write (tests).
set -euo pipefail
dev=${1:-} img=${2:-build/hv-usb.img}
refuse() { echo "make usb: refusing to write $dev: $*" >&2; echo "make usb: nothing was written" >&2; exit 2; }
[ -n "$dev" ] || refuse "no device named (make usb DEV=/dev/sdX)"
[ -f "$img" ] || { echo "make usb: $img missing" >&2; exit 1; }
[ -e "$dev" ] || refuse "no such device"
[ -b "$dev" ] || refuse "not a block device"
real=$(readlink -f "$dev") name=${real##*/}
sys=/sys/class/block/$name
[ -d "$sys" ] || refuse "$sys missing: cannot check the device"
[ ! -e "$sys/partition" ] || refuse "it is a partition; name the whole disk (e.g. /dev/sdb, not /dev/sdb1)"
case $name in loop*|zram*|ram*|dm-*|md*) refuse "a $name device is not a USB stick";; esac
removable=$(cat "$sys/removable" 2>/dev/null || echo 0)
tran=$(lsblk -dno TRAN "$real" 2>/dev/null | tr -d ' ' || true)
[ "$removable" = 1 ] || [ "$tran" = usb ] || refuse "not removable and not on USB (removable=$removable, transport=${tran:-unknown})"
# Mounted anywhere (the disk or any of its partitions)? Swap in use?
mounted=$(lsblk -nlo NAME,MOUNTPOINT "$real" 2>/dev/null | awk 'NF > 1 { print "/dev/" $1 " on " $2 }')
[ -z "$mounted" ] || refuse "mounted: $(echo "$mounted" | tr '\n' ';') — unmount it first"
# The disks holding this system's root, /boot, /boot/efi and swap.
for m in / /boot /boot/efi; do
    src=$(findmnt -no SOURCE "$m" 2>/dev/null || true)
    [ -b "$src" ] || continue
    for d in $(lsblk -nso NAME "$src" 2>/dev/null | sed 's/^[^a-zA-Z0-9]*//'); do
        [ "$d" = "$name" ] && refuse "it holds this system's $m"
    done
done
size=$(($(cat "$sys/size") * 512)) need=$(stat -c %s "$img")
[ "$size" -ge "$need" ] || refuse "it holds $((size >> 20)) MiB, the image needs $((need >> 20)) MiB"
model=$(cat "$sys/device/model" 2>/dev/null | sed 's/ *$//' || echo "unknown model")
if [ "${HV_USB_DRY_RUN:-0}" = 1 ]; then
    echo "make usb: $dev ($model, $((size >> 20)) MiB) passed every check; dry run: nothing written"
    exit 0
fi
echo "make usb: writing $img ($((need >> 20)) MiB) to $dev ($model, $((size >> 30)) GiB); everything on it is lost"
dd if="$img" of="$real" bs=4M conv=fsync oflag=direct status=progress
sync
command -v partprobe >/dev/null && partprobe "$real" 2>/dev/null || blockdev --rereadpt "$real" 2>/dev/null || true
echo "make usb: done: $dev now holds a GPT with one EFI System Partition (label HVBOOT):"
echo "make usb:   \\EFI\\BOOT\\BOOTX64.EFI (hv) and \\EFI\\BOOT\\hv.cfg (edit it: next= names your OS loader)"
echo "make usb: boot the machine from the stick (firmware boot menu, UEFI entry); see docs/hardware.md"
