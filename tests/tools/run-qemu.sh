#!/bin/bash
# run-qemu.sh IMG [qemu options...] — boot IMG (hv's stick image) under QEMU with OVMF, hv's log
# on this terminal. KVM with -cpu host,+vmx when /dev/kvm is usable and the CPU has VMX (hv then
# runs in VMX root mode of the nested VM); TCG otherwise, where the CPU has no VMX and hv logs
# why it steps aside. HV_QEMU_TIMEOUT=N stops QEMU after N seconds (tests).
set -uo pipefail
img=${1:-build/hv-usb.img}; shift || true
ovmf=${OVMF:-/usr/share/ovmf/OVMF.fd}
[ -f "$img" ] || { echo "run-qemu: $img missing (make usb)" >&2; exit 1; }
[ -f "$ovmf" ] || { echo "run-qemu: $ovmf missing (apt-get install ovmf)" >&2; exit 1; }
why=""
if [ ! -e /dev/kvm ]; then why="/dev/kvm does not exist (no KVM module, or inside a VM without nested virtualization)"
elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then why="/dev/kvm is not readable and writable by $(id -un) (add yourself to group kvm)"
elif ! grep -qw vmx /proc/cpuinfo; then why="the CPU has no VMX (hv needs Intel VT-x; an AMD CPU or VT-x off in the firmware)"
fi
if [ -z "$why" ]; then
    accel=(-enable-kvm -cpu host,+vmx)
    echo "run-qemu: KVM: /dev/kvm is usable and the CPU has VMX: -enable-kvm -cpu host,+vmx (hv runs as a nested hypervisor)"
else
    accel=(-accel tcg -cpu max)
    echo "run-qemu: TCG: $why; TCG has no VMX, so hv logs 'VMX unavailable' and boots on without virtualizing"
fi
# A copy: the firmware and hv may write to the stick (hv.log), the image stays as built.
run=$(dirname "$img")/run-qemu
mkdir -p "$run"; cp --sparse=always "$img" "$run/disk.img"
echo "run-qemu: hv's serial log follows; quit with Ctrl-A X"
to=()
[ -n "${HV_QEMU_TIMEOUT:-}" ] && to=(timeout --foreground -k 5 "$HV_QEMU_TIMEOUT")
"${to[@]}" qemu-system-x86_64 -machine q35 -m 1024 "${accel[@]}" -bios "$ovmf" \
    -drive file="$run/disk.img",format=raw,if=none,id=stick -device qemu-xhci -device usb-storage,drive=stick,bootindex=0 \
    -display none -serial mon:stdio -net none "$@"
