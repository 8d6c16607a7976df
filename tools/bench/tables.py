"""Markdown tables of one workload's runs: the medians with their ratios, every round, and the failed runs."""
from __future__ import annotations

from dataclasses import dataclass

from idle import DISTURBED, disturbed
from memsift_trace import FN_NAMES
from runner import Run, Series
from util import fmt, median, mib, ratio

EXIT_KINDS = {0: "unknown", 1: "return", 2: "exit", 3: "_exit", 4: "abort", 5: "signal", 6: "exec",
              7: "destructor", 8: "status"}


@dataclass
class Medians:
    n_ok: int
    n: int
    n_disturbed: int
    wall: float | None
    cpu: float | None
    target_rss: float | None
    tree_rss: float | None
    trace: float | None
    crash_wall: float | None
    crash_status: str | None
    crash_trace: float | None


def medians(runs: list[Run]) -> Medians:
    ok = [r for r in runs if r.ok]
    bad = [r for r in runs if not r.ok]
    return Medians(len(ok), len(runs), sum(1 for r in ok if disturbed(r.wall, r.m.other_cpu)),
                   median(r.wall for r in ok), median(r.m.cpu for r in ok), median(r.target_rss_kb for r in ok),
                   median(r.m.tree_maxrss_kb for r in ok), median(r.trace_bytes for r in ok),
                   median(r.wall for r in bad), next((r.status for r in bad), None),
                   median(r.trace_bytes for r in bad))


SUMMARY_HEADER = ("| column | ok runs | wall median (s) | CPU user+sys median (s) | target peak RSS (MiB) | "
                  "tree max RSS (MiB) | trace file (MB) | trace bytes / allocation call | wall × untraced | "
                  "CPU × untraced | memsift run ÷ this: wall | ÷ this: CPU | ÷ this: target RSS |")


def summary_table(s: Series, calls: int | None) -> tuple[str, dict[str, Medians]]:
    """calls: the workload's allocation calls (the denominator of trace bytes / allocation call)."""
    med = {c.key: medians(s.runs[c.key]) for c in s.columns}
    base = med["untraced"]
    ms = med.get("memsift")
    ms_ok = ms is not None and ms.n_ok > 0
    lines = [SUMMARY_HEADER, "|" + "---|" * 13]
    for col in s.columns:
        m = med[col.key]
        if m.n_ok == 0:
            extra = ""
            if m.crash_wall is not None:
                extra = f" (median {m.crash_wall:.2f} s until it died"
                extra += f"; partial file {m.crash_trace / 1e6:.2f} MB)" if m.crash_trace else ")"
            reason = (m.crash_status or "crashed").replace("crashed: ", "")
            lines.append(f"| **{col.label}: crashed** | 0/{m.n} | {reason}{extra} |" + " |" * 10)
            continue

        def vs_memsift(mine, theirs):
            return fmt(ratio(mine, theirs), ".2f") if col.peer and ms_ok else "—"

        lines.append("| " + " | ".join([
            col.label,
            f"{m.n_ok}/{m.n}" + (f" ({m.n_disturbed} disturbed)" if m.n_disturbed else ""),
            fmt(m.wall, ".3f"), fmt(m.cpu, ".3f"), fmt(mib(m.target_rss), ".1f"), fmt(mib(m.tree_rss), ".1f"),
            "—" if m.trace is None else f"{m.trace / 1e6:.1f}",
            "—" if m.trace is None or not calls else f"{m.trace / calls:.2f}",
            "1.00" if col.key == "untraced" else fmt(ratio(m.wall, base.wall), ".2f"),
            "1.00" if col.key == "untraced" else fmt(ratio(m.cpu, base.cpu), ".2f"),
            vs_memsift(ms.wall if ms else None, m.wall), vs_memsift(ms.cpu if ms else None, m.cpu),
            vs_memsift(ms.target_rss if ms else None, m.target_rss),
        ]) + " |")
    for key, why in s.skipped.items():
        lines.append(f"| {key}: skipped | — | {why} |" + " |" * 10)
    return "\n".join(lines), med


def rounds_table(s: Series) -> str:
    n = max(len(v) for v in s.runs.values())
    lines = ["| round | " + " | ".join(c.label for c in s.columns) + " |", "|---|" + "---|" * len(s.columns)]
    for i in range(n):
        cells = []
        for c in s.columns:
            rs = s.runs[c.key]
            if i >= len(rs):
                cells.append("")
                continue
            r = rs[i]
            cell = f"{r.wall:.3f} / {fmt(r.m.cpu, '.2f')} / {fmt(r.m.other_cpu, '.2f', '?')}"
            cell += " (crashed)" if not r.ok else " *" if disturbed(r.wall, r.m.other_cpu) else ""
            cells.append(cell)
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


ROUNDS_NOTE = ("Per round, wall s / CPU s (command tree) / other CPU s (the rest of the machine during the run: other "
               "processes, kernel threads such as page-cache writeback, this driver); * = disturbed, i.e. other CPU > "
               f"{DISTURBED} x wall:\n")


def failures_section(s: Series, failure_traces: dict[tuple[str, int], dict]) -> str:
    """Every failed run but repeats of a peer's crash (one example each)."""
    out = []
    for col in s.columns:
        shown = False
        for r in s.runs[col.key]:
            if r.ok or (col.peer and shown):
                continue
            shown = True
            out.append(f"- {col.label}, round {r.round}: {r.status}; wall {r.wall:.2f} s; exit {r.m.exit}; "
                       f"output {r.trace_bytes if r.trace_bytes is not None else 'none'} bytes"
                       + (" (the first failure of this column; the others are alike)" if col.peer else ""))
            ft = failure_traces.get((col.key, r.round))
            if ft and "error" in ft:
                out.append(f"  - its trace: {ft['error']}")
            elif ft:
                end = ft.get("end")
                calls = sum(ft.get(n, 0) for n in FN_NAMES.values())
                out.append(f"  - its trace: {ft['records']:,} records, {calls:,} allocation calls and "
                           f"{ft['free']:,} frees recorded{', truncated' if ft['truncated'] else ''}; END: "
                           + (f"kind {end['kind']} ({EXIT_KINDS.get(end['kind'], '?')}), status {end['status']}, "
                              f"lost {end['lost_bytes']} bytes" if end else "missing"))
            if r.stderr_tail:
                out.append("  - stderr tail:\n\n" + "\n".join("        " + l for l in r.stderr_tail.splitlines()))
    return ("\n".join(out) + "\n") if out else ""
