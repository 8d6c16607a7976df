#!/usr/bin/env bash
# Overhead benchmark of the memsift tracer, side by side with heaptrack.
#
# Builds tools/bench/alloc_heavy.c into a scratch directory, then runs it in
# each size mode (two workloads: `alloc_heavy STEPS pow2` and `alloc_heavy
# STEPS random`), alternating within each round, mode by mode: untraced; under
# LD_PRELOAD=cshim/build/libmemsift.so (the shim drains itself into
# memsift.*.trace); under `memsift run -q -o FILE --` when
# <repo>/.build/release/memsift exists; and under `heaptrack -o FILE`. Prints
# a markdown report and writes it to tools/bench/RESULTS.md.
#
# Environment:
#   ROUNDS=5                 rounds (each runs every size mode x every column once)
#   STEPS=5000000            workload steps (one allocation call each, plus 1000 leaked mallocs)
#   SIZES=pow2,random        alloc_heavy size modes to measure, in this order within a round
#                            (pow2: sizes rounded to powers of two, which heaptrack 1.4.0 survives;
#                            random: the default log-distributed sizes, on which it crashes)
#   CHECK_STEPS=0            if > 0 and heaptrack crashes on a size mode, all columns are repeated
#                            at this many steps for that mode (50000 is below heaptrack 1.4.0's
#                            crash threshold)
#   HEAPTRACK_VMEM_KB=4194304  address-space cap for the heaptrack command tree
#                            ("unlimited" lifts it; see RESULTS.md for why it exists)
#   MEMSIFT=path             the memsift CLI (default <repo>/.build/release/memsift)
#   RESULTS=path             where to write the report (default tools/bench/RESULTS.md)
#   PERF=1                   add a `perf record` profile of one LD_PRELOAD run
#   IDLE_WAIT=10             before each run wait up to this many seconds for the rest of the machine
#                            to use < 0.25 CPU (shared machines); 0 disables
#   IDLE_BUDGET=60           at most this many seconds of such waiting in all
#   KEEP=1                   keep the scratch directory and the trace files
#   RUN_TIMEOUT=900          seconds before a single run is killed
#   CC=cc                    compiler for the workload
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-5}
STEPS=${STEPS:-5000000}
SIZES=${SIZES:-pow2,random}
CHECK_STEPS=${CHECK_STEPS:-0}
HEAPTRACK_VMEM_KB=${HEAPTRACK_VMEM_KB:-4194304}
MEMSIFT=${MEMSIFT:-$REPO/.build/release/memsift}
RESULTS=${RESULTS:-$HERE/RESULTS.md}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
IDLE_WAIT=${IDLE_WAIT:-10}
IDLE_BUDGET=${IDLE_BUDGET:-60}
CC=${CC:-cc}
SHIM=$REPO/cshim/build/libmemsift.so

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/memsift-bench.XXXXXX")
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        echo "[bench] kept $SCRATCH" >&2
    else
        rm -rf "$SCRATCH"
    fi
}
trap cleanup EXIT

# The shim: build it (a no-op when up to date); an existing build is used if make fails.
if ! make -C "$REPO/cshim" >&2; then
    if [ -f "$SHIM" ]; then
        echo "[bench] warning: make -C cshim failed; using the existing $SHIM" >&2
    else
        echo "[bench] warning: make -C cshim failed and there is no $SHIM; the LD_PRELOAD column is skipped" >&2
    fi
fi

BUILD_CMD="$CC -O2 -g -fno-omit-frame-pointer -Wall -Wextra -o \$SCRATCH/alloc_heavy tools/bench/alloc_heavy.c"
"$CC" -O2 -g -fno-omit-frame-pointer -Wall -Wextra -o "$SCRATCH/alloc_heavy" "$HERE/alloc_heavy.c"

args=(--repo "$REPO" --scratch "$SCRATCH" --prog "$SCRATCH/alloc_heavy" --build-cmd "$BUILD_CMD"
      --shim "$SHIM" --memsift "$MEMSIFT" --rounds "$ROUNDS" --steps "$STEPS" --sizes "$SIZES" --check-steps "$CHECK_STEPS"
      --heaptrack-vmem-kb "$HEAPTRACK_VMEM_KB" --timeout "$RUN_TIMEOUT" --idle-wait "$IDLE_WAIT"
      --idle-budget "$IDLE_BUDGET" --results "$RESULTS")
[ "${KEEP:-0}" = 1 ] && args+=(--keep)
[ "${PERF:-0}" = 1 ] && args+=(--perf)
python3 "$HERE/bench.py" "${args[@]}"
