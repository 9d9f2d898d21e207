#!/bin/bash
# The VMX capability MSRs L1 sees under hv next to the CPU's, from the "l1cap: " lines of
# l1.efi's two runs (tests/nested/run-diff.sh: bare Bochs and hv). Prints a Markdown table:
# for the control MSRs the allowed-1 bits (31:0 allowed-0 must match), for the others the
# value; "hidden" = the CPU's bits L1 does not get, "extra" = bits L1 gets the CPU lacks.
# Usage: captable.sh BARE_SERIAL_LOG HV_SERIAL_LOG
set -u
[ $# -eq 2 ] || { echo "usage: $0 bare-serial.log hv-serial.log" >&2; exit 2; }
caps() { tr -d '\r' <"$1" | grep -a '^l1cap: 0x4' | sed 's/^l1cap: //'; }
declare -A CPU L1 NAME
while read -r msr name val; do CPU[$msr]=$val; NAME[$msr]=$name; done < <(caps "$1")
while read -r msr name val; do L1[$msr]=$val; NAME[$msr]=$name; done < <(caps "$2")
[ ${#CPU[@]} -gt 0 ] && [ ${#L1[@]} -gt 0 ] || { echo "captable: no l1cap lines in $1 or $2" >&2; exit 1; }

bits() { # the set bit numbers of $1, counted from bit $2
    local v=$1 off=$2 out="" i
    for ((i = 0; i < 64; i++)); do (((v >> i) & 1)) && out+="${out:+,}$((i + off))"; done
    echo "${out:--}"
}

echo "| MSR | CPU (bare Bochs) | L1 under hv | hidden | extra |"
echo "|---|---|---|---|---|"
for msr in $(printf '%s\n' "${!CPU[@]}" "${!L1[@]}" | sort -u); do
    c=${CPU[$msr]:-} l=${L1[$msr]:-}
    name="${NAME[$msr]} ($msr)"
    if [ -z "$c" ] || [ -z "$l" ]; then
        echo "| $name | ${c:-absent} | ${l:-absent} | | |"; continue
    fi
    case ${NAME[$msr]} in
    *_CTLS*) # allowed-1 in 63:32 (A.3-A.5); hidden/extra as control bit numbers
        hid=$(bits $(((c >> 32) & ~(l >> 32) & 0xffffffff)) 0)
        ext=$(bits $(((l >> 32) & ~(c >> 32) & 0xffffffff)) 0)
        [ $((c & 0xffffffff)) -ne $((l & 0xffffffff)) ] && ext+=" (allowed-0 differs)" ;;
    BASIC) # 30:0 is the revision identifier, hv's own (vmcs12 layout)
        hid=$(bits $((c & ~l & ~0x7fffffff)) 0); ext=$(bits $((l & ~c & ~0x7fffffff)) 0) ;;
    *FIXED0|*FIXED1|VMCS_ENUM)
        hid=$([ "$c" = "$l" ] && echo - || echo "differs"); ext=- ;;
    *) hid=$(bits $((c & ~l)) 0); ext=$(bits $((l & ~c)) 0) ;;
    esac
    echo "| $name | $c | $l | $hid | $ext |"
done
