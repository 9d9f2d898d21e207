#!/bin/bash
# The layering rule of docs/architecture.md: lib < vmx < regcache < nested < hv, a layer
# includes only itself and layers below it; boot/ uses only lib/, hv/handoff.h (and
# hv/version.h, constants only).
# Every project include ("dir/file.h" or "../dir/file.h") is checked.
# Ends with one line "N passed, N failed".
cd "$(dirname "$0")/../.."
declare -A allowed=(
    [lib]="lib"
    [vmx]="lib vmx"
    [regcache]="lib vmx regcache"
    [nested]="lib vmx regcache nested"
    [hv]="lib vmx regcache nested hv"
    [boot]="lib boot hv/handoff.h hv/version.h" # version.h: constants, for the first log line
)
pass=0 fail=0
for layer in lib vmx regcache nested hv boot; do
    bad=0
    for f in "$layer"/*.[ch]; do
        [ -f "$f" ] || continue
        while IFS= read -r inc; do
            # A bare name is the file's own folder; otherwise the first folder names the layer.
            path=${inc#../}
            case $path in */*) ;; *) continue ;; esac
            ok=0
            for a in ${allowed[$layer]}; do
                case $path in "$a"/* | "$a") ok=1 ;; esac
            done
            if [ $ok -eq 0 ]; then
                echo "FAIL: $f includes \"$inc\": $layer may use only ${allowed[$layer]}"
                bad=$((bad + 1))
            fi
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
    done
    if [ $bad -eq 0 ]; then pass=$((pass + 1)); echo "  ok   $layer/ includes only ${allowed[$layer]}"
    else fail=$((fail + 1)); fi
done
echo "layers: $pass passed, $fail failed"
[ $fail -eq 0 ]
