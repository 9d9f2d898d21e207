#!/bin/bash
# test-kvm: Linux's KVM as an L1 hypervisor. Debian's kernel boots as hv's next stage
# (hv -> acpi_fixture.efi -> vmlinuz, 2 CPUs) with "hvtest=kvm": /init loads irqbypass, kvm
# and kvm-intel, prints /sys/module/kvm_intel/parameters/* ("kvmtest: param NAME=VALUE")
# and runs /kvmtest (tests/linux/kvmtest.c), whose guests print one "kvmtest: NAME: ..."
# line each. The same boot on bare Bochs (hv with vmx=off starts the fixture natively, so
# kvm_intel runs on Bochs's VMX) is the reference; both run at once.
# Checks: the guests' lines as expected on bare and identical under hv; no WARNING, VMX
# instruction failure, BUG or panic in either kernel log; no hv error. kvm_intel's
# parameters must be identical too (each difference is printed with what kvm_intel needs
# for that parameter).
# Env: KVM_SEQUENTIAL=1 (one run after the other), KVM_CPUS (default 2; bench-kvm: 1), KVM_DIR (default build/kvm-test), KVM_TIMEOUT (s, default 600; a run takes about 100 s on an idle machine), BOCHS_MEGS (default 512), HV_EFI (default build/hv.efi).
# Logs: build/kvm-test/{bare,hv}/serial.log; extracted lines build/kvm-test/{bare,hv}.{guests,params}.
# kvmtest's benchmark lines ("kvmbench: ...") are not checked here: `make bench-kvm` reports them.
source "$(dirname "$0")/../boot/lib.sh"
T=${KVM_DIR:-$B/kvm-test}
CPUS=${KVM_CPUS:-2}
TMO=${KVM_TIMEOUT:-600}
export BOCHS_MEGS=${BOCHS_MEGS:-512}
KERNEL=$B/linux/vmlinuz INITRD=$B/linux/initrd.img FIXTURE=$B/acpi_fixture.efi HV_EFI=${HV_EFI:-$B/hv.efi}
KARGS='console=ttyS0 initrd=\EFI\linux\initrd.img printk.devkmsg=on hvtest=kvm'
for f in "$KERNEL" "$INITRD" "$FIXTURE" "$HV_EFI" "$BOCHS"; do
    [ -f "$f" ] || { echo "test-kvm: missing $f (run: make test-kvm)"; echo "kvm: 0 passed, 1 failed"; exit 1; }
done
if ! cpio -t <"$INITRD" 2>/dev/null | grep -qx 'lib/modules/kvm-intel.ko'; then
    echo "test-kvm: $INITRD has no KVM modules (rebuild it: make test-kvm)"; echo "kvm: 0 passed, 1 failed"; exit 1
fi

mkdisk_kvm() { # DIR HV_CFG_LINES...
    local dir=$1; shift
    mkdir -p "$dir"
    rm -f "$dir/disk.img" "$dir/disk.img.lock"
    printf '%s\r\n' "$@" >"$dir/hv.cfg"
    dd if=/dev/zero of="$dir/disk.img" bs=1M count=64 status=none
    mkfs.fat -F 16 -n HVLINUX "$dir/disk.img" >/dev/null
    mmd -i "$dir/disk.img" ::/EFI ::/EFI/BOOT ::/EFI/hv ::/EFI/linux
    mcopy -i "$dir/disk.img" "$HV_EFI" ::/EFI/BOOT/BOOTX64.EFI
    mcopy -i "$dir/disk.img" "$dir/hv.cfg" ::/EFI/BOOT/hv.cfg
    mcopy -i "$dir/disk.img" "$FIXTURE" ::/EFI/hv/acpi_fixture.efi
    mcopy -i "$dir/disk.img" "$KERNEL" ::/EFI/linux/vmlinuz
    mcopy -i "$dir/disk.img" "$INITRD" ::/EFI/linux/initrd.img
}
common=('next=\EFI\hv\acpi_fixture.efi' "args=\\EFI\\linux\\vmlinuz $KARGS" 'log=info')
mkdisk_kvm "$T/bare" '# test-kvm: bare Bochs' "${common[@]}" 'vmx=off'
# test_hooks=on: kvmtest's benchmark (tests/linux/bench-kvm.sh) reads hv's exit counts from user space.
mkdisk_kvm "$T/hv" '# test-kvm: KVM as L1' "${common[@]}" 'test_hooks=on'

