"""Count checks: what each tracer recorded against what the program did, and whether every run did the same.

The memsift traces are read by memsift_trace.py (an independent reader of the
format, not memsift's analyzer), heaptrack's files by heaptrack_file.py. The
program's own counts are its JSON line, for the workloads that print one;
for the others the tracers are compared with each other.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from heaptrack_file import check_heaptrack_file
from memsift_trace import FORMAT_WARNINGS, alloc_calls, parse_memsift_trace
from runner import Series
from util import fmt, log

RUNTIME_NOTE = ("allocation calls the C and C++ runtimes make by themselves, which the program does not count: "
                "libstdc++'s emergency exception pool (one malloc of 72,704 bytes from a constructor before main, in "
                "every process that loads libstdc++, which heaptrack's preload library does), glibc's per-thread "
                "DTV (a calloc in each pthread_create)")


@dataclass
class Checks:
    ref_counts: dict | None = None  # the program's JSON line (untraced run)
    ref_output: str | None = None
    differing: list[str] = field(default_factory=list)  # "column round N" whose output differs
    traces: dict[str, dict] = field(default_factory=dict)  # column key -> parse of its kept file
    failure_traces: dict[tuple[str, int], dict] = field(default_factory=dict)
    calls: int | None = None  # the workload's allocation calls
    calls_source: str = "n/a"


def program_calls(c: dict) -> int:
    return c["malloc"] + c["calloc"] + c["realloc"]


def gather(s: Series, scratch: Path) -> Checks:
    ch = Checks()
    base = next((r for r in s.runs["untraced"] if r.ok), None)
    mask = s.workload.output_mask

    def output(r) -> str:
        text = r.m.stdout.read_text(errors="replace")
        return re.sub(mask, "", text) if mask else text

    if base:
        ch.ref_counts = base.counts
        ch.ref_output = output(base)
    for col in s.columns:
        for r in s.runs[col.key]:
            if not r.ok or base is None:
                continue
            same = r.counts == ch.ref_counts if s.workload.counts_line else ch.ref_output in output(r)
            if not same:
                ch.differing.append(f"{col.label} round {r.round}")
        path = s.kept.get(col.key)
        if path and col.kind in ("memsift", "heaptrack"):
            log(f"{s.workload.key}: checking the {col.key} file {path.name} ...")
            if col.kind == "memsift":
                ch.traces[col.key] = parse_memsift_trace(path, scratch)
            else:
                run = next(r for r in s.runs[col.key] if r.ok)
                ch.traces[col.key] = check_heaptrack_file(path, scratch, run.m.stderr.read_text(errors="replace"))
        for rnd, fpath in s.failed.get(col.key, {}).items():
            ch.failure_traces[(col.key, rnd)] = parse_memsift_trace(fpath, scratch)
    if ch.ref_counts:
        ch.calls, ch.calls_source = program_calls(ch.ref_counts), "the program's own count"
    else:
        for key, label in (("memsift", "`memsift run`"), ("preload", "the LD_PRELOAD shim")):
            t = ch.traces.get(key)
            if t and "error" not in t:
                ch.calls, ch.calls_source = alloc_calls(t), f"as recorded by {label}"
                break
        else:
            ht = ch.traces.get("heaptrack", {})
            if isinstance(ht.get("calls"), int):
                ch.calls, ch.calls_source = ht["calls"], "as recorded by heaptrack"
    return ch


def _cell(key: str, c: dict, what: str) -> str:
    if "error" in c:
        return "error: " + c["error"]
    if key == "heaptrack":
        def num(k):
            return f"{c[k]:,}" if isinstance(c.get(k), int) else "n/a"
        return {"malloc": "—", "calloc": "—", "realloc": "—", "alloc_calls": num("calls"),
                "free": num("minus_lines") + " ('-' lines: frees of tracked blocks, incl. realloc's)",
                "leaked_allocations": num("leaked_allocations"),
                "leaked_bytes": (f"{c['flamegraph_leaked']:,} (summary: {c.get('leaked_text', '?')})"
                                 if isinstance(c.get("flamegraph_leaked"), int) else str(c.get("leaked_text", "n/a"))),
                "stacks": f"{fmt(c.get('flamegraph_stacks'), ',')} (distinct flamegraph stacks)"}[what]
    v = {"alloc_calls": alloc_calls(c), "stacks": c.get("stacks")}.get(what, c.get(what))
    return f"{v:,}" if isinstance(v, int) else str(v)


def _memsift_line(key: str, c: dict) -> str:
    end = c.get("end")
    return (f"- `{key}` trace: {c['records']:,} records, format v{c['format_version']}, writer {c['writer']}, "
            f"{'zstd' if c['compressed'] else 'uncompressed'}, realloc as {c['realloc_layout']}"
            + (f" ({c['realloc_done']:,} DONE records, {c['realloc_unpaired']} unpaired)"
               if c['realloc_layout'].startswith("REALLOC +") else "")
            + f"{', TRUNCATED' if c['truncated'] else ''}; END record: "
            + (f"backpressure {end['backpressure_waits']:,} waits / {end['backpressure_ns'] / 1e9:.3f} s, "
               f"lost {end['lost_bytes']} bytes, stack table full {end['stack_table_full']}" if end else "missing")
            + (" (writer 1 = the shim draining itself: its backpressure is time the target spent writing its own "
               "trace when the ring was full)" if c['writer'] == 1 and end and end['backpressure_waits'] else "")
            + ".")


def _heaptrack_lines(c: dict, ref: dict | None, null_old: int | None, ref_label: str) -> list[str]:
    out = [f"- heaptrack: heaptrack_print exit {c.get('print_rc')}; heaptrack_interpret's 'allocations' stat "
           f"{fmt(c.get('allocations_stat'), ',')}, flamegraph allocation sum {fmt(c.get('flamegraph_allocations'), ',')}, "
           f"'+' lines {fmt(c.get('plus_lines'), ',')}, distinct (size, stack) pairs ('a' lines) "
           f"{fmt(c.get('a_lines'), ',')}, temporary allocations {fmt(c.get('temporary'), ',')}, peak heap "
           f"{c.get('peak_heap')}."]
    minus = c.get("minus_lines")
    if ref and isinstance(minus, int) and null_old is not None:
        moved = ref["realloc"] - null_old
        out.append(f"- heaptrack '-' lines {minus:,} vs {ref_label} frees {ref['free']:,} + reallocs of a non-NULL block "
                   f"{moved:,} (realloc(NULL, n) calls: {null_old:,}, from the memsift trace) = {ref['free'] + moved:,}: "
                   "heaptrack records realloc of a non-NULL block as free + malloc; difference "
                   f"{minus - ref['free'] - moved:+d}.")
    return out


def section(s: Series, ch: Checks) -> str:
    out = [f"**Warning: {w}**\n" for w in FORMAT_WARNINGS]
    ref = ch.ref_counts
    if ch.ref_output is None:
        return "(no reference: the untraced run failed)\n"
    diff = f" except {', '.join(ch.differing)}" if ch.differing else ""
    if ref:
        out.append(f"The program's own JSON line (identical in every successful run{diff}):\n")
        out.append("```\n" + json.dumps(ref, separators=(",", ":")) + "\n```\n")
    else:
        digest = hashlib.sha256(ch.ref_output.encode()).hexdigest()[:12]
        n = len(ch.ref_output.splitlines())
        masked = f" (less `{s.workload.output_mask}`)" if s.workload.output_mask else ""
        out.append(f"The program's output ({n:,} line{'s' if n != 1 else ''}, sha256 {digest}…{masked}) appears "
                   f"unchanged in the output of every successful run{diff}.\n")
    out.append(f"Allocation calls: {fmt(ch.calls, ',')} ({ch.calls_source}).\n")
    if not ch.traces:
        return "\n".join(out)
    keys = list(ch.traces)
    rows = ["| count | " + ("program (JSON) | " if ref else "") + " | ".join(keys) + " |",
            "|---|" + ("---|" if ref else "") + "---|" * len(keys)]
    prog = dict(ref, alloc_calls=program_calls(ref), stacks=None) if ref else {}
    for what in ("malloc", "calloc", "realloc", "alloc_calls", "free", "leaked_allocations", "leaked_bytes", "stacks"):
        p = prog.get(what)
        rows.append(f"| {what} | " + (f"{'—' if p is None else f'{p:,}'} | " if ref else "")
                    + " | ".join(_cell(k, ch.traces[k], what) for k in keys) + " |")
    out.append("\n".join(rows) + "\n")
    null_old = next((v.get("realloc_null_old") for k, v in ch.traces.items()
                     if k != "heaptrack" and isinstance(v.get("realloc_null_old"), int)), None)
    deltas = []
    for key, c in ch.traces.items():
        if "error" in c:
            continue
        if key != "heaptrack":
            out.append(_memsift_line(key, c))
        else:
            basis, label = (ref, "program") if ref else (ch.traces.get("memsift") or ch.traces.get("preload"), "memsift")
            out.extend(_heaptrack_lines(c, basis if basis and "error" not in basis else None, null_old, label))
        n = alloc_calls(c) if key != "heaptrack" else c.get("calls")
        if ref and isinstance(n, int):
            deltas.append(f"{key} {n - program_calls(ref):+,}")
    if deltas:
        out.append(f"- allocation calls recorded − the program's: {', '.join(deltas)} ({RUNTIME_NOTE}).")
    out.append("")
    return "\n".join(out)
