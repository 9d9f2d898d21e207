#!/bin/bash
# `make run`: boot hv under Bochs 3.0 (VMX, 2 CPUs) with the test payload as its
# next stage and show the serial log live. Logs: build/run/serial.log, bochs.log.
source "$(dirname "$0")/lib.sh"
D=$B/run
CPUS=${CPUS:-2}
mkdisk "$D" $'next=\\EFI\\hv\\payload.efi\nargs=demo\n' "$B/payload.efi:/EFI/hv/payload.efi"
echo "booting hv under Bochs ($CPUS CPUs); serial log: $D/serial.log"
: >"$D/serial.log"
tail -n +1 -f "$D/serial.log" --pid=$$ 2>/dev/null | tr -d '\r' | sed -u 's/\x1b\[[0-9;?]*[a-zA-Z]//g' &
TAILPID=$!
run_bochs "$D" "$CPUS" "${TIMEOUT:-600}"
sleep 0.5
kill $TAILPID 2>/dev/null
rc=$(cat "$D/rc")
if grep -q "soft power off" "$D/bochs.log" 2>/dev/null || [ "$rc" = 0 ] || [ "$rc" = 1 ]; then
    echo "Bochs ended (exit $rc): machine powered off"
else
    echo "Bochs ended with status $rc (124 = timeout); see $D/bochs.log"
fi
