#!/usr/bin/env bash
# Builds memsift-fuzz with libFuzzer and AddressSanitizer (release, in
# .build-fuzz so the normal .build is untouched) and fuzzes the trace reader
# for SECONDS (default 1800) on one core, from tools/fuzz/corpus.
#
# usage: tools/fuzz/run.sh [SECONDS] [WORK_DIR]
# The corpus grows in WORK_DIR/corpus (default /tmp/memsift-fuzz), crashes,
# timeouts and OOMs go to WORK_DIR/artifacts; fork mode goes on after each
# one. Reproduce one with: .build-fuzz/release/memsift-fuzz ARTIFACT
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-1800}
work=${2:-/tmp/memsift-fuzz}

swift build -c release --scratch-path .build-fuzz --product memsift-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DMEMSIFT_FUZZ
mkdir -p "$work/corpus" "$work/artifacts"
cp -n tools/fuzz/corpus/* "$work/corpus/"
# No Swift backtracer: it trips ASan, and libFuzzer prints the stack itself.
export SWIFT_BACKTRACE=enable=no
exec .build-fuzz/release/memsift-fuzz -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
  -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=30 -max_len=65536 -max_total_time="$seconds" \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus"
