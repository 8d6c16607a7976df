"""RESULTS.md: the document, assembled from the tables of the other modules."""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import accuracy
import analyzers
import counts
import production
import tables
from columns import SAMPLE_RATE, Column, Tools
from idle import DISTURBED, IdleGate
from machine import file_id, machine_info
from runner import Series
from util import fmt, ratio
from workloads import Build, Params


@dataclass
class Context:
    repo: Path
    scratch: Path
    params: Params
    rounds: int
    analyze_rounds: int
    command: str  # how run.sh was invoked (the environment that differs from the defaults)
    builds: list[Build]
    plan: list[Series]
    checks: dict[str, counts.Checks]
    analyses: dict[str, list[analyzers.Analysis]]
    tools: Tools
    gate: IdleGate
    git_start: str
    load_start: str
    ids_start: dict[str, str]  # shim, memsift -> file_id at the start
    seconds: float
    perf: str = ""
    meds: dict[str, dict[str, tables.Medians]] = field(default_factory=dict)


def _rel(ctx: Context, text: str) -> str:
    out = text.replace(str(ctx.scratch), "$SCRATCH")
    return out.replace(str(ctx.repo) + "/", "")


def _quote(word: str) -> str:
    """Shell quoting that leaves $SCRATCH and $RUNDIR expandable."""
    if re.fullmatch(r"[\w@%+=:,./$-]+", word):
        return word
    return f'"{word}"' if not re.search(r'["\\`]', word) else shlex.quote(word)


def _cmdline(ctx: Context, col: Column) -> str:
    env = {**col.env, "LD_PRELOAD": " ".join([*col.preload, "$SCRATCH/rssprobe.so"])}
    words = [f"{k}={_quote(_rel(ctx, v))}" for k, v in env.items()]
    words += [_quote(_rel(ctx, a.replace("{cwd}", "$RUNDIR"))) for a in col.argv]
    text = " ".join(words)
    if col.rlimit_as:
        text = f"(ulimit -v {ctx.tools.heaptrack_vmem_kb}; {text})"
    return text


def quick_banner(ctx: Context) -> list[str]:
    small = ctx.params.smaller_than_default()
    if not small and ctx.rounds >= 5:
        return []
    why = ([f"{ctx.rounds} round{'s' if ctx.rounds != 1 else ''} (full: 5)"] if ctx.rounds < 5 else []) + small
    return [f"**QUICK RUN, not a recorded result: {', '.join(why)}. Rerun `tools/bench/run.sh` with the defaults "
            "on a quiet machine for the numbers to quote.**\n"]


def summary(ctx: Context) -> list[str]:
    lines = ["| workload | allocation calls | memsift run × untraced (wall / CPU) | peer | peer × untraced "
             "(wall / CPU) | memsift run ÷ peer (wall / CPU / target peak RSS) | trace bytes / allocation call "
             "(memsift run / peer) |", "|---|---|---|---|---|---|---|"]
    for s in ctx.plan:
        key = s.workload.key
        if s.workload.only is not None:
            continue  # its own section (production.py)
        med, ch = ctx.meds[key], ctx.checks[key]
        base, ms = med["untraced"], med.get("memsift")

        def x(m, attr):
            return fmt(ratio(getattr(m, attr), getattr(base, attr)), ".2f") if m and m.n_ok else "n/a"

        def per_call(m):
            return f"{m.trace / ch.calls:.2f}" if m and m.n_ok and m.trace and ch.calls else "n/a"

        ms_cell = f"{x(ms, 'wall')} / {x(ms, 'cpu')}" if ms else "not run"
        for col in [c for c in s.columns if c.peer] or [None]:
            if col is None:
                lines.append(f"| {key} | {fmt(ch.calls, ',')} | {ms_cell} | (none) | | | |")
                continue
            p = med[col.key]
            if p.n_ok == 0:
                lines.append(f"| {key} | {fmt(ch.calls, ',')} | {ms_cell} | {col.label} | **crashed** in "
                             f"{p.n - p.n_ok}/{p.n} runs | — | {per_call(ms)} / — |")
                continue
            both = ms and ms.n_ok
            vs = (" / ".join(fmt(ratio(getattr(ms, a), getattr(p, a)), ".2f") for a in ("wall", "cpu", "target_rss"))
                  if both else "n/a")
            lines.append(f"| {key} | {fmt(ch.calls, ',')} | {ms_cell} | {col.label} | {x(p, 'wall')} / {x(p, 'cpu')} "
                         f"| {vs} | {per_call(ms)} / {per_call(p)} |")
    return lines