# A panic, an hv error or a reset will not power off: stop that run soon after.
STOP_RE='Kernel panic|hv: ERROR|triple fault'
watch_log() { # DIR SUBSHELL_PID
    local d=$1 sub=$2 why= p
    while kill -0 "$sub" 2>/dev/null; do
        sleep 5
        if tr -d '\r' <"$d/serial.log" 2>/dev/null | grep -qaE "$STOP_RE"; then
            why=$(tr -d '\r' <"$d/serial.log" | grep -aE -m1 "$STOP_RE"); sleep 10
        elif [ "$(tr -d '\r' <"$d/serial.log" 2>/dev/null | grep -ac 'BdsDxe: starting Boot')" -gt 1 ]; then
            why="the machine reset (firmware booted again)"
        elif [ "$(stat -c %s "$d/bochs.log" 2>/dev/null || echo 0)" -gt $((200 << 20)) ]; then
            why="bochs.log over 200 MiB"
        fi
        if [ -n "$why" ]; then
            for p in $(pgrep -P "$sub"); do kill "$p" 2>/dev/null; done
            echo "test-kvm: stopped ${d##*/} early: $why"; return
        fi
    done
}
boot() { # NAME: one Bochs run with its watcher
    local d=$T/$1 sub w
    run_bochs "$d" "$CPUS" "$TMO" 2>/dev/null &
    sub=$!
    watch_log "$d" "$sub" &
    w=$!
    wait "$sub"; kill "$w" 2>/dev/null; wait "$w" 2>/dev/null
    local l=$d/bochs.log # keep a flooded log readable
    if [ "$(stat -c %s "$l" 2>/dev/null || echo 0)" -gt $((8 << 20)) ]; then
        { head -n 3000 "$l"; echo "... (trimmed) ..."; tail -n 3000 "$l"; } >"$l.trim"; mv "$l.trim" "$l"
    fi
}
echo "test-kvm: booting Debian's $(sed 's/_amd64.deb//' "$B/linux/stamp" 2>/dev/null) on bare Bochs and under hv at once, $CPUS CPUs each, timeout ${TMO}s"
start=$(date +%s)
if [ -n "$KVM_SEQUENTIAL" ]; then boot bare; boot hv # bench-kvm: one Bochs at a time (ticks are the same)
else boot bare & boot hv & wait; fi
echo "test-kvm: both runs ended after $(($(date +%s) - start))s (bare $(cat "$T/bare/elapsed")s status $(cat "$T/bare/rc"), hv $(cat "$T/hv/elapsed")s status $(cat "$T/hv/rc"))"

