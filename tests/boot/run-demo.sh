#!/bin/bash
# `make run`: boot hv under Bochs 3.0 (VMX, 2 CPUs) with the test payload as its
# next stage and show the serial log live. Logs: build/run/serial.log, bochs.log.
source "$(dirname "$0")/lib.sh"
D=$B/run
CPUS=${CPUS:-2}
mkdisk "$D" $'next=\\EFI\\hv\\payload.efi\nargs=demo\n' "$B/payload.efi:/EFI/hv/payload.efi"
echo "booting hv under Bochs ($CPUS CPUs); serial log: $D/serial.log"
: >"$D/serial.log"
run_bochs "$D" "$CPUS" "${TIMEOUT:-600}" &
RUN=$!
# Show the log as it grows (the firmware's console escapes stripped) until Bochs ends.
tail -n +1 -f "$D/serial.log" --pid=$RUN 2>/dev/null | sed -u -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g'
wait $RUN
rc=$(cat "$D/rc")
echo
if grep -q "soft power off" "$D/bochs.log" 2>/dev/null || [ "$rc" = 0 ] || [ "$rc" = 1 ]; then
    echo "Bochs ended (exit $rc): machine powered off"
else
    echo "Bochs ended with status $rc (124 = timeout); see $D/bochs.log"
fi
