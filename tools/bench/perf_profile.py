"""PERF=1: where the shim's time goes, from a `perf record` of one LD_PRELOAD run."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from columns import Column
from runner import clean_env
from workloads import Workload


def profile(w: Workload, col: Column, scratch: Path) -> str:
    """A markdown section: perf report by object and by symbol (self time), or why there is none."""
    if not shutil.which("perf"):
        return "(PERF=1, but perf is not installed)\n"
    pdir = scratch / "perf"
    pdir.mkdir(exist_ok=True)
    data = pdir / "perf.data"
    env = clean_env({**col.env, "LD_PRELOAD": " ".join(col.preload)})
    rec = subprocess.run(["perf", "record", "-F", "2000", "-o", str(data), "--", *col.argv], cwd=pdir, env=env,
                         capture_output=True, text=True)
    if rec.returncode != 0:
        return f"(perf record failed: {rec.stderr.strip()[-300:]})\n"

    def report(sort: str, *extra: str) -> list[str]:
        p = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", sort, *extra],
                           capture_output=True, text=True)
        return [l for l in p.stdout.splitlines() if l.strip() and not l.startswith("#")]

    by_dso, by_symbol = report("dso"), report("dso,symbol", "--percent-limit", "1")
    for p in pdir.glob("*"):
        p.unlink()
    return (f"### perf profile of one LD_PRELOAD run of `{w.key}` (self time, `perf record -F 2000`)\n\n"
            "By object:\n\n```\n" + "\n".join(by_dso[:12]) + "\n```\n\nBy symbol (>= 1%):\n\n```\n"
            + "\n".join(by_symbol[:40]) + "\n```\n")
