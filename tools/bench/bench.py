#!/usr/bin/env python3
"""The benchmark driver (python3 >= 3.11, stdlib only). Run it through run.sh, which documents the settings.

Builds the workloads into the scratch directory (workloads.py), runs every
selected workload under every column (columns.py) in alternating rounds
(runner.py), optionally repeats the random-size workloads on which heaptrack
crashed at a size it survives, checks the counts (counts.py), times each
tracer's analyzer on the files (analyzers.py), and writes RESULTS.md
(report.py) to --results and stdout.
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import analyzers
import counts
import report
from columns import ALL_COLUMNS, Tools, columns_for
from idle import IdleGate
from machine import file_id, git_state, loadavg
from memsift_trace import FORMAT_WARNINGS, load_format
from perf_profile import profile
from runner import Series, run_rounds
from util import log
from workloads import DEFAULT_SELECTION, Params, Workload, build_all, define, select


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--shim", required=True)
    ap.add_argument("--memsift", default="")
    ap.add_argument("--python", default="python3", help="interpreter of the Python workload (with memray, ideally)")
    ap.add_argument("--workloads", default=DEFAULT_SELECTION)
    ap.add_argument("--columns", default=",".join(ALL_COLUMNS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--analyze-rounds", type=int, default=None, help="default: --rounds")
    ap.add_argument("--steps", type=int, default=Params.steps)
    ap.add_argument("--cxx-steps", type=int, default=Params.cxx_steps)
    ap.add_argument("--py-requests", type=int, default=Params.py_requests)
    ap.add_argument("--prod-requests", type=int, default=Params.prod_requests)
    ap.add_argument("--sql-rows", type=int, default=Params.sql_rows)
    ap.add_argument("--check-steps", type=int, default=0)
    ap.add_argument("--heaptrack-vmem-kb", default="4194304")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--idle-wait", type=float, default=10.0)
    ap.add_argument("--idle-budget", type=float, default=60.0)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--command", default="tools/bench/run.sh", help="how the benchmark was started, for RESULTS.md")
    ap.add_argument("--results", required=True)
    return ap.parse_args()


def below_crash_threshold(plan: list[Series], p: Params, check_steps: int, repo: Path, scratch: Path) -> list[Workload]:
    """CHECK_STEPS: the step-count workloads on which heaptrack crashed, again at check_steps steps."""
    crashed = [s.workload.key for s in plan if s.workload.key.startswith(("alloc_", "threads_"))
               and s.runs.get("heaptrack") and not any(r.ok for r in s.runs["heaptrack"])]
    small = define(crashed, dataclasses.replace(p, steps=check_steps), repo, scratch)
    for w in small:
        w.key += f"@{check_steps}"
        w.title += ", below heaptrack's crash threshold"
    return small


def main() -> int:
    a = parse_args()
    repo, scratch = Path(a.repo), Path(a.scratch)
    t_start = time.perf_counter()
    gate = IdleGate(per_run=a.idle_wait, budget=a.idle_budget)
    load_format(repo / "cshim" / "include" / "memsift" / "trace_format.h")
    for w in FORMAT_WARNINGS:
        log("warning: " + w)
    try:
        keys = select(a.workloads)
    except ValueError as e:
        log(str(e))
        return 2
    params = Params(a.steps, a.cxx_steps, a.py_requests, a.sql_rows, a.python, a.prod_requests)
    workloads = define(keys, params, repo, scratch)
    log(f"building into {scratch} ...")
    try:
        builds = build_all(workloads, repo, scratch)
    except subprocess.CalledProcessError as e:
        log(f"build failed: {' '.join(e.cmd)}")
        return 1
    probe = scratch / "rssprobe.so"
    tools = Tools(a.shim, a.memsift, a.heaptrack_vmem_kb, [c.strip() for c in a.columns.split(",") if c.strip()])
    git_start, load_start = git_state(a.repo), loadavg()
    ids_start = {"shim": file_id(a.shim), "CLI": file_id(a.memsift) if a.memsift else "n/a"}

    plan = [Series(w, *columns_for(w, tools)) for w in workloads]
    for s in plan:
        for what, why in s.skipped.items():
            log(f"{s.workload.key}: {what} skipped: {why}")
    log(f"{len(plan)} workloads x {a.rounds} rounds: "
        + "; ".join(f"{s.workload.key} ({len(s.columns)} columns)" for s in plan))
    run_rounds(plan, a.rounds, scratch, probe, a.timeout, gate, a.keep)
    if a.check_steps > 0:
        small = below_crash_threshold(plan, params, a.check_steps, repo, scratch)
        if small:
            log(f"heaptrack crashed on {', '.join(w.key for w in small)}: all columns again at {a.check_steps} steps")
            extra = [Series(w, *columns_for(w, tools)) for w in small]
            run_rounds(extra, a.rounds, scratch, probe, a.timeout, gate, a.keep)
            plan += extra

    checks = {s.workload.key: counts.gather(s, scratch) for s in plan}
    n_an = a.rounds if a.analyze_rounds is None else a.analyze_rounds
    analyses = analyzers.run_analyses(plan, tools, n_an, scratch, probe, a.timeout, gate)
    perf = ""
    if a.perf:
        s = next((s for s in plan if any(c.key == "preload" for c in s.columns)), None)
        if s:
            log(f"perf record of one LD_PRELOAD run of {s.workload.key} ...")
            perf = profile(s.workload, next(c for c in s.columns if c.key == "preload"), scratch)

    ctx = report.Context(repo, scratch, params, a.rounds, n_an, a.command, builds, plan, checks, analyses, tools, gate,
                         git_start, load_start, ids_start, time.perf_counter() - t_start, perf)
    doc = report.document(ctx)
    print(doc)
    Path(a.results).write_text(doc)
    log(f"wrote {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
