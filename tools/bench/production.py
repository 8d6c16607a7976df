"""The production mode over time: trace size per hour and overhead of the leaking service (workload `service`).

`memsift run --live --sample-rate 524288` writes the sites that changed at each snapshot. Two runs with the same
sample (MEMSIFT_SAMPLE_SEED), one with the default interval (60 s: in a short run only the label, the new-peak
snapshots, at most one a second while the heap grows by 10%, and the end) and one with a snapshot every 0.25 s,
differ by what the extra snapshots cost; the default trace minus its snapshots is the fixed part (process,
modules, stacks, code objects). An hour at an interval of T seconds is then about fixed + (3600 / T) x bytes per
snapshot, assuming the service keeps changing as many sites per snapshot as here (its leak and its churn do not
stop), plus one snapshot per 10% of heap growth.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from runner import Series
from tables import Medians
from util import fmt, ratio


def _snapshots(memsift: str, trace: Path) -> int | None:
    try:
        out = subprocess.run([memsift, "snapshots", "--format", "json", str(trace)], capture_output=True, text=True,
                             timeout=300, check=True).stdout
        return len(json.loads(out)["snapshots"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None


def section(series: Series, meds: dict[str, Medians], memsift: str) -> list[str]:
    base = meds.get("untraced")
    rows = ["| column | ok runs | wall median (s) | × untraced (pymalloc) | CPU × untraced | trace (bytes, median) | "
            "snapshots in the kept trace |", "|---|---|---|---|---|---|---|"]
    snaps: dict[str, int | None] = {}
    for col in series.columns:
        m = meds[col.key]
        kept = series.kept.get(col.key)
        snaps[col.key] = _snapshots(memsift, kept) if kept else None
        rows.append(f"| {col.label} | {m.n_ok}/{m.n} | {fmt(m.wall, '.3f')} | "
                    f"{fmt(ratio(m.wall, base.wall), '.2f') if base else 'n/a'} | "
                    f"{fmt(ratio(m.cpu, base.cpu), '.2f') if base else 'n/a'} | {fmt(m.trace, ',.0f')} | "
                    f"{fmt(snaps[col.key], 'd')} |")
    out = [f"## The production mode over time ({series.workload.key})\n", __doc__.split("\n\n", 1)[1].strip() + "\n",
           "\n".join(rows) + "\n"]
    slow, fast = meds.get("production"), meds.get("production_fast")
    n_slow, n_fast = snaps.get("production"), snaps.get("production_fast")
    if (slow and fast and slow.trace and fast.trace and n_slow is not None and n_fast and n_fast > n_slow
            and fast.trace > slow.trace):
        per_snapshot = (fast.trace - slow.trace) / (n_fast - n_slow)
        fixed = max(slow.trace - n_slow * per_snapshot, 0)
        hour = {t: fixed + 3600 / t * per_snapshot for t in (60, 1)}
        out.append(f"- bytes per snapshot: ({fast.trace:,.0f} − {slow.trace:,.0f}) / ({n_fast} − {n_slow}) = "
                   f"**{per_snapshot:,.0f}**; fixed part {fixed:,.0f} bytes.")
        out.append(f"- trace size per hour: **{hour[60] / 1e6:.2f} MB** at the default interval (60 s), "
                   f"**{hour[1] / 1e6:.1f} MB** at a snapshot every second.")
        out.append(f"- overhead: **{fmt(ratio(slow.wall, base.wall), '.2f')}×** wall, "
                   f"{fmt(ratio(slow.cpu, base.cpu), '.2f')}× CPU against the service as it normally runs "
                   "(pymalloc).\n")
    else:
        out.append("- (no per-hour figure: a production column failed, its traces could not be read, or the extra "
                   "snapshots cost nothing measurable)\n")
    return out
