#!/usr/bin/env bash
# The memsift benchmark: memsift side by side with heaptrack (and memray for Python), on five workloads.
#
# One command measures every workload in alternating rounds, each untraced, under LD_PRELOAD of the shim,
# under `memsift run`, under heaptrack, and (Python) under memray; then times `memsift report` against
# `heaptrack_print` (and `memray stats`) on the files; prints a markdown report and writes it to
# tools/bench/RESULTS.md. The workloads are built into a scratch directory (tools/bench/workloads.py lists them):
#
#   alloc_pow2, alloc_random      alloc_heavy.c: single-threaded C (power-of-two / random sizes)
#   threads_pow2, threads_random  alloc_threads.c: 8 threads, cross-thread frees
#   containers                    containers.cpp: std::map / std::unordered_map / std::string churn
#   python                        tools/examples/data_service.py (CPython; memray from PyPI)
#   sqlite                        /usr/bin/sqlite3 running a script from sqlgen.py
#
# A full run (the defaults) takes about 15-20 minutes on a quiet 2-CPU machine (~2 min per round, then the count
# checks and the report timing); the end of RESULTS.md says how long it took.
#
# Environment:
#   WORKLOADS=alloc,threads,containers,python,sqlite,production
#                            what to measure: groups (alloc, threads, containers, python, sqlite) or single keys
#                            (alloc_pow2, alloc_random, threads_pow2, threads_random, ...)
#   BENCH_COLUMNS=untraced,untraced_malloc,preload,memsift,sampled,production,heaptrack,memray,memray_full
#                            columns to run where they apply (untraced is always run)
#   ROUNDS=5                 rounds (each runs every workload x every column once)
#   ANALYZE_ROUNDS=$ROUNDS   rounds of the report timing (memsift report vs heaptrack_print)
#   STEPS=5000000            alloc_heavy and alloc_threads steps (one allocation call each)
#   CXX_STEPS=800000         containers steps (~3.6 million allocation calls)
#   PY_REQUESTS=60000        data_service.py requests
#   PROD_REQUESTS=400000     data_service.py requests of the production-mode workload (`service`)
#   SQL_ROWS=200000          rows inserted by the sqlite3 script
#   CHECK_STEPS=0            if > 0, the random-size workloads on which heaptrack crashed are measured again at
#                            this many steps (50000 is below heaptrack 1.4.0's crash threshold)
#   PYTHON=path              interpreter of the Python workload and of memray; by default $BENCH_VENV/bin/python,
#                            the venv created (python3 -m venv, pip install memray) if it does not exist yet;
#                            python3 (and no memray columns) if that fails
#   BENCH_VENV=<repo>/.build/bench-venv
#   HEAPTRACK_VMEM_KB=4194304  address-space cap for heaptrack and heaptrack_print ("unlimited" lifts it)
#   MEMSIFT=path             the memsift CLI (default <repo>/.build/release/memsift)
#   RESULTS=path             where to write the report (default tools/bench/RESULTS.md)
#   PERF=1                   add a `perf record` profile of one LD_PRELOAD run
#   IDLE_WAIT=10             before each run wait up to this many seconds for the rest of the machine
#                            to use < 0.25 CPU (shared machines); 0 disables
#   IDLE_BUDGET=60           at most this many seconds of such waiting in all
#   KEEP=1                   keep the scratch directory and every trace file
#   RUN_TIMEOUT=900          seconds before a single run is killed
#
# A quick check that everything runs (labelled QUICK RUN in the report; writes elsewhere than RESULTS.md):
#   ROUNDS=1 STEPS=100000 CXX_STEPS=20000 PY_REQUESTS=3000 PROD_REQUESTS=20000 SQL_ROWS=5000 RESULTS=/tmp/quick.md tools/bench/run.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHIM=$REPO/cshim/build/libmemsift.so
BENCH_VENV=${BENCH_VENV:-$REPO/.build/bench-venv}

# The environment that differs from the defaults, for RESULTS.md.
COMMAND=""
for v in WORKLOADS BENCH_COLUMNS ROUNDS ANALYZE_ROUNDS STEPS CXX_STEPS PY_REQUESTS PROD_REQUESTS SQL_ROWS CHECK_STEPS PYTHON \
         HEAPTRACK_VMEM_KB PERF IDLE_WAIT IDLE_BUDGET RUN_TIMEOUT; do
    [ -n "${!v:-}" ] && COMMAND+="$v=${!v} "
done
COMMAND+="tools/bench/run.sh"

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

# The Python workload's interpreter, with memray (PyPI) in a venv of its own.
if [ -z "${PYTHON:-}" ]; then
    if [ ! -x "$BENCH_VENV/bin/python" ] || ! "$BENCH_VENV/bin/python" -c "import memray" 2>/dev/null; then
        echo "[bench] creating $BENCH_VENV with memray ..." >&2
        python3 -m venv "$BENCH_VENV" >&2 && "$BENCH_VENV/bin/pip" install -q memray >&2 \
            || echo "[bench] warning: could not install memray into $BENCH_VENV; no memray columns" >&2
    fi
    if [ -x "$BENCH_VENV/bin/python" ]; then PYTHON=$BENCH_VENV/bin/python; else PYTHON=python3; fi
fi

args=(--repo "$REPO" --scratch "$SCRATCH" --shim "$SHIM" --memsift "${MEMSIFT:-$REPO/.build/release/memsift}"
      --python "$PYTHON" --workloads "${WORKLOADS:-alloc,threads,containers,python,sqlite,production}"
      --columns "${BENCH_COLUMNS:-untraced,untraced_malloc,preload,memsift,sampled,production,heaptrack,memray,memray_full}"
      --rounds "${ROUNDS:-5}" --steps "${STEPS:-5000000}" --cxx-steps "${CXX_STEPS:-800000}"
      --py-requests "${PY_REQUESTS:-60000}" --prod-requests "${PROD_REQUESTS:-400000}" --sql-rows "${SQL_ROWS:-200000}" --check-steps "${CHECK_STEPS:-0}"
      --heaptrack-vmem-kb "${HEAPTRACK_VMEM_KB:-4194304}" --timeout "${RUN_TIMEOUT:-900}"
      --idle-wait "${IDLE_WAIT:-10}" --idle-budget "${IDLE_BUDGET:-60}" --command "$COMMAND"
      --results "${RESULTS:-$HERE/RESULTS.md}")
[ -n "${ANALYZE_ROUNDS:-}" ] && args+=(--analyze-rounds "$ANALYZE_ROUNDS")
[ "${KEEP:-0}" = 1 ] && args+=(--keep)
[ "${PERF:-0}" = 1 ] && args+=(--perf)
python3 "$HERE/bench.py" "${args[@]}"
