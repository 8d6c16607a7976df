"""Running commands and measuring them: the rounds of every workload under every column.

measure() runs one command as a child of this driver, in its own session and
directory, and takes from os.wait4 the CPU time (user+sys of the command and
every descendant it waited for: tracers' helper processes included). Wall
time is time.perf_counter around it. Peak RSS comes from the RSS probe
(rssprobe.c), preloaded into the whole tree: each process's own VmHWM, so the
target's is known by its executable, and the tree's largest is the largest
line (os.wait4's ru_maxrss if there is none; that one also counts the copy of
this driver's address space a child starts with, before its exec).
"""
from __future__ import annotations

import glob
import json
import os
import resource
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from columns import Column
from idle import IdleGate, machine_busy_seconds
from util import fmt, log
from workloads import Workload

INHERITED_DROP = ("LD_PRELOAD", "PYTHONMALLOC", "MEMSIFT_", "BENCH_RSS_FILE", "HEAPTRACK_")


@dataclass
class Measured:
    wall: float
    cpu: float | None  # user+sys of the tree
    tree_maxrss_kb: int | None
    exit: int | None  # exit status, or -N if killed by signal N
    other_cpu: float | None  # CPU seconds the rest of the machine used meanwhile
    timed_out: bool
    stdout: Path
    stderr: Path
    peaks: list[tuple[str, int]] = field(default_factory=list)  # (executable, peak RSS KiB) per process, from the probe

    def peak_of(self, exe: str) -> int | None:
        return max((kb for e, kb in self.peaks if e == exe), default=None)


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_DROP)}
    env.update(extra)
    return env


