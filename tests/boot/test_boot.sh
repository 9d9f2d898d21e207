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
# A fatal error on purpose (hv's test hook, test_hooks=on): the run must stop at once.
FATAL_TIMEOUT=300
mkdisk "$T/fatal" $'next=\\EFI\\hv\\payload.efi\r\nargs=fatal\r\ntest_hooks=on\r\n' "$B/payload.efi:/EFI/hv/payload.efi"
run_qemu "$T/qemu" 120 &
run_bochs "$T/bochs1" 1 300 &
wait
run_bochs "$T/bochs2" 2 300 &
run_bochs "$T/fatal" 2 $FATAL_TIMEOUT >"$T/fatal/run.out" &
wait

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
    expect "$m" "$d" '^payload: debug: single-step: #DB after CPUID yes, after RDMSR yes, after NOP yes, 7 in all, DR6.BS 1$' \
        "single-stepping over CPUID and RDMSR traps after each (7 steps, as on bare Bochs)"
    expect_not "$m" "$d" '^hv: ERROR' "no errors logged"
    expect_not "$m" "$d" '^hv: FATAL' "no fatal error"
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
    expect "$m" "$d" '^payload: log ring: [1-9][0-9]+ bytes from position 0 to [1-9][0-9]+ in [0-9]+ calls, [1-9][0-9]* lines; first: "hv: core ' \
        "hv's log ring read back through HV_HC_LOG_READ, from the core's first line"
    expect "$m" "$d" '^payload: log ring: has the VMXON line: yes; whole lines: yes' "the ring holds what the serial log showed"
    expect "$m" "$d" '^hv: stats: exit statistics \(hypercall\)' "statistics on hypercall"
    expect "$m" "$d" '^hv: stats: exit statistics \(guest power-off\)' "statistics at power-off"
    expect "$m" "$d" '^hv: stats: cpu0: [0-9]+ exits, [0-9]+ VMREADs' "per-vCPU counts"
    expect "$m" "$d" '^payload: debug: DR7 0xd0401 after 1000 CPUID and 100 RDMSR \(hv counted [0-9]{4,} exits\); watchpoint #DB 1 time\(s\)' \
        "a hardware watchpoint survives 1100 exits: DR7 kept, #DB once"
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
echo "boot test fatal (2 CPUs, test_hooks=on, the payload asks for a fatal error):"
d=$T/fatal
cat "$d/run.out"
expect fatal "$d" "^hv: WARN: test_hooks=on in hv.cfg" "test hooks announced"
expect fatal "$d" '^payload: fatal: asking hv for a fatal error' "the payload asks"
expect fatal "$d" '^hv: FATAL: cpu0: test hook: the guest asked for a fatal error' "why"
expect fatal "$d" '^hv: FATAL: cpu0: exit reason 18 \(VMCALL\), qualification 0x0, VM-instruction error [0-9]+, guest L1 \(vmcs01\)' \
    "exit reason, qualification, VM-instruction error"
expect fatal "$d" '^hv: FATAL: cpu0: guest rip 0x[0-9a-f]+ rsp 0x[0-9a-f]+ cr0 0x[0-9a-f]+ cr3 0x[0-9a-f]+ cr4 0x[0-9a-f]+' \
    "guest RIP, RSP, CR0, CR3, CR4"
expect fatal "$d" '^hv: FATAL: cpu0: hv rip 0x[0-9a-f]+; hv is loaded at 0x[0-9a-f]+' "hv's rip and load base"
expect fatal "$d" '^hv: FATAL: cpu0: backtrace \(raw return addresses, innermost first\): 0x' "a backtrace"
expect fatal "$d" '^hv: FATAL: cpu1: stopped: cpu0 hit a fatal error' "the other CPU stopped (INIT IPI)"
expect fatal "$d" '^hv: FATAL: cpu0: halted; 1 of 1 other CPU\(s\) stopped \(on_fatal=halt' "halted, as on_fatal=halt says"
expect_not fatal "$d" '^payload: (fatal: hv returned|done)' "the guest never ran on"
# The addresses resolve in core.elf: hv's rip in handle_vmcall, the chain through vmexit_handler.
rip=$(tr -d '\r' <"$d/serial.log" | sed -n 's/^hv: FATAL: cpu0: hv rip 0x\([0-9a-f]*\); hv is loaded at 0x\([0-9a-f]*\).*/\1 \2/p' | head -1)
bt=$(tr -d '\r' <"$d/serial.log" | sed -n 's/^hv: FATAL: cpu0: backtrace ([^)]*)[^:]*://p' | tr '\n' ' ')
funcs=""
if [ -n "$rip" ]; then
    base=$((16#${rip#* }))
    for a in 0x${rip% *} $bt; do
        funcs+="$(addr2line -f -e "$B/core.elf" "$(printf '0x%x' $((a - base - 1)))" | head -1) "
    done
fi
echo "  (hv rip and backtrace resolve to: $funcs)"
if [[ "$funcs" == "handle_vmcall "*vmexit_handler* ]]; then
    PASS=$((PASS + 1)); echo "  ok   fatal: addr2line -e build/core.elf names handle_vmcall, then vmexit_handler in the backtrace"
else
    FAIL=$((FAIL + 1)); echo "  FAIL fatal: addresses resolve to '$funcs', want handle_vmcall ... vmexit_handler"; FAILED_DIRS+=("$d")
fi
el=$(cat "$d/elapsed" 2>/dev/null || echo 9999)
if [ -f "$d/fatal" ] && [ "$el" -lt $((FATAL_TIMEOUT / 5)) ]; then
    PASS=$((PASS + 1)); echo "  ok   fatal: the run stopped at hv's report after $el s (timeout $FATAL_TIMEOUT s)"
else
    FAIL=$((FAIL + 1)); echo "  FAIL fatal: run took $el s (timeout $FATAL_TIMEOUT s), fatal marker $( [ -f "$d/fatal" ] && echo seen || echo 'not seen')"
    FAILED_DIRS+=("$d")
fi
show_failures
echo "boot: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