HOW_TO_READ = (
    "Every number is a median over the rounds, and every ratio is a ratio of medians. *× untraced* is the slowdown "
    "of the traced program against the untraced one (for Python: as it normally runs, with pymalloc). CPU counts "
    "every process of the command tree: for `memsift run` the collector that compresses the trace on the second "
    "core, for heaptrack its script, heaptrack_interpret and zstd; so on a 2-CPU machine a tracer whose helper "
    "process works in parallel shows a CPU ratio above its wall ratio. *memsift run ÷ this* (in the rows of the "
    "other tracers) below 1 means memsift is faster, or smaller, than that tracer on the same workload. *target peak "
    "RSS* is the traced program's own peak (what the tracer adds inside the target), from the RSS probe; *tree max "
    "RSS* the largest single process of the command tree (for heaptrack usually heaptrack_interpret). *trace bytes / "
    "allocation call* divides the size of what the tracer wrote by the workload's allocation calls (the program's "
    "own count where it prints one, else memsift's), the same denominator for every tracer. In the per-round "
    "tables, *other CPU* is what the rest of the machine used during that run; a run where it exceeds "
    f"{DISTURBED} x its wall time is marked * and counted as *disturbed*: on 2 CPUs another busy process takes the "
    "CPU that `memsift run`'s collector and heaptrack_interpret otherwise use in parallel with the target, so those "
    "runs are slower. Medians are robust to up to 2 disturbed runs out of 5; with more, the row is not a measurement "
    "of the tracer alone. The count checks compare what each tracer recorded with the program's own JSON line (or, "
    "without one, with each other).\n")

HEAPTRACK_CRASH = (
    "### Why heaptrack crashes on the random-size workloads\n\n"
    "Observed with Debian 12's heaptrack 1.4.0: heaptrack_interpret throws std::bad_alloc on `alloc_heavy random` at "
    "every size from about 64,000 steps up (bisected: 63,769 steps complete, 63,837 crash; with or without the memory "
    "cap, with `-g`, `-gdwarf-4` or no debug info), i.e. once about 59,000 distinct (size, stack) pairs ('a' "
    "allocation-info lines in its output) exist. Under gdb the throw comes from `operator new` of a 2^27 x 24-byte "
    "bucket array (3 GiB), a hash-map rehash that keeps doubling: consistent with a degenerate hash of its "
    "allocation-info keys (size, trace index). Real programs with few distinct sizes per call site stay below that; "
    "random sizes do not. The target then dies of SIGPIPE writing to heaptrack's pipe. (Said to be fixed in "
    "heaptrack 1.5.0; not verified here.) The `pow2` workloads exist for this reason: at most 13 sizes per call "
    "stack, and heaptrack 1.4.0 completes them at full size.\n")


def commands(ctx: Context) -> list[str]:
    md = ["```", ctx.command, "# builds (cwd: the repository; $SCRATCH: the scratch directory):"]
    md += [f"#   {' '.join(b.argv)}" for b in ctx.builds]
    for s in ctx.plan:
        md.append(f"# {s.workload.key}:")
        md += [f"#   {c.key + ':':16s} {_cmdline(ctx, c)}" for c in s.columns]
    md.append("# report timing (on the files of the first successful run of each tracer):")
    seen = set()
    for ans in ctx.analyses.values():
        for an in ans:
            if an.analyzer.key not in seen:
                seen.add(an.analyzer.key)
                argv = " ".join(_quote(_rel(ctx, a)) for a in an.analyzer.argv).replace('"{file}"', "{file}")
                md.append(f"#   {an.analyzer.key + ':':16s} LD_PRELOAD=$SCRATCH/rssprobe.so {argv} > stdout.txt")
    md.append("# Each command runs as a child of bench.py in a fresh directory $RUNDIR, in its own session, stdin "
              "/dev/null, stdout and stderr to files, with BENCH_RSS_FILE=$RUNDIR/rss.txt; wall = perf_counter around "
              "it, CPU = os.wait4's rusage (user+sys), peak RSS = the probe's lines. Order within each round: "
              + "; ".join(f"{s.workload.key}: " + ", ".join(c.key for c in s.columns) for s in ctx.plan) + ".")
    md.append("```\n")
    return md


def notes() -> list[str]:
    return [
        "## Notes on the columns\n",
        "- CPU is user+sys of the whole command tree (heaptrack: the script, the target, heaptrack_interpret and zstd; "
        "memsift run: the collector and the target; memray: the interpreter alone).",
        "- target peak RSS: the target's own peak (VmHWM of /proc/self/status at exit), written by "
        "`tools/bench/rssprobe.c`, an LD_PRELOAD library with only a destructor, preloaded into every command tree "
        "(each tracer passes LD_PRELOAD on, prepending its own library); tree max RSS: the largest such peak of the "
        "processes of the command tree. (Not getrusage's ru_maxrss: that also counts the address space a process "
        "had before its exec, a copy of its parent's, e.g. this driver's.)",
        "- trace file: the LD_PRELOAD shim (self-drain) writes raw records, `memsift run` zstd, heaptrack zstd of its "
        "text format (heaptrack_interpret deduplicates (size, stack) pairs and writes one short line per event, "
        "which compresses far better than memsift's fixed-size binary records), memray its own binary format. The "
        "memsift counts are read back from the trace files by `memsift_trace.py` (replaying allocations and frees "
        "for the leaks); heaptrack's with heaptrack_print (summary, flamegraph sums) and by counting the '+'/'-'/'a' "
        "lines of its file.\n",
    ]


