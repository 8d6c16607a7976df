#!/usr/bin/env bash
# The shim runs inside other people's processes: it may NEED only libc and
# libunwind (and what libunwind itself needs). Fails on anything else,
# libswiftCore and libstdc++ in particular.
set -euo pipefail
lib=${1:?usage: check-shim-deps.sh libmemsift.so}
allowed='^(libc\.so\.6|libunwind\.so\.8|liblzma\.so\.5|libgcc_s\.so\.1|libdl\.so\.2|ld-linux-x86-64\.so\.2)$'
status=0
while read -r needed; do
    if ! [[ $needed =~ $allowed ]]; then
        echo "check-shim-deps: $lib must not NEED $needed" >&2
        status=1
    fi
done < <(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
if nm -D --defined-only "$lib" | grep -q ' [TDB] \$s'; then
    echo "check-shim-deps: $lib exports Swift symbols" >&2
    status=1
fi
[ $status -eq 0 ] && echo "check-shim-deps: $lib NEEDs only $(readelf -d "$lib" | sed -n 's/.*\[\(.*\)\]/\1/p' | grep '\.so' | tr '\n' ' ')"
exit $status
