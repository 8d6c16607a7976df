"""The second half of a tracer's cost: turning its file into a report.

For each workload, the files of the first successful run of each tracer are
read back by that tracer's own analyzer, alternating, ANALYZE_ROUNDS times:

    memsift report TRACE              (the `memsift run` trace, zstd)
    heaptrack_print FILE              (heaptrack's .zst)
    python -m memray stats FILE       (Python: the `memray run --native --trace-python-allocators` file)

each with its default output (to a file), measured like the runs: wall, CPU,
peak RSS (VmHWM from the RSS probe; single processes). heaptrack_print runs under the same address-space
cap as heaptrack.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from columns import Tools
from idle import IdleGate
from runner import Measured, Series, clean_env, measure
from util import fmt, log, median, mib, ratio


@dataclass
class Analyzer:
    key: str
    label: str
    reads: str  # the column whose kept file it reads
    argv: list[str]  # {file} stands for that file
    rlimit_as: int | None = None


@dataclass
class Analysis:
    analyzer: Analyzer
    file: Path
    runs: list[Measured]

    def ok(self, m: Measured) -> bool:
        return m.exit == 0 and not m.timed_out


def analyzers_for(s: Series, t: Tools) -> list[Analyzer]:
    out = [Analyzer("memsift_report", "`memsift report TRACE`", "memsift", [t.memsift, "report", "{file}"]),
           Analyzer("heaptrack_print", "`heaptrack_print FILE`", "heaptrack", ["heaptrack_print", "{file}"],
                    rlimit_as=t.rlimit)]
    if s.workload.python:
        out.append(Analyzer("memray_stats", "`memray stats FILE` (of `memray run --native --trace-python-allocators`)",
                            "memray_full", [s.workload.argv[0], "-m", "memray", "stats", "{file}"]))
    return [a for a in out if a.reads in s.kept]


def run_analyses(plan: list[Series], t: Tools, rounds: int, scratch: Path, probe: Path, timeout: float,
                 gate: IdleGate) -> dict[str, list[Analysis]]:
    """workload key -> its analyses, each run `rounds` times, alternating within each round."""
    todo = {s.workload.key: [Analysis(a, s.kept[a.reads], []) for a in analyzers_for(s, t)] for s in plan}
    for rnd in range(1, rounds + 1):
        for key, analyses in todo.items():
            for an in analyses:
                gate.wait()
                argv = [x.replace("{file}", str(an.file)) for x in an.analyzer.argv]
                m = measure(argv, scratch / "analyze" / f"{key}-{an.analyzer.key}-{rnd}", clean_env({}), timeout,
                            probe, rlimit_as=an.analyzer.rlimit_as)
                an.runs.append(m)
                log(f"{key:14s} analyze {rnd}/{rounds} {an.analyzer.key:15s} wall={m.wall:7.3f}s "
                    f"rss={m.tree_maxrss_kb}KiB exit={m.exit}")
    return todo


def table(analyses: dict[str, list[Analysis]], titles: dict[str, str]) -> str:
    """One markdown table: per workload and analyzer, medians, and memsift report ÷ each other analyzer."""
    lines = ["| workload | analyzer | input file (MB) | ok runs | wall median (s) | CPU median (s) | peak RSS (MiB) | "
             "memsift report ÷ this: wall | memsift report ÷ this: peak RSS |", "|---|---|---|---|---|---|---|---|---|"]
    for key, ans in analyses.items():
        med = {}
        for an in ans:
            ok = [m for m in an.runs if an.ok(m)]
            med[an.analyzer.key] = (len(ok), median(m.wall for m in ok), median(m.cpu for m in ok),
                                    median(m.tree_maxrss_kb for m in ok))
        ms = med.get("memsift_report")
        for an in ans:
            n_ok, wall, cpu, rss = med[an.analyzer.key]
            size = f"{an.file.stat().st_size / 1e6:.1f}" if an.file.exists() else "?"
            if n_ok == 0:
                bad = an.runs[0] if an.runs else None
                why = f"failed: exit {bad.exit}" + (", timed out" if bad and bad.timed_out else "") if bad else "not run"
                lines.append(f"| {titles[key]} | **{an.analyzer.label}: {why}** | {size} | 0/{len(an.runs)} | "
                             "| | | | |")
                continue
            mine = an.analyzer.key == "memsift_report"
            lines.append("| " + " | ".join([
                titles[key], an.analyzer.label, size, f"{n_ok}/{len(an.runs)}", fmt(wall, ".3f"), fmt(cpu, ".3f"),
                fmt(mib(rss), ".1f"),
                "—" if mine or not ms or not ms[0] else fmt(ratio(ms[1], wall), ".2f"),
                "—" if mine or not ms or not ms[0] else fmt(ratio(ms[3], rss), ".2f")]) + " |")
    return "\n".join(lines)
