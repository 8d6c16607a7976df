"""Sampling accuracy: the sampled trace's estimates of the top sites against the full trace's exact figures.

Sites are matched by their symbolized frames (`--group-by line`: the innermost frame's file and line, or the
Python line), so the two runs' different addresses do not matter. A Poisson sample by bytes at rate R estimates a
site of X bytes with a standard error of about sqrt(R·X) for blocks much smaller than R (tcmalloc's and
jemalloc's heap profiles have the same), i.e. a relative error of sqrt(R/X): the column *expected* gives it, so a
miss on a small site reads as what it is, statistics, not bias.
"""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

from runner import Series

TOP = 10


def _sites(memsift: str, trace: Path, sort: str, top: int) -> list[dict] | None:
    try:
        out = subprocess.run([memsift, "report", "--format", "json", "--group-by", "line", "--sort", sort, "--top",
                              str(top), str(trace)], capture_output=True, text=True, timeout=600, check=True).stdout
        return json.loads(out)["sites"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None


def _key(site: dict) -> tuple:
    return tuple((f.get("function"), f.get("file"), f.get("line")) for f in site.get("frames", [])[:1])


def _name(site: dict) -> str:
    f = (site.get("frames") or [{}])[0]
    where = f"{Path(f['file']).name}:{f.get('line')}" if f.get("file") else (f.get("module") or "?")
    return f"`{f.get('function', '?')}` {where}"


def section(plan: list[Series], memsift: str, rate: int) -> list[str]:
    out = ["## Sampling accuracy (`--sample-rate " + str(rate) + "` against full tracing)\n",
           __doc__.split("\n\n", 1)[1].strip() + "\n"]
    for s in plan:
        full, sampled = s.kept.get("memsift"), s.kept.get("sampled")
        if not full or not sampled:
            continue
        estimates = _sites(memsift, sampled, "peak", 100_000)
        if estimates is None:
            out.append(f"- {s.workload.key}: the sampled trace could not be read\n")
            continue
        by_key = {_key(e): e for e in estimates}
        for metric, field in (("peak", "peak_bytes"), ("leaked", "leaked_bytes")):
            exact = [x for x in (_sites(memsift, full, metric, TOP) or []) if x.get(field)]
            if not exact:
                continue
            rows = [f"### {s.workload.key}: top {len(exact)} sites by {metric} bytes\n",
                    "| site (by line) | exact | estimate | error | expected (1σ) |", "|---|---|---|---|---|"]
            within = 0
            for x in exact:
                est = by_key.get(_key(x), {}).get(field, 0)
                err = (est - x[field]) / x[field]
                within += abs(err) <= 0.10
                rows.append(f"| {_name(x)} | {x[field]:,} | {est:,} | {err:+.1%} | ±{math.sqrt(rate / x[field]):.1%} |")
            rows.append(f"\n{within} of {len(exact)} within 10%.\n")
            out += rows
    return out
