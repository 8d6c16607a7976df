"""The columns of the benchmark: how each workload is run, untraced and under each tracer.

    key              command                                                  workloads
    untraced         the program                                              all
    untraced_malloc  the program with PYTHONMALLOC=malloc                     python
    preload          LD_PRELOAD=libmemsift.so (the shim drains itself)        all
    memsift          memsift run -q --shim libmemsift.so -o TRACE --          all
    sampled          memsift run --sample-rate 524288 ...                     all
    production       memsift run --live --sample-rate 524288 ...             all
    production_fast  ... --snapshot-every 0.25                               service
    heaptrack        heaptrack -o FILE (under `ulimit -v`, see RESULTS.md)    all
    memray           python -m memray run -q -f -o FILE                       python
    memray_full      ... --native --trace-python-allocators                   python

COLUMNS=untraced,memsift,... keeps a subset (untraced is always kept: it is the
reference of every ratio and of the count checks).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

from workloads import Workload

ALL_COLUMNS = ["untraced", "untraced_malloc", "preload", "memsift", "sampled", "production", "heaptrack", "memray",
               "memray_full"]

# The sampling rate of the sampled and production columns (tcmalloc's default).
SAMPLE_RATE = "524288"


@dataclass
class Column:
    key: str
    label: str
    argv: list[str]  # {cwd} stands for the run's directory
    env: dict[str, str] = field(default_factory=dict)
    preload: list[str] = field(default_factory=list)  # libraries for LD_PRELOAD (the driver adds its RSS probe)
    trace_glob: str | None = None  # the tracer's output files, relative to the run's directory
    kind: str = "none"  # none | memsift | sampled | heaptrack | memray
    rlimit_as: int | None = None  # address-space limit of the whole command tree, bytes
    peer: bool = False  # another tracer: the tables show memsift run ÷ this


@dataclass
class Tools:
    shim: str
    memsift: str
    heaptrack_vmem_kb: str
    selected: list[str]

    @property
    def rlimit(self) -> int | None:
        return None if self.heaptrack_vmem_kb in ("", "0", "unlimited") else int(self.heaptrack_vmem_kb) * 1024


def has_memray(python: str) -> bool:
    return subprocess.run([python, "-c", "import memray"], capture_output=True).returncode == 0


def columns_for(w: Workload, t: Tools) -> tuple[list[Column], dict[str, str]]:
    """The workload's columns in run order, and the selected ones that cannot run, with why."""
    cols: list[Column] = [Column("untraced", "untraced" + (" (pymalloc)" if w.python else ""), w.argv, dict(w.env))]
    skipped: dict[str, str] = {}
    traced_env = {**w.env, **w.traced_env}
    if w.python:
        cols.append(Column("untraced_malloc", "untraced (PYTHONMALLOC=malloc)", w.argv, {**w.env, "PYTHONMALLOC": "malloc"}))
    if os.path.isfile(t.shim):
        cols.append(Column("preload", "LD_PRELOAD shim (self-drain)", w.argv, traced_env, preload=[t.shim],
                           trace_glob="memsift.*.trace", kind="memsift"))
    else:
        skipped["LD_PRELOAD shim"] = f"{t.shim} not found (`make -C cshim`)"
    if t.memsift and os.access(t.memsift, os.X_OK):
        # --shim: the same libmemsift.so as the LD_PRELOAD column (by default memsift run takes the copy
        # next to the executable, which can lag behind cshim/build).
        shim_args = ["--shim", t.shim] if os.path.isfile(t.shim) else []
        cols.append(Column("memsift", "memsift run", [t.memsift, "run", "-q", *shim_args, "-o", "{cwd}/memsift.trace",
                                                      "--", *w.argv], dict(w.env),
                           trace_glob="memsift*.trace", kind="memsift"))
        # A sample is not checked against the program's counts (it is a sample).
        modes = [("sampled", f"memsift run --sample-rate {SAMPLE_RATE}", []),
                 ("production", f"memsift run --live --sample-rate {SAMPLE_RATE}", ["--live"])]
        if w.only and "production_fast" in w.only:
            modes.append(("production_fast", f"memsift run --live --sample-rate {SAMPLE_RATE} --snapshot-every 0.25",
                          ["--live", "--snapshot-every", "0.25"]))
        for key, label, mode in modes:
            cols.append(Column(key, label, [t.memsift, "run", "-q", *shim_args, *mode, "--sample-rate", SAMPLE_RATE,
                                            "-o", "{cwd}/memsift.trace", "--", *w.argv], dict(w.env),
                               trace_glob="memsift*.trace", kind="sampled"))
    else:
        skipped["memsift run"] = (f"no memsift executable at `{t.memsift}` (`swift build -c release`)")
    if shutil.which("heaptrack"):
        # heaptrack sees malloc only: under pymalloc it would see arenas, not objects.
        heaptrack_env = {**traced_env, "PYTHONMALLOC": "malloc"} if w.python else traced_env
        cols.append(Column("heaptrack", "heaptrack", ["heaptrack", "-o", "{cwd}/heaptrack", *w.argv], heaptrack_env,
                           trace_glob="heaptrack.*", kind="heaptrack", rlimit_as=t.rlimit, peer=True))
    else:
        skipped["heaptrack"] = "heaptrack not installed (`apt-get install heaptrack`)"
    if w.python:
        if has_memray(w.argv[0]):
            memray = [w.argv[0], "-m", "memray", "run", "-q", "-f", "-o", "{cwd}/memray.bin"]
            cols.append(Column("memray", "memray run", [*memray, *w.argv[1:]], dict(w.env),
                               trace_glob="memray.bin", kind="memray", peer=True))
            cols.append(Column("memray_full", "memray run --native --trace-python-allocators",
                               [*memray, "--native", "--trace-python-allocators", *w.argv[1:]], dict(w.env),
                               trace_glob="memray.bin", kind="memray", peer=True))
        else:
            skipped["memray run"] = (f"memray is not importable by `{w.argv[0]}` (`python3 -m venv V && V/bin/pip "
                                     "install memray`, then PYTHON=V/bin/python; run.sh does this by itself)")
    if w.only is not None:
        return [c for c in cols if c.key == "untraced" or c.key in w.only], skipped
    chosen = [c for c in cols if c.key == "untraced" or c.key in t.selected]
    return chosen, skipped