def document(ctx: Context) -> str:
    for s in ctx.plan:
        ctx.meds[s.workload.key] = tables.summary_table(s, ctx.checks[s.workload.key].calls)[1]
    md = ["# memsift benchmark: memsift against heaptrack and memray\n"]
    md += quick_banner(ctx)
    md.append("Generated by `tools/bench/run.sh` (do not edit by hand; rerun it).\n")
    md.append("## Summary\n")
    md.append("Medians; the full tables, per round, and the count checks follow below.\n")
    md += summary(ctx) + [""]
    md.append("## Machine\n")
    md += machine_info(ctx.git_start, ctx.load_start, ctx.params.python)
    md.append(ctx.gate.describe())
    for name, path in (("shim", ctx.tools.shim), ("CLI", ctx.tools.memsift)):
        now = file_id(path)
        md.append(f"- {name}: `{os.path.relpath(path, ctx.repo)}` ({ctx.ids_start[name]})"
                  + ("" if now == ctx.ids_start[name] else f" — **replaced during the benchmark** (now {now})"))
    md.append("")
    md.append("## Workloads\n")
    for s in ctx.plan:
        md.append(f"- **{s.workload.key}** — {s.workload.title}, {s.workload.size}: {s.workload.description}")
    md.append("")
    md.append("## Commands\n")
    md += commands(ctx)
    md.append("## How to read this\n")
    md.append(HOW_TO_READ)
    crashed = [s for s in ctx.plan if "heaptrack" in ctx.meds[s.workload.key]
               and ctx.meds[s.workload.key]["heaptrack"].n_ok == 0]
    if any(s.workload.key.endswith("_random") for s in crashed):
        md.append(HEAPTRACK_CRASH)
    if ctx.tools.rlimit:
        md.append(f"heaptrack (and heaptrack_print) run under `ulimit -v {ctx.tools.heaptrack_vmem_kb}` (KiB; env "
                  "`HEAPTRACK_VMEM_KB`, `unlimited` lifts it): heaptrack 1.4.0's heaptrack_interpret otherwise grows "
                  "to all free memory (18.9 GB on a 24 GB machine, ~65 s) before it throws std::bad_alloc on the "
                  "random-size workloads. The cap changes nothing for a heaptrack that works; it only makes the crash "
                  "cheap. A crashed tracer is a row of its own in the tables.\n")
    for n, s in enumerate(ctx.plan, 1):
        w, ch = s.workload, ctx.checks[s.workload.key]
        md.append(f"## Results {n}: {w.title}, {w.size} ({ctx.rounds} round{'s' if ctx.rounds != 1 else ''}, "
                  "medians)\n")
        md.append(tables.summary_table(s, ch.calls)[0] + "\n")
        md.append(tables.ROUNDS_NOTE)
        md.append(tables.rounds_table(s) + "\n")
        fail = tables.failures_section(s, ch.failure_traces)
        if fail:
            md.append("Failed runs:\n")
            md.append(fail)
        md.append(f"### Counts ({w.key}): program vs tracers\n")
        md.append(counts.section(s, ch))
    for s in ctx.plan:
        if s.workload.key == "service":
            md += production.section(s, ctx.meds[s.workload.key], ctx.tools.memsift)
    if ctx.tools.memsift:
        md += accuracy.section(ctx.plan, ctx.tools.memsift, int(SAMPLE_RATE))
    md.append(f"## Report time: memsift report vs heaptrack_print ({ctx.analyze_rounds} round"
              f"{'s' if ctx.analyze_rounds != 1 else ''}, medians)\n")
    md.append("Each analyzer reads the file of the first successful run of its tracer on the workload and writes its "
              "default report to a file. A tracer that crashed on a workload left no file to analyze there.\n")
    md.append(analyzers.table(ctx.analyses, {s.workload.key: s.workload.key for s in ctx.plan}) + "\n")
    md += notes()
    if ctx.perf:
        md.append("## Where the shim's time goes\n")
        md.append(ctx.perf)
    md.append(f"\nTotal benchmark time: {ctx.seconds:.0f} s.\n")
    return "\n".join(md)
