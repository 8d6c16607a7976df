#!/usr/bin/env bash
# Installs the system packages memsift needs (only those missing), then
# builds the release: .build/release/memsift with libmemsift.so next to it,
# and the example program in .build/examples/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# libpython3.11-dev: CPython's internal headers, against which the tests check
# the shim's table of interpreter offsets. libpython3.11-testsuite: CPython's
# regression tests, which tools/realprogs/cpython_tests.py runs traced; the
# real programs tools/realprogs/programs.py traces: sqlite3, git, perl.
# zlib1g-dev: gzip for pprof; chromium and golang-go: the tests open the HTML
# report in headless Chromium and read pprof exports with `go tool pprof`.
packages=(libunwind-dev libzstd-dev libdw-dev pkg-config make gcc g++ python3 libpython3.11-dev
          libpython3.11-testsuite sqlite3 git perl zlib1g-dev chromium golang-go)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

make -s -C cshim
swift build -c release 2>&1 | grep -v "^\[" || true
swift build -c release >/dev/null  # fail the script if the build failed
install -m 0755 cshim/build/libmemsift.so .build/release/libmemsift.so
mkdir -p .build/examples
cc -O1 -g -o .build/examples/leaky examples/leaky.c