# The kernel's part of a log: from "Linux version" on, without hv's own lines.
klog() { tr -d '\r' <"$T/$1/serial.log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | sed -n '/Linux version/,$p' | grep -av '^hv: '; }
for r in bare hv; do
    klog $r | grep -ao 'kvmtest: param .*' | sed 's/^kvmtest: param //' >"$T/$r.params"
    klog $r | grep -ao 'kvmtest: .*' | grep -av '^kvmtest: param ' >"$T/$r.guests"
done

ok() { PASS=$((PASS + 1)); echo "  ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "  FAIL $1"; FAILED_DIRS+=("$2"); }
for r in bare hv; do
    d=$T/$r
    for m in irqbypass kvm kvm-intel; do
        if klog $r | grep -qaF "init: loaded $m.ko"; then ok "$r: /init loaded $m.ko"
        else bad "$r: /init did not load $m.ko: $(klog $r | grep -a -m1 "init: loading $m.ko")" "$d"; fi
    done
    if [ -s "$T/$r.params" ]; then ok "$r: kvm_intel's parameters ($(wc -l <"$T/$r.params") files)"
    else bad "$r: no kvm_intel parameters printed" "$d"; fi
    if grep -qx 'kvmtest: done, 0 error(s)' "$T/$r.guests"; then ok "$r: kvmtest ran all guests without error"
    else bad "$r: kvmtest did not end with 'done, 0 error(s)': $(grep -a -m1 -E 'ERROR|done|killed' "$T/$r.guests" "$d/serial.log" | head -1)" "$d"; fi
    # Kernel log problems: WARN() ("WARNING: CPU: N PID: ... at FILE"; KVM WARNs on a
    # failed VMWRITE, "vmwrite failed: field=..."), VMX instruction errors, BUG, Oops, panic.
    # Not the boot's "RETBleed: WARNING: ..." (a mitigation notice about Bochs's CPU model).
    probs=$(klog $r | grep -avE '^(\[ *[0-9.]+\] )?(kvmtest|init): ' |
        grep -aE 'WARNING: CPU|cut here|vm(write|read|clear|ptrld|launch|resume)[^ ]* (failed|error)|inv(ept|vpid)[^ ]* (failed|error)|VMX.*(fail|error|not supported)|kvm.*(failed|error)|BUG:|Oops|Kernel panic|Call Trace' | head -5)
    if [ -z "$probs" ]; then ok "$r: no WARNING, VMX failure, BUG or panic in the kernel log"
    else bad "$r: kernel log problems:" "$d"; sed 's/^/         /' <<<"$probs"; fi
    if grep -q 'ACPI control: soft power off' "$d/bochs.log" 2>/dev/null; then ok "$r: powered off (ACPI S5)"
    else bad "$r: Bochs did not power off (exit status $(cat "$d/rc"): 124 timeout, 143 stopped early)" "$d"; fi
done
expect_not kvm-hv "$T/hv" '^hv: ERROR' "no hv errors"
expect kvm-hv "$T/hv" 'hv: stats: exit statistics \(guest power-off\)' "hv's statistics at power-off"
expect kvm-hv "$T/hv" 'hv: stats: cpu0: +nested: [1-9][0-9]* VM entries into L2' "cpu0 ran KVM's guests as L2"
expect kvm-hv "$T/hv" 'hv: stats: cpu1: +nested: [1-9][0-9]* VM entries into L2' "cpu1 ran KVM's guests as L2"

# What the guests must do (tests/linux/kvmtest.c): their exits to user space, in order.
EXPECTED=(
    'kvmtest: api 12'
    'kvmtest: realmode: out:0x10/1=0x0 out:0x10/1=0x1 out:0x10/1=0x2 out:0x10/1=0x3 out:0x10/1=0x4 hlt(rip=0x100c)'
    'kvmtest: longmode: out:0x10/4=0x12345678 in:0x11/4 mmio-w:0x300000/4=0xcafef00d mmio-r:0x300008/8 out:0x10/4=0x55667788 out:0x10/4=0x11223344 hlt(rip=0x10021)'
    'kvmtest: irq: out:0x12/1=0x0 [KVM_INTERRUPT 0x20] out:0x11/2=0x1014 hlt(rip=0x1015)'
    'kvmtest: irq-window: out:0x12/1=0x0 (not-ready:if=0) irq-window [KVM_INTERRUPT 0x20] out:0x11/2=0x1015 hlt(rip=0x1016)'
    'kvmtest: smp vcpu0: out:0x20/2=0xc8 hlt(rip=0x1019) on-cpu0'
    'kvmtest: smp vcpu1: out:0x21/2=0xc8 hlt(rip=0x1119) on-cpu1'
    'kvmtest: done, 0 error(s)'
)
printf '%s\n' "${EXPECTED[@]}" >"$T/expected.guests"
for r in bare hv; do
    if cmp -s "$T/expected.guests" "$T/$r.guests"; then ok "$r: the guests' ${#EXPECTED[@]} lines are as expected"
    else bad "$r: the guests' lines differ from the expected ones (- expected, + $r):" "$T/$r"
        diff "$T/expected.guests" "$T/$r.guests" | grep -a '^[<>]' | sed 's/^</         -/; s/^>/         +/'; fi
done
if [ -s "$T/bare.guests" ] && cmp -s "$T/bare.guests" "$T/hv.guests"; then ok "hv: the guests' lines are identical to bare Bochs's"
else bad "hv: the guests' lines differ from bare Bochs's (- bare, + hv):" "$T/hv"
    diff "$T/bare.guests" "$T/hv.guests" | grep -a '^[<>]' | sed 's/^</         -/; s/^>/         +/'; fi

# kvm_intel's parameters: the features kvm_intel found in L1's VMX capability MSRs.
if [ ! -s "$T/bare.params" ] || [ ! -s "$T/hv.params" ]; then
    echo "  skip kvm_intel's parameters: a run printed none (failed above)"
elif cmp -s "$T/bare.params" "$T/hv.params"; then
    ok "hv: kvm_intel's parameters are identical to bare Bochs's"
else
    # What kvm_intel (6.1, hardware_setup) needs in L1's VMX capability MSRs for each.
    declare -A NEEDS=(
        [enable_apicv]="'use TPR shadow', 'APIC-register virtualization', 'virtual-interrupt delivery', 'process posted interrupts'"
        [flexpriority]="'use TPR shadow' and 'virtualize APIC accesses'"
        [enable_shadow_vmcs]="'VMCS shadowing'"
        [eptad]="EPT accessed/dirty flags, IA32_VMX_EPT_VPID_CAP[21]"
        [pml]="'enable PML' and EPT accessed/dirty flags"
        [ple_gap]="'PAUSE-loop exiting'" [ple_window]="'PAUSE-loop exiting'"
        [ple_window_grow]="'PAUSE-loop exiting'" [ple_window_max]="'PAUSE-loop exiting'"
        [ple_window_shrink]="'PAUSE-loop exiting'" [preemption_timer]="'activate VMX-preemption timer'"
        [unrestricted_guest]="'unrestricted guest'" [ept]="'enable EPT'" [vpid]="'enable VPID'"
        [vnmi]="'virtual NMIs'"
    )
    while IFS='=' read -r name b h; do
        [ "$b" = "$h" ] && continue
        echo "  kvm_intel parameter $name: bare $b, hv $h${NEEDS[$name]:+ (kvm_intel needs ${NEEDS[$name]})}"
    done < <(join -t= -a1 -a2 -e '<none>' -o 0,1.2,2.2 "$T/bare.params" "$T/hv.params")
    bad "hv: kvm_intel's parameters differ from bare Bochs's" "$T/hv"
fi
show_failures
echo "test-kvm: wall time $(($(date +%s) - start))s"
echo "kvm: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
