"""What the two comparison scripts share: finding memsift, running a command
with a time limit, and checking that every trace a traced run left is
readable.

"Nothing is lost" (DESIGN.md, contract 4) is checked from the outside: every
process a traced run started must have left a trace that `memsift report`
reads (exit 0, JSON parses), whole (`complete`: the file ends with its end
record, or the collector salvaged it and said how the process ended).
"""

import concurrent.futures
import json
import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_memsift(path=None):
    """The memsift binary: PATH if given, else the release build, else the
    debug build (each finds libmemsift.so next to itself)."""
    candidates = [path] if path else [os.path.join(REPO, ".build", b, "memsift") for b in ("release", "debug")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            shim = os.path.join(os.path.dirname(c), "libmemsift.so")
            if not os.path.exists(shim):
                raise SystemExit(f"{c}: no libmemsift.so next to it (install -m 0755 cshim/build/libmemsift.so {shim})")
            return os.path.abspath(c)
    raise SystemExit(f"memsift not found at {' or '.join(candidates)} (swift build -c release)")


@dataclass
class Completed:
    returncode: int  # -N when killed by signal N
    seconds: float
    timed_out: bool
    output: str  # stdout and stderr, interleaved


def run(cmd, *, cwd, env, timeout, stdin_path=None):
    """Runs CMD in a session of its own, so a timeout kills the whole tree
    (the tests' own children included), not just the top process."""
    start = time.monotonic()
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            timed_out = True
    finally:
        if stdin_path:
            stdin.close()
    return Completed(proc.returncode, time.monotonic() - start, timed_out,
                     out.decode("utf-8", "backslashreplace"))


@dataclass
class TraceCheck:
    traces: int = 0
    read: int = 0  # traces read: all of them, or a sample
    unreadable: list = field(default_factory=list)  # (file, first line of the error)
    incomplete: list = field(default_factory=list)  # files whose report says complete: false
    endings: Counter = field(default_factory=Counter)  # process.exit.how -> count
    events: int = 0

    @property
    def ok(self):
        return self.traces > 0 and not self.unreadable and not self.incomplete

    def summary(self):
        s = f"{self.traces} traces, {self.events:,} events"
        if self.read < self.traces:
            s = f"{self.traces} traces, {self.read} read, {self.events:,} events"
        if self.unreadable:
            s += f", {len(self.unreadable)} UNREADABLE"
        if self.incomplete:
            s += f", {len(self.incomplete)} INCOMPLETE"
        return s


def read_trace(memsift, path, timeout):
    """(report, None) or (None, what went wrong)."""
    try:
        r = subprocess.run([memsift, "report", "--format", "json", "--top", "1", path],
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"report took over {timeout} s"
    if r.returncode != 0:
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, f"exit {r.returncode}: {err[0] if err else ''}"
    try:
        return json.loads(r.stdout), None
    except ValueError as e:
        return None, f"report is not JSON: {e}"


def check_traces(memsift, trace_dir, sample=None, jobs=2, timeout=600):
    """Reads every *.trace under TRACE_DIR with `memsift report --format
    json --top 1`, JOBS at a time; with SAMPLE, only that many, evenly
    spread over the names (the first process's trace always)."""
    check = TraceCheck()
    names = sorted(n for n in os.listdir(trace_dir) if n.endswith(".trace"))
    check.traces = len(names)
    if sample and len(names) > sample:
        first = [n for n in names if n == "t.trace"]
        rest = [n for n in names if n != "t.trace"]
        step = len(rest) / (sample - len(first))
        names = first + [rest[int(i * step)] for i in range(sample - len(first))]
    check.read = len(names)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        results = pool.map(lambda n: read_trace(memsift, os.path.join(trace_dir, n), timeout), names)
        for name, (report, err) in zip(names, results):
            if err:
                check.unreadable.append((name, err))
                continue
            if not report.get("complete"):
                check.incomplete.append(name)
            check.endings[report.get("process", {}).get("exit", {}).get("how", "?")] += 1
            check.events += report.get("events", 0)
    return check


def table(rows, header):
    """A Markdown table, columns padded so it also reads as plain text."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)