def read_probe(path: Path) -> list[tuple[str, int]]:
    """The RSS probe's lines: PID PEAK_KB EXE."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1].isdigit():
            out.append((parts[2], int(parts[1])))
    return out


def measure(argv: list[str], cwd: Path, env: dict[str, str], timeout: float, probe: Path,
            preload: list[str] | None = None, rlimit_as: int | None = None) -> Measured:
    """env: the clean_env() of the command; preload: libraries for LD_PRELOAD before the RSS probe."""
    cwd.mkdir(parents=True, exist_ok=True)
    rss_file = cwd / "rss.txt"
    rss_file.unlink(missing_ok=True)
    env = {**env, "BENCH_RSS_FILE": str(rss_file), "LD_PRELOAD": " ".join([*(preload or []), str(probe)])}

    def preexec() -> None:
        os.setsid()
        if rlimit_as:
            resource.setrlimit(resource.RLIMIT_AS, (rlimit_as, rlimit_as))

    out_path, err_path = cwd / "stdout.txt", cwd / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        busy0 = machine_busy_seconds()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                preexec_fn=preexec)
        deadline, timed_out = t0 + timeout, False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        busy1 = machine_busy_seconds()
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = ru.ru_utime + ru.ru_stime
    other = None if busy0 is None or busy1 is None else max(0.0, busy1 - busy0 - cpu)
    peaks = read_probe(rss_file)
    tree = max((kb for _, kb in peaks), default=ru.ru_maxrss)
    return Measured(wall, cpu, tree, proc.returncode, other, timed_out, out_path, err_path, peaks)


@dataclass
class Run:
    workload: str
    column: str
    round: int
    m: Measured
    target_rss_kb: int | None
    counts: dict | None  # the program's JSON line
    trace_bytes: int | None
    trace_path: Path | None
    status: str
    stderr_tail: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def wall(self) -> float:
        return self.m.wall


@dataclass
class Series:
    """Every run of one workload, by column; the trace files kept for the checks and the report timing."""
    workload: Workload
    columns: list[Column]
    skipped: dict[str, str]
    runs: dict[str, list[Run]] = field(default_factory=dict)
    kept: dict[str, Path] = field(default_factory=dict)  # column key -> trace of its first successful run
    failed: dict[str, dict[int, Path]] = field(default_factory=dict)  # column key -> round -> memsift trace of a failure


def json_counts(stdout: str) -> dict | None:
    for line in stdout.splitlines():
        if line.startswith('{"malloc"'):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                pass
    return None


def problems_of(w: Workload, col: Column, m: Measured, stderr: str, counts: dict | None,
                trace_path: Path | None) -> list[str]:
    problems = []
    if m.timed_out:
        problems.append("timed out")
    if "bad_alloc" in stderr or "terminate called" in stderr:
        problems.append("heaptrack_interpret died: std::bad_alloc" if col.kind == "heaptrack" else "std::bad_alloc")
    if m.exit not in (0, None):
        problems.append("target killed by SIGPIPE (exit 141)" if m.exit in (141, -13)
                        else f"killed by signal {-m.exit}" if m.exit < 0 else f"exit status {m.exit}")
    if w.counts_line and counts is None:
        problems.append("no JSON line from the target")
    if col.trace_glob and not trace_path:
        problems.append("no trace file")
    return problems


def run_once(w: Workload, col: Column, rnd: int, scratch: Path, probe: Path, timeout: float) -> Run:
    cwd = scratch / "runs" / f"{w.key}-{col.key}-{rnd}"
    if cwd.exists():
        shutil.rmtree(cwd)
    argv = [a.replace("{cwd}", str(cwd)) for a in col.argv]
    m = measure(argv, cwd, clean_env(col.env), timeout, probe, col.preload, col.rlimit_as)
    stdout = m.stdout.read_text(errors="replace")
    stderr = m.stderr.read_text(errors="replace")
    counts = json_counts(stdout) if w.counts_line else None
    trace_path, trace_bytes = None, None
    if col.trace_glob:
        found = sorted(glob.glob(str(cwd / col.trace_glob)), key=len)  # the first process's file has the shortest name
        if found:
            trace_path = Path(found[0])
            trace_bytes = sum(os.path.getsize(p) for p in found)
    problems = problems_of(w, col, m, stderr, counts, trace_path)
    status = "ok" if not problems else "crashed: " + "; ".join(problems)
    tail = "\n".join(stderr.strip().splitlines()[-6:])
    return Run(w.key, col.key, rnd, m, m.peak_of(w.exe), counts, trace_bytes, trace_path, status, tail)


def keep_or_drop(series: Series, col: Column, r: Run, keep_all: bool) -> None:
    """Moves aside the trace of the first successful run (for the checks and the report timing) and memsift's
    traces of failed runs (to say what they hold); deletes the others."""
    cwd = r.m.stdout.parent
    first_ok = r.ok and col.key not in series.kept
    failed_memsift = not r.ok and col.kind == "memsift"
    if r.trace_path and (first_ok or failed_memsift):
        dest = cwd.parent.parent / "keep" / f"{series.workload.key}-{col.key}-{r.round}-{r.trace_path.name}"
        dest.parent.mkdir(exist_ok=True)
        shutil.move(r.trace_path, dest)
        r.trace_path = dest
        if first_ok:
            series.kept[col.key] = dest
        else:
            series.failed.setdefault(col.key, {})[r.round] = dest
    if not keep_all:
        for p in cwd.glob("*"):
            if p.name not in ("stdout.txt", "stderr.txt", "rss.txt"):
                p.unlink()


def run_rounds(plan: list[Series], rounds: int, scratch: Path, probe: Path, timeout: float, gate: IdleGate,
               keep_all: bool) -> None:
    """Every round runs every workload, and within it every column, in order."""
    for s in plan:
        s.runs = {c.key: [] for c in s.columns}
    for rnd in range(1, rounds + 1):
        for s in plan:
            for col in s.columns:
                gate.wait()
                r = run_once(s.workload, col, rnd, scratch, probe, timeout)
                s.runs[col.key].append(r)
                log(f"{s.workload.key:14s} round {rnd}/{rounds} {col.key:15s} wall={r.wall:7.3f}s "
                    f"cpu={fmt(r.m.cpu, '.3f')}s other={fmt(r.m.other_cpu, '.2f')}s "
                    f"rss={fmt(r.target_rss_kb, 'd', '?')}KiB trace={r.trace_bytes} {r.status}")
                keep_or_drop(s, col, r, keep_all)
