#!/usr/bin/env python3
"""Overhead of tracing a CPython workload: memsift against memray, side by side.

Runs tools/examples/data_service.py (the leaking service; deterministic) in
rounds, alternating the columns within each round: untraced (pymalloc, and
PYTHONMALLOC=malloc), `memsift run` (Python frames on, and off with
MEMSIFT_PYTHON_FRAMES=0), and `memray run` (default, --native,
--trace-python-allocators) when memray is importable by the interpreter.
(Sampling and live mode too: `--sample-rate 524288`, `--live`, both.)
Reports medians of wall time and CPU time (user+sys of the whole process
tree: memsift's collector included), the largest process's peak RSS, and the
size of what each tracer wrote; ratios are against untraced pymalloc, the
program as it normally runs.

    tools/bench/python_bench.py [--python PY] [--rounds 5] [--requests 60000]
                                [--results tools/bench/PYTHON.md]

memray comes from PyPI: `python -m venv V && V/bin/pip install memray`, then
--python V/bin/python.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKLOAD = REPO / "tools" / "examples" / "data_service.py"


def columns(memsift: str, python: str, has_memray: bool) -> list[tuple[str, list[str], dict[str, str], str | None]]:
    """(name, command with {out} for the output file, environment, output suffix)."""
    cols = [
        ("untraced (pymalloc)", [python, str(WORKLOAD)], {"PYTHONMALLOC": "pymalloc"}, None),
        ("untraced (PYTHONMALLOC=malloc)", [python, str(WORKLOAD)], {"PYTHONMALLOC": "malloc"}, None),
        ("memsift run", [memsift, "run", "-q", "-o", "{out}", "--", python, str(WORKLOAD)], {}, ".trace"),
        ("memsift run, native frames only", [memsift, "run", "-q", "-o", "{out}", "--", python, str(WORKLOAD)],
         {"MEMSIFT_PYTHON_FRAMES": "0"}, ".trace"),
        ("memsift run --sample-rate 524288",
         [memsift, "run", "-q", "--sample-rate", "524288", "-o", "{out}", "--", python, str(WORKLOAD)], {}, ".trace"),
        ("memsift run --live", [memsift, "run", "-q", "--live", "-o", "{out}", "--", python, str(WORKLOAD)], {},
         ".trace"),
        ("memsift run --live --sample-rate 524288",
         [memsift, "run", "-q", "--live", "--sample-rate", "524288", "-o", "{out}", "--", python, str(WORKLOAD)], {},
         ".trace"),
    ]
    if has_memray:
        memray = [python, "-m", "memray", "run", "-q", "-f", "-o", "{out}"]
        cols += [
            ("memray run", memray + [str(WORKLOAD)], {}, ".bin"),
            ("memray run --native", memray[:-3] + ["--native"] + memray[-3:] + [str(WORKLOAD)], {}, ".bin"),
            ("memray run --trace-python-allocators",
             memray[:-3] + ["--trace-python-allocators"] + memray[-3:] + [str(WORKLOAD)], {}, ".bin"),
        ]
    return cols


def run_once(command: list[str], env: dict[str, str], out: Path | None, requests: int) -> dict[str, float]:
    argv = [a.replace("{out}", str(out)) if out else a for a in command] + [str(requests), str(requests // 10)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MEMSIFT_", "PYTHONMALLOC"))}
    environment.update(env)
    environment["PYTHONHASHSEED"] = "0"
    if out and out.exists():
        out.unlink()
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    err = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{err}")
    size = 0
    if out:
        size = sum(p.stat().st_size for p in out.parent.glob(out.stem + "*") if p.is_file())
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss * 1024, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--memsift", default=str(REPO / ".build" / "release" / "memsift"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=60000)
    parser.add_argument("--results", default=str(REPO / "tools" / "bench" / "PYTHON.md"))
    args = parser.parse_args()

    has_memray = subprocess.run([args.python, "-c", "import memray"], capture_output=True).returncode == 0
    version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
    memray_version = subprocess.run([args.python, "-m", "memray", "--version"], capture_output=True,
                                    text=True).stdout.strip() if has_memray else "absent"
    cols = columns(args.memsift, args.python, has_memray)
    results: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in cols}
    scratch = Path(tempfile.mkdtemp(prefix="memsift-pybench-"))
    try:
        for r in range(args.rounds):
            for i, (name, command, env, suffix) in enumerate(cols):
                out = scratch / f"c{i}{suffix}" if suffix else None
                if out:
                    for old in scratch.glob(f"c{i}*"):
                        old.unlink()
                results[name].append(run_once(command, env, out, args.requests))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    med = {n: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for n, runs in results.items()}
    base = med["untraced (pymalloc)"]
    lines = [
        "# Python workload: memsift against memray",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}; Python {version} "
        f"({args.python}); memray {memray_version}.",
        f"Workload: `{WORKLOAD.relative_to(REPO)} {args.requests} {args.requests // 10}` (PYTHONHASHSEED=0).",
        f"Command: `tools/bench/python_bench.py --python {args.python} --rounds {args.rounds} "
        f"--requests {args.requests}`; medians of {args.rounds} alternating rounds.",
        "",
        "| column | wall s | ×untraced | CPU s | ×untraced | peak RSS MB | output MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in med.items():
        out = f"{m['bytes'] / 1e6:.3g}" if m["bytes"] else "—"
        lines.append(f"| {name} | {m['wall']:.2f} | {m['wall'] / base['wall']:.2f} | {m['cpu']:.2f} | "
                     f"{m['cpu'] / base['cpu']:.2f} | {m['rss'] / 1e6:.0f} | {out} |")
    lines += ["", "CPU is user+sys of the process tree (memsift's collector, memray's nothing else); peak RSS",
              "is the largest process's (the interpreter's)."]
    text = "\n".join(lines) + "\n"
    Path(args.results).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
