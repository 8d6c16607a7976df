#!/usr/bin/env python3
"""Overhead benchmark driver (python3 >= 3.11, stdlib only). Run through run.sh.

Runs the alloc_heavy workload in each of its size modes (--sizes, default
"pow2,random"), alternating within each round, mode by mode: untraced, under
the preload shim (LD_PRELOAD, the shim drains its own ring), under `memsift
run` (if the CLI exists) and under heaptrack; reports medians, ratios, trace
bytes per event, and cross-checks what each tracer counted against the
program's own JSON line. Writes markdown to stdout and to --results.

Timing: wall time is measured here (time.perf_counter around the whole
command). CPU time (user+sys, including every waited-for descendant: the
heaptrack script, heaptrack_interpret, zstd, the memsift collector) and the max
RSS of the process tree come from /usr/bin/time -f when present, else from
os.wait4 (the same rusage GNU time reports). The target's own peak RSS is
reported by the workload itself (ALLOC_HEAVY_RSS=1 -> getrusage on stderr).
"""
from __future__ import annotations

import argparse
import glob
import json
import mmap
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

GNU_TIME = "/usr/bin/time"
TIME_DESC = '`/usr/bin/time -f "%e %U %S %M %x"`'

# ---------------------------------------------------------------------------
# memsift trace format (cshim/include/memsift/trace_format.h)

# Defaults; load_format() refreshes the constants from the header itself, so a
# renumbering or a new magic there does not silently break the count check.
MS_TRACE_MAGIC = 0x00544649534D454D  # "MEMSIFT\0" little-endian
MS_RECORD_MAGIC = 0xA5
MS_FILE_ZSTD = 0x1
FILE_HEADER = struct.Struct("<QIIIIiiQQII")  # 56 bytes
REC_HEADER = struct.Struct("<IBBBB")
ALLOC_BODY = struct.Struct("<QQQII")  # time, ptr, size, stack, tid
FREE_BODY = struct.Struct("<QQ")  # time, ptr
# realloc, two layouts under the same MEMSIFT_FORMAT_VERSION 1, told apart by the record size:
#   before commit 9fd2f87: one 48-byte REALLOC record (time, old, new, size, stack, tid), written after the call;
#   since: a 40-byte REALLOC before the call (time, old, size, stack, tid) and a 40-byte REALLOC_DONE after it
#   (time, old, new, tid, reserved), paired by tid.
REALLOC_BODY_V1A = struct.Struct("<QQQQII")  # time, old, new, size, stack, tid
REALLOC_BODY = struct.Struct("<QQQII")  # time, old, size, stack, tid
REALLOC_DONE_BODY = struct.Struct("<QQQII")  # time, old, new, tid, reserved
END_BODY = struct.Struct("<QIiQQQQ")
REC = {"ALLOC": 6, "FREE": 7, "REALLOC": 8, "STACK": 5, "END": 11, "REALLOC_DONE": 12}
FN_NAMES = {1: "malloc", 2: "calloc", 3: "realloc", 4: "reallocarray", 5: "posix_memalign",
            6: "aligned_alloc", 7: "memalign", 8: "valloc", 9: "pvalloc"}
EXPECTED_SIZES = {"ms_file_header_t": FILE_HEADER.size, "ms_record_header_t": 8,
                  "ms_alloc_record_t": 8 + ALLOC_BODY.size, "ms_free_record_t": 8 + FREE_BODY.size,
                  "ms_realloc_record_t": (8 + REALLOC_BODY.size, 8 + REALLOC_BODY_V1A.size),
                  "ms_realloc_done_record_t": 8 + REALLOC_DONE_BODY.size, "ms_end_record_t": 8 + END_BODY.size}
FORMAT_WARNINGS: list[str] = []


def load_format(header: Path) -> None:
    """Reads the magics and enums from trace_format.h; notes layout drift."""
    global MS_TRACE_MAGIC, MS_RECORD_MAGIC, MS_FILE_ZSTD
    try:
        text = header.read_text()
    except OSError as e:
        FORMAT_WARNINGS.append(f"cannot read {header}: {e}; using built-in constants")
        return
    m = re.search(r"#define\s+MEMSIFT_TRACE_MAGIC\s+(0x[0-9A-Fa-f]+)", text)
    if m:
        MS_TRACE_MAGIC = int(m.group(1), 16)
    m = re.search(r"#define\s+MS_RECORD_MAGIC\s+(0x[0-9A-Fa-f]+)", text)
    if m:
        MS_RECORD_MAGIC = int(m.group(1), 16)
    m = re.search(r"#define\s+MS_FILE_ZSTD\s+(0x[0-9A-Fa-f]+)", text)
    if m:
        MS_FILE_ZSTD = int(m.group(1), 16)
    for name in list(REC):
        m = re.search(rf"\bMS_REC_{name}\s*=\s*(\d+)", text)
        if m:
            REC[name] = int(m.group(1))
    fns = dict(re.findall(r"\bMS_FN_([A-Z_]+)\s*=\s*(\d+)", text))
    if fns:
        FN_NAMES.clear()
        FN_NAMES.update({int(v): k.lower() for k, v in fns.items()})
    for typ, size in re.findall(r"_Static_assert\(sizeof\((\w+)\)\s*==\s*(\d+)", text):
        known = EXPECTED_SIZES.get(typ)
        if known is not None and int(size) not in (known if isinstance(known, tuple) else (known,)):
            FORMAT_WARNINGS.append(f"{typ} is {size} bytes in the header but {known} in bench.py: "
                                   "the count check may be wrong until bench.py is updated")


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def parse_memsift_trace(path: Path, scratch: Path) -> dict:
    """Counts the records of a memsift trace and replays the heap to find leaks."""
    with open(path, "rb") as f:
        head = f.read(FILE_HEADER.size)
    if len(head) < FILE_HEADER.size:
        return {"error": "file shorter than its header"}
    magic, version, header_size, flags, writer, *_ = FILE_HEADER.unpack(head)
    if magic != MS_TRACE_MAGIC:
        return {"error": f"bad magic {magic:#x} (trace_format.h says {MS_TRACE_MAGIC:#x})"}
    raw_path, tmp = path, None
    if flags & MS_FILE_ZSTD:
        if not shutil.which("zstd"):
            return {"error": "trace is zstd-compressed and no zstd CLI was found"}
        tmp = scratch / (path.name + ".decompressed")
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            src.seek(header_size)
            subprocess.run(["zstd", "-dcq"], stdin=src, stdout=dst, check=True)
        raw_path, start = tmp, 0
    else:
        start = header_size
    counts = {name: 0 for name in FN_NAMES.values()}
    counts.update(free=0, stacks=0, records=0, realloc_null_old=0, realloc_done=0, realloc_unpaired=0,
                  realloc_layout="none seen")
    in_flight: dict[int, tuple[int, int]] = {}
    live: dict[int, int] = {}
    end = None
    truncated = False
    with open(raw_path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > start:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                off = start
                unpack_h = REC_HEADER.unpack_from
                unpack_a = ALLOC_BODY.unpack_from
                unpack_f = FREE_BODY.unpack_from
                unpack_r = REALLOC_BODY.unpack_from
                unpack_r1a = REALLOC_BODY_V1A.unpack_from
                unpack_rd = REALLOC_DONE_BODY.unpack_from
                old_realloc_size = 8 + REALLOC_BODY_V1A.size
                in_flight: dict[int, tuple[int, int]] = {}  # tid -> (old, size), REALLOC waiting for its DONE
                rec_magic = MS_RECORD_MAGIC
                r_alloc, r_free, r_realloc, r_stack, r_end, r_done = (
                    REC[k] for k in ('ALLOC', 'FREE', 'REALLOC', 'STACK', 'END', 'REALLOC_DONE'))
                while off + 8 <= size:
                    rsize, rtype, _state, aux, rmagic = unpack_h(m, off)
                    if rsize < 8 or rsize & 7 or off + rsize > size or rmagic != rec_magic:
                        truncated = True
                        break
                    counts["records"] += 1
                    if rtype == r_alloc:
                        _t, ptr, sz, _s, _tid = unpack_a(m, off + 8)
                        counts[FN_NAMES.get(aux, "other")] = counts.get(FN_NAMES.get(aux, "other"), 0) + 1
                        live[ptr] = sz
                    elif rtype == r_free:
                        counts["free"] += 1
                        live.pop(unpack_f(m, off + 8)[1], None)
                    elif rtype == r_realloc:
                        name = FN_NAMES.get(aux, "other")
                        counts[name] = counts.get(name, 0) + 1
                        if rsize == old_realloc_size:  # one record, after the call
                            counts["realloc_layout"] = "one record"
                            _t, old, new, sz, _s, _tid = unpack_r1a(m, off + 8)
                            if new:
                                if old:
                                    live.pop(old, None)
                                live[new] = sz
                            elif sz == 0 and old:
                                live.pop(old, None)
                        else:  # REALLOC before the call, REALLOC_DONE after it
                            counts["realloc_layout"] = "REALLOC + REALLOC_DONE"
                            _t, old, sz, _s, tid = unpack_r(m, off + 8)
                            if tid in in_flight:
                                counts["realloc_unpaired"] += 1
                            in_flight[tid] = (old, sz)
                        if old == 0:
                            counts["realloc_null_old"] += 1
                    elif rtype == r_done:
                        counts["realloc_done"] += 1
                        _t, old, new, tid, _r = unpack_rd(m, off + 8)
                        begun = in_flight.pop(tid, None)
                        if begun is None or begun[0] != old:
                            counts["realloc_unpaired"] += 1
                        else:
                            sz = begun[1]
                            if new or sz == 0:  # else failed: the old block is untouched
                                if old:
                                    live.pop(old, None)
                                if new:
                                    live[new] = sz
                    elif rtype == r_stack:
                        counts["stacks"] += 1
                    elif rtype == r_end:
                        _t, kind, status, bp_ns, bp_waits, lost, table_full = END_BODY.unpack_from(m, off + 8)
                        end = {"kind": kind, "status": status, "backpressure_ns": bp_ns,
                               "backpressure_waits": bp_waits, "lost_bytes": lost, "stack_table_full": table_full}
                    off += rsize
    if tmp:
        tmp.unlink(missing_ok=True)
    counts["realloc_unpaired"] += len(in_flight)
    counts["leaked_allocations"] = len(live)
    counts["leaked_bytes"] = sum(live.values())
    counts["compressed"] = bool(flags & MS_FILE_ZSTD)
    counts["writer"] = writer
    counts["format_version"] = version
    counts["end"] = end
    counts["truncated"] = truncated
    return counts


def check_heaptrack_file(path: Path, scratch: Path, run_stderr: str) -> dict:
    """heaptrack_interpret's closing stats, heaptrack_print's summary, exact sums from its flamegraphs."""
    out: dict = {}
    # heaptrack_interpret prints "heaptrack stats:" (allocations, leaked allocations, temporary) on stderr.
    for key, rx in [("allocations_stat", r"^\s*allocations:\s*(\d+)"),
                    ("leaked_allocations", r"leaked allocations:\s*(\d+)"),
                    ("temporary_stat", r"temporary allocations:\s*(\d+)")]:
        m = re.search(rx, run_stderr, re.M)
        if m:
            out[key] = int(m.group(1))
    p = subprocess.run(["heaptrack_print", "-f", str(path), "-p", "0", "-a", "0", "-T", "0"],
                       capture_output=True, text=True)
    out["print_rc"] = p.returncode
    text = p.stdout + p.stderr
    for key, rx in [("calls", r"calls to allocation functions: (\d+)"),
                    ("temporary", r"temporary memory allocations: (\d+)"),
                    ("leaked_text", r"total memory leaked: (\S+)"),
                    ("peak_heap", r"peak heap memory consumption: (\S+)")]:
        m = re.search(rx, text)
        if m:
            out[key] = int(m.group(1)) if m.group(1).isdigit() else m.group(1)
    for cost in ("leaked", "allocations"):
        fg = scratch / f"heaptrack-flamegraph-{cost}.txt"
        q = subprocess.run(["heaptrack_print", "-f", str(path), "-p", "0", "-a", "0", "-T", "0",
                            "--flamegraph-cost-type", cost, "-F", str(fg)], capture_output=True, text=True)
        if q.returncode == 0 and fg.exists():
            total, stacks = 0, 0
            for line in fg.read_text(errors="replace").splitlines():
                parts = line.rsplit(" ", 1)
                if len(parts) == 2 and parts[1].isdigit():
                    total += int(parts[1])
                    stacks += 1
            out[f"flamegraph_{cost}"] = total
            out["flamegraph_stacks"] = stacks
            fg.unlink()
    # Raw event lines in the interpreted file: '+' allocation, '-' deallocation.
    if shutil.which("zstd") and path.suffix == ".zst":
        z = subprocess.Popen(["zstd", "-dcq", str(path)], stdout=subprocess.PIPE)
        plus = minus = infos = 0
        first_infos: list[int] = []  # sizes of the first 'a' lines ("a SIZE TRACE", hex)
        first_alloc = None  # "+ INFO": the first allocation's info index (hex)
        assert z.stdout
        for line in z.stdout:
            c = line[:1]
            if c == b"+":
                plus += 1
                if first_alloc is None:
                    first_alloc = int(line.split()[1], 16)
            elif c == b"-":
                minus += 1
            elif c == b"a":
                infos += 1
                if len(first_infos) < 16:
                    first_infos.append(int(line.split()[1], 16))
        z.wait()
        out["plus_lines"], out["minus_lines"], out["a_lines"] = plus, minus, infos
        if first_alloc is not None and first_alloc < len(first_infos):
            out["first_alloc_size"] = first_infos[first_alloc]
    return out


# ---------------------------------------------------------------------------
# running


@dataclass
class Column:
    key: str
    label: str
    argv: list[str]  # with {steps}, {sizes}, {cwd} placeholders
    env: dict[str, str] = field(default_factory=dict)
    trace_glob: str | None = None  # relative to the run's cwd
    kind: str = "none"  # none | memsift | heaptrack
    rlimit_as: int | None = None


@dataclass
class Run:
    column: str
    round: int
    steps: int
    sizes: str
    wall: float
    user: float | None
    sys: float | None
    tree_maxrss_kb: int | None
    target_maxrss_kb: int | None
    exit: int | None
    counts: dict | None
    trace_bytes: int | None
    trace_path: Path | None
    status: str
    stderr_tail: str
    failure_trace: dict | None = None
    other_cpu: float | None = None  # CPU s the whole machine spent outside the command tree meanwhile


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_busy_seconds() -> float | None:
    """Busy CPU time of the whole machine so far (/proc/stat: all but idle and iowait), in seconds."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    v = [int(x) for x in fields[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already inside user/nice]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def expand(argv: list[str], steps: int, sizes: str, cwd: Path) -> list[str]:
    return [a.replace("{steps}", str(steps)).replace("{sizes}", sizes).replace("{cwd}", str(cwd)) for a in argv]


def run_dir(scratch: Path, key: str, sizes: str, steps: int, rnd: int) -> Path:
    return scratch / "runs" / f"{key}-{sizes}-{steps}-{rnd}"


def run_once(col: Column, rnd: int, steps: int, sizes: str, scratch: Path, timeout: float) -> Run:
    cwd = run_dir(scratch, col.key, sizes, steps, rnd)
    cwd.mkdir(parents=True, exist_ok=True)
    argv = expand(col.argv, steps, sizes, cwd)
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.update(col.env)
    env["ALLOC_HEAVY_RSS"] = "1"
    timefile = cwd / "time.txt"
    use_gnu_time = os.access(GNU_TIME, os.X_OK)
    full = [GNU_TIME, "-f", "%e %U %S %M %x", "-o", str(timefile), *argv] if use_gnu_time else argv

    def preexec() -> None:
        os.setsid()
        if col.rlimit_as:
            resource.setrlimit(resource.RLIMIT_AS, (col.rlimit_as, col.rlimit_as))

    out_path, err_path = cwd / "stdout.txt", cwd / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        busy0 = machine_busy_seconds()
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                preexec_fn=preexec)
        deadline = t0 + timeout
        status_word, ru = None, None
        while True:
            pid, status_word, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status_word, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        busy1 = machine_busy_seconds()
        proc.returncode = os.waitstatus_to_exitcode(status_word)
    timed_out = wall > timeout
    user = sys_t = tree_rss = None
    exit_code: int | None = proc.returncode
    if use_gnu_time and timefile.exists():
        lines = [l for l in timefile.read_text().splitlines() if re.match(r"^[\d.]+ [\d.]+ [\d.]+ \d+ -?\d+$", l)]
        if lines:
            e, u, s, mrss, x = lines[-1].split()
            user, sys_t, tree_rss, exit_code = float(u), float(s), int(mrss), int(x)
    if ru is not None:
        # The wrapper's rusage covers the command and all its waited-for
        # descendants, like GNU time's %U %S, at microsecond resolution
        # instead of 10 ms (GNU time's own share is about a millisecond).
        user, sys_t = ru.ru_utime, ru.ru_stime
        if tree_rss is None:
            tree_rss = ru.ru_maxrss
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    counts = None
    for line in stdout.splitlines():
        if line.startswith('{"malloc"'):
            try:
                counts = json.loads(line)
            except json.JSONDecodeError:
                pass
    m = re.search(r"alloc_heavy maxrss_kb=(\d+)", stderr)
    target_rss = int(m.group(1)) if m else None
    trace_path = None
    trace_bytes = None
    if col.trace_glob:
        found = sorted(glob.glob(str(cwd / col.trace_glob)))
        if found:
            trace_path = Path(found[0])
            trace_bytes = sum(os.path.getsize(p) for p in found)
    problems = []
    if timed_out:
        problems.append(f"timed out after {timeout:.0f} s")
    if "bad_alloc" in stderr or "terminate called" in stderr:
        problems.append("heaptrack_interpret died: std::bad_alloc" if col.kind == "heaptrack"
                        else "std::bad_alloc")
    if exit_code not in (0, None):
        if exit_code == 141 or exit_code == -13:
            problems.append("target killed by SIGPIPE (exit 141)")
        else:
            problems.append(f"exit status {exit_code}")
    if counts is None:
        problems.append("no JSON line from the target")
    elif counts.get("sizes", "random") != sizes:
        problems.append(f"the target ran in size mode {counts.get('sizes', 'random')!r}, not {sizes!r}")
    if col.trace_glob and not trace_path:
        problems.append("no trace file")
    status = "ok" if not problems else "crashed: " + "; ".join(problems)
    tail = "\n".join(stderr.strip().splitlines()[-6:])
    other = None
    if busy0 is not None and busy1 is not None and user is not None and sys_t is not None:
        other = max(0.0, busy1 - busy0 - user - sys_t)
    return Run(col.key, rnd, steps, sizes, wall, user, sys_t, tree_rss, target_rss, exit_code, counts, trace_bytes,
               trace_path, status, tail, other_cpu=other)


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec: str = ".2f", none: str = "n/a") -> str:
    return none if x is None else format(x, spec)


def events_of(counts: dict) -> int:
    return counts["malloc"] + counts["calloc"] + counts["realloc"] + counts["free"]


def alloc_calls(counts: dict) -> int:
    return counts["malloc"] + counts["calloc"] + counts["realloc"]


@dataclass
class Series:
    steps: int
    sizes: str
    runs: dict[str, list[Run]]
    checks: dict[str, dict]


@dataclass
class IdleGate:
    """Before each run, waits (up to per_run s, at most budget s in all) until the rest of the machine has used
    less than `threshold` CPUs over a 0.5 s window, so that runs start on a quiet machine when one can be had."""
    per_run: float = 10.0
    budget: float = 60.0
    threshold: float = 0.25
    waited: float = 0.0
    gates: int = 0
    timed_out: int = 0

    def wait(self) -> None:
        if self.per_run <= 0:
            return
        self.gates += 1
        t0 = time.perf_counter()
        while True:
            b0, w0 = machine_busy_seconds(), time.perf_counter()
            time.sleep(0.5)
            b1, w1 = machine_busy_seconds(), time.perf_counter()
            if b0 is None or b1 is None or (b1 - b0) / (w1 - w0) < self.threshold:
                break
            spent = time.perf_counter() - t0
            if spent >= self.per_run or self.waited + spent >= self.budget:
                self.timed_out += 1
                break
        self.waited += max(0.0, time.perf_counter() - t0 - 0.5)


GATE = IdleGate()


def run_series(cols: list[Column], steps: int, sizes_list: list[str], rounds: int, scratch: Path, timeout: float,
               keep: bool, check: bool) -> dict[str, Series]:
    """Every round runs every size mode, and within it every column, in order."""
    series = {sz: Series(steps, sz, {c.key: [] for c in cols}, {}) for sz in sizes_list}
    for rnd in range(1, rounds + 1):
        for sizes in sizes_list:
            runs, checks = series[sizes].runs, series[sizes].checks
            for col in cols:
                GATE.wait()
                r = run_once(col, rnd, steps, sizes, scratch, timeout)
                runs[col.key].append(r)
                log(f"{sizes:6s} steps={steps} round {rnd}/{rounds} {col.key:9s} wall={r.wall:7.3f}s "
                    f"cpu={fmt((r.user or 0) + (r.sys or 0), '.3f')}s other={fmt(r.other_cpu, '.2f')}s "
                    f"trace={r.trace_bytes} {r.status}")
                cwd = run_dir(scratch, col.key, sizes, steps, rnd)
                if check and col.key not in checks and r.trace_path and r.status == "ok":
                    log(f"checking the {col.key} trace {r.trace_path.name} ...")
                    if col.kind == "memsift":
                        checks[col.key] = parse_memsift_trace(r.trace_path, scratch)
                    elif col.kind == "heaptrack":
                        checks[col.key] = check_heaptrack_file(r.trace_path, scratch,
                                                               (cwd / "stderr.txt").read_text(errors="replace"))
                if r.status != "ok" and col.kind == "memsift" and r.trace_path:
                    log(f"reading what the {col.key} trace of the failed run holds ...")
                    r.failure_trace = parse_memsift_trace(r.trace_path, scratch)
                if not keep:
                    for p in cwd.glob("*"):
                        if p.name not in ("stdout.txt", "stderr.txt", "time.txt"):
                            p.unlink()
    return series


# ---------------------------------------------------------------------------
# reporting


def summary_table(series: Series, cols: list[Column], skipped: dict[str, str]) -> tuple[str, dict]:
    med: dict[str, dict] = {}
    for col in cols:
        rs = series.runs[col.key]
        ok = [r for r in rs if r.status == "ok"]
        med[col.key] = {
            "n_ok": len(ok), "n": len(rs),
            "n_disturbed": sum(1 for r in ok if disturbed(r)),
            "wall": median([r.wall for r in ok]),
            "cpu": median([(r.user or 0) + (r.sys or 0) for r in ok]),
            "target_rss": median([r.target_maxrss_kb for r in ok]),
            "tree_rss": median([r.tree_maxrss_kb for r in ok]),
            "trace": median([r.trace_bytes for r in ok]),
            "events": events_of(ok[0].counts) if ok and ok[0].counts else None,
            "crash_wall": median([r.wall for r in rs if r.status != "ok"]),
            "crash_status": next((r.status for r in rs if r.status != "ok"), None),
            "crash_trace": median([r.trace_bytes for r in rs if r.status != "ok"]),
        }
    base = med.get("untraced", {})
    ht = med.get("heaptrack", {})
    header = ("| tracer | ok rounds | wall median (s) | CPU user+sys median (s) | wall / untraced | "
              "CPU / untraced | wall / heaptrack | CPU / heaptrack | target peak RSS (MiB) | "
              "tree max RSS (MiB) | trace file (MB) | trace bytes / event |")
    lines = [header, "|" + "---|" * 12]

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    for col in cols:
        m = med[col.key]
        if m["n_ok"] == 0:
            extra = ""
            if m["crash_wall"] is not None:
                extra = f" (median {m['crash_wall']:.2f} s until it died"
                if m["crash_trace"]:
                    extra += f"; partial file {m['crash_trace'] / 1e6:.2f} MB"
                extra += ")"
            reason = (m["crash_status"] or "crashed").replace("crashed: ", "")
            lines.append(f"| **{col.label}: crashed** | 0/{m['n']} | {reason}{extra} | | | | | | | | | |")
            continue
        is_base = col.key == "untraced"
        is_ht = col.key == "heaptrack"
        ht_ok = ht.get("n_ok", 0) > 0
        lines.append("| " + " | ".join([
            col.label,
            f"{m['n_ok']}/{m['n']}" + (f" ({m['n_disturbed']} disturbed)" if m["n_disturbed"] else ""),
            fmt(m["wall"], ".3f"),
            fmt(m["cpu"], ".3f"),
            "1.00" if is_base else fmt(ratio(m["wall"], base.get("wall")), ".2f"),
            "1.00" if is_base else fmt(ratio(m["cpu"], base.get("cpu")), ".2f"),
            "—" if is_base or is_ht else (fmt(ratio(m["wall"], ht.get("wall")), ".2f") if ht_ok else "n/a (heaptrack crashed)" if "heaptrack" in med else "n/a"),
            "—" if is_base or is_ht else (fmt(ratio(m["cpu"], ht.get("cpu")), ".2f") if ht_ok else "n/a" ),
            fmt(m["target_rss"] / 1024 if m["target_rss"] else None, ".1f"),
            fmt(m["tree_rss"] / 1024 if m["tree_rss"] else None, ".1f"),
            "—" if m["trace"] is None else f"{m['trace'] / 1e6:.1f}",
            "—" if m["trace"] is None or not m["events"] else f"{m['trace'] / m['events']:.2f}",
        ]) + " |")
    for key, why in skipped.items():
        lines.append(f"| {key}: skipped | — | {why} | | | | | | | | | |")
    return "\n".join(lines), med


DISTURBED = 0.25  # other CPU / wall above which a run counts as disturbed


def disturbed(r: Run) -> bool:
    """The rest of the machine used more than DISTURBED CPUs on average during the run."""
    return r.other_cpu is not None and r.wall > 0 and r.other_cpu / r.wall > DISTURBED


def rounds_table(series: Series, cols: list[Column]) -> str:
    n = max(len(v) for v in series.runs.values())
    lines = ["| round | " + " | ".join(c.label for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for i in range(n):
        cells = []
        for c in cols:
            rs = series.runs[c.key]
            if i < len(rs):
                r = rs[i]
                cpu = (r.user or 0) + (r.sys or 0)
                cell = f"{r.wall:.3f} / {cpu:.2f} / {fmt(r.other_cpu, '.2f', '?')}"
                if r.status != "ok":
                    cell += " (crashed)"
                elif disturbed(r):
                    cell += " *"
                cells.append(cell)
            else:
                cells.append("")
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


EXIT_KINDS = {0: "unknown", 1: "return", 2: "exit", 3: "_exit", 4: "abort", 5: "signal", 6: "exec",
              7: "destructor", 8: "status"}


def failures_section(series: Series, cols: list[Column]) -> str:
    """Every failed run but heaptrack's expected crash (one example of that)."""
    out = []
    seen_ht = False
    for col in cols:
        for r in series.runs[col.key]:
            if r.status == "ok":
                continue
            if col.kind == "heaptrack":
                if seen_ht:
                    continue
                seen_ht = True
            out.append(f"- {col.label}, round {r.round}: {r.status}; wall {r.wall:.2f} s; exit {r.exit}; "
                       f"trace {r.trace_bytes if r.trace_bytes is not None else 'none'} bytes"
                       + (" (the first heaptrack failure; the others are alike)" if col.kind == "heaptrack" else ""))
            ft = r.failure_trace
            if ft:
                if "error" in ft:
                    out.append(f"  - its trace: {ft['error']}")
                else:
                    end = ft.get("end")
                    calls = sum(ft.get(n, 0) for n in FN_NAMES.values())
                    out.append(f"  - its trace: {ft['records']:,} records, {calls:,} allocation calls and "
                               f"{ft['free']:,} frees recorded{', truncated' if ft['truncated'] else ''}; END: "
                               + (f"kind {end['kind']} ({EXIT_KINDS.get(end['kind'], '?')}), status {end['status']}, "
                                  f"lost {end['lost_bytes']} bytes" if end else "missing"))
            if r.stderr_tail:
                out.append("  - stderr tail:\n\n" + "\n".join("        " + l for l in r.stderr_tail.splitlines()))
    return ("\n".join(out) + "\n") if out else ""


def check_section(series: Series, cols: list[Column]) -> str:
    ref = None
    for r in series.runs.get("untraced", []):
        if r.counts:
            ref = r.counts
            break
    out = []
    if not ref:
        return "(no reference counts: the untraced run failed)\n"
    # determinism: every successful run printed the same counts
    differing = sorted({r.column for rs in series.runs.values() for r in rs if r.counts and r.counts != ref})
    out.append(f"The program's own JSON line (identical in every run{'' if not differing else ' except ' + ', '.join(differing)}):\n")
    out.append("```\n" + json.dumps(ref, separators=(",", ":")) + "\n```\n")
    out.append(f"allocation calls = {alloc_calls(ref):,}; events (allocation calls + frees) = {events_of(ref):,}.\n")
    rows = ["| count | program (JSON) | " + " | ".join(k for k in series.checks) + " |",
            "|---|---|" + "---|" * len(series.checks)]

    def cell(key: str, what: str):
        c = series.checks[key]
        if "error" in c:
            return "error: " + c["error"]
        if key == "heaptrack":
            return {"malloc": "—", "calloc": "—", "realloc": "—",
                    "alloc_calls": f"{c.get('calls', 'n/a'):,}" if isinstance(c.get("calls"), int) else "n/a",
                    "free": f"{c.get('minus_lines', 'n/a'):,} ('-' lines: frees of tracked blocks, incl. realloc's)" if isinstance(c.get("minus_lines"), int) else "n/a",
                    "leaked_allocations": f"{c['leaked_allocations']:,}" if isinstance(c.get("leaked_allocations"), int) else "n/a",
                    "leaked_bytes": f"{c.get('flamegraph_leaked', 'n/a'):,} (summary: {c.get('leaked_text', '?')})" if isinstance(c.get("flamegraph_leaked"), int) else str(c.get("leaked_text", "n/a")),
                    "stacks": f"{fmt(c.get('flamegraph_stacks'), ',')} (distinct flamegraph stacks)",
                    }[what]
        v = {"alloc_calls": sum(c.get(n, 0) for n in FN_NAMES.values()),
             "stacks": c.get("stacks")}.get(what, c.get(what))
        return f"{v:,}" if isinstance(v, int) else str(v)

    prog = {"malloc": ref["malloc"], "calloc": ref["calloc"], "realloc": ref["realloc"],
            "alloc_calls": alloc_calls(ref), "free": ref["free"],
            "leaked_allocations": ref["leaked_allocations"], "leaked_bytes": ref["leaked_bytes"], "stacks": None}
    for what in ("malloc", "calloc", "realloc", "alloc_calls", "free", "leaked_allocations", "leaked_bytes", "stacks"):
        p = prog[what]
        rows.append(f"| {what} | {'—' if p is None else f'{p:,}'} | " +
                    " | ".join(cell(k, what) for k in series.checks) + " |")
    out.append("\n".join(rows) + "\n")
    for key, c in series.checks.items():
        if key != "heaptrack" and "error" not in c:
            end = c.get("end")
            out.append(f"- `{key}` trace: {c['records']:,} records, format v{c['format_version']}, writer "
                       f"{c['writer']}, {'zstd' if c['compressed'] else 'uncompressed'}, realloc as "
                       f"{c['realloc_layout']}"
                       + (f" ({c['realloc_done']:,} DONE records, {c['realloc_unpaired']} unpaired)"
                          if c['realloc_layout'].startswith("REALLOC +") else "")
                       + f"{', TRUNCATED' if c['truncated'] else ''}; END record: "
                       + (f"backpressure {end['backpressure_waits']:,} waits / {end['backpressure_ns'] / 1e9:.3f} s, "
                          f"lost {end['lost_bytes']} bytes, stack table full {end['stack_table_full']}" if end else "missing")
                       + (" (writer 1 = the shim draining itself: its backpressure is time the target spent "
                          "writing its own trace when the ring was full)" if c['writer'] == 1 and end and
                          end['backpressure_waits'] else "")
                       + ".\n")
        if key == "heaptrack":
            out.append(f"- heaptrack: heaptrack_print exit {c.get('print_rc')}; heaptrack_interpret's 'allocations' "
                       f"stat {c.get('allocations_stat')}, flamegraph allocation sum {c.get('flamegraph_allocations')}, "
                       f"'+' lines {c.get('plus_lines')}, distinct (size, stack) pairs ('a' lines) "
                       f"{fmt(c.get('a_lines'), ',')}, temporary allocations {c.get('temporary')}, "
                       f"peak heap {c.get('peak_heap')}.")
            calls = c.get("calls")
            if isinstance(calls, int):
                d = calls - alloc_calls(ref)
                first = c.get("first_alloc_size")
                out.append(f"- heaptrack allocation calls - program's = {d:+d}"
                           + (" (allocations made before main by a shared-library constructor run from ld.so's "
                              "_dl_init: see the non-`main` stack in `heaptrack_print -F`"
                              + (f"; the first one is {first:,} bytes" if first else "")
                              + (", the size of libstdc++'s emergency exception-handling pool: alloc_heavy is C, "
                                 "libstdc++ is loaded only because heaptrack's preload library links it, so the "
                                 "allocation does not happen without heaptrack (which is why memsift does not see it)"
                                 if first == 72704 else "") + ")" if d > 0 else "") + ".")
            null_old = next((v.get("realloc_null_old") for k, v in series.checks.items()
                             if k != "heaptrack" and isinstance(v.get("realloc_null_old"), int)), None)
            minus = c.get("minus_lines")
            if isinstance(minus, int) and null_old is not None:
                moved = ref["realloc"] - null_old
                out.append(f"- heaptrack '-' lines {minus:,} vs program frees {ref['free']:,} + reallocs of a non-NULL "
                           f"block {moved:,} (realloc(NULL, n) calls: {null_old:,}, from the memsift trace) = "
                           f"{ref['free'] + moved:,}: heaptrack records realloc of a non-NULL block as free + malloc; "
                           f"difference {minus - ref['free'] - moved:+d}"
                           + (" (the free of that pre-main allocation: heaptrack's leak count equals the program's)"
                              if isinstance(calls, int) and minus - ref['free'] - moved == calls - alloc_calls(ref)
                              and c.get("leaked_allocations") == ref["leaked_allocations"] else "") + ".")
            out.append("")
    return "\n".join(out)


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def git_state(repo: str) -> str:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True).stdout.rstrip()
        except Exception:
            return ""
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = [l[3:] for l in git("status", "--porcelain", "--untracked-files=no").splitlines()
             if not l[3:].startswith("tools/bench/")]
    return f"commit {head}" + (f", with uncommitted changes to {', '.join(dirty)}" if dirty else ", clean")


def file_id(path: str) -> str:
    """mtime and sha256 prefix of a file, to pin down which build ran."""
    try:
        import hashlib
        st = os.stat(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        return f"built {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(st.st_mtime))} UTC, sha256 {digest}"
    except OSError as e:
        return f"unreadable ({e.strerror})"


def machine_info(git_start: str, load_start: str) -> list[str]:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass

    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except Exception:
            return "n/a"

    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- nproc: {os.cpu_count()} (`nproc`: {cmd(['nproc'])})",
        f"- CPU: {cpu}",
        f"- memory: {mem}",
        f"- kernel: {platform.release()} ({platform.machine()})",
        f"- compiler: {cmd(['cc', '--version'])}",
        f"- heaptrack: {cmd(['heaptrack', '--version']) if shutil.which('heaptrack') else 'not installed'}",
        f"- python: {platform.python_version()}",
        f"- memsift tree at the start: {git_start}",
        f"- load average (1/5/15 min) at the start: {load_start}; at the end: {loadavg()}",
        f"- timing: each command runs as {TIME_DESC if os.access(GNU_TIME, os.X_OK) else 'a child'} <command>; "
        "wall = python perf_counter around it; CPU = user+sys of the command and all its waited-for descendants "
        "(os.wait4 rusage of the wrapper: GNU time's %U+%S at microsecond instead of 10 ms resolution); "
        f"tree max RSS = {'%M' if os.access(GNU_TIME, os.X_OK) else 'ru_maxrss'}; target peak RSS = the workload's "
        "own getrusage(RUSAGE_SELF).ru_maxrss",
        (f"- idle gate: before each run the driver waited until the rest of the machine used < {GATE.threshold} "
         f"CPU over 0.5 s (at most {GATE.per_run:g} s per run, {GATE.budget:g} s in all): {GATE.gates} runs, "
         f"{GATE.waited:.1f} s waited beyond the 0.5 s check, {GATE.timed_out} started on a busy machine after the "
         "wait ran out" if GATE.per_run > 0 else "- idle gate: disabled (IDLE_WAIT=0)"),
    ]


SIZES_DESC = {
    "random": "sizes log-distributed 16 B–64 KiB (a uniform octave, then a uniform size inside it): tens of "
              "thousands of distinct sizes",
    "pow2": "the same size draw rounded to the nearest power of two, 16 B … 64 KiB (13 sizes); the same PRNG "
            "stream otherwise, so the same calls, call depths, call stacks and JSON counts as `random`",
}
SIZES_TITLE = {"random": "random sizes (the default mode)", "pow2": "power-of-two sizes (`pow2`)"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--prog", required=True)
    ap.add_argument("--build-cmd", required=True)
    ap.add_argument("--shim", required=True)
    ap.add_argument("--memsift", default="")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5000000)
    ap.add_argument("--sizes", default="pow2,random",
                    help="comma-separated alloc_heavy size modes, each a workload of its own (pow2, random)")
    ap.add_argument("--check-steps", type=int, default=0)
    ap.add_argument("--heaptrack-vmem-kb", default="4194304")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--idle-wait", type=float, default=10.0)
    ap.add_argument("--idle-budget", type=float, default=60.0)
    ap.add_argument("--results", required=True)
    a = ap.parse_args()
    GATE.per_run, GATE.budget = a.idle_wait, a.idle_budget

    sizes_list = [x.strip() for x in a.sizes.split(",") if x.strip()]
    for sz in sizes_list:
        if sz not in SIZES_DESC:
            ap.error(f"unknown size mode {sz!r} (known: {', '.join(SIZES_DESC)})")
    scratch = Path(a.scratch)
    prog = a.prog
    load_start = loadavg()
    git_start = git_state(a.repo)
    shim_id_start = file_id(a.shim)
    cli_id_start = file_id(a.memsift) if a.memsift else "n/a"
    load_format(Path(a.repo) / "cshim" / "include" / "memsift" / "trace_format.h")
    for w in FORMAT_WARNINGS:
        log("warning: " + w)
    t_start = time.perf_counter()
    target = [prog, "{steps}", "{sizes}"]
    cols: list[Column] = [Column("untraced", "untraced", target)]
    skipped: dict[str, str] = {}
    if os.path.isfile(a.shim):
        cols.append(Column("preload", "LD_PRELOAD shim (self-drain)", target,
                           env={"LD_PRELOAD": a.shim}, trace_glob="memsift.*.trace", kind="memsift"))
    else:
        skipped["LD_PRELOAD shim"] = f"{a.shim} not found"
    if a.memsift and os.access(a.memsift, os.X_OK):
        # --shim: the same libmemsift.so as the LD_PRELOAD column (by default memsift run takes the copy
        # next to the executable, which tools/setup.sh installs and which can lag behind cshim/build).
        shim_args = ["--shim", a.shim] if os.path.isfile(a.shim) else []
        cols.append(Column("memsift", "memsift run", [a.memsift, "run", "-q", *shim_args, "-o", "{cwd}/memsift.trace",
                                                      "--", *target],
                           trace_glob="memsift.trace*", kind="memsift"))
    else:
        skipped["memsift run"] = (f"no memsift executable at `{a.memsift or '<repo>/.build/release/memsift'}` "
                                  "(build the CLI with `swift build -c release`; the column appears by itself)")
    ht_rlimit = None
    if shutil.which("heaptrack"):
        if a.heaptrack_vmem_kb not in ("", "0", "unlimited"):
            ht_rlimit = int(a.heaptrack_vmem_kb) * 1024
        cols.append(Column("heaptrack", "heaptrack", ["heaptrack", "-o", "{cwd}/heaptrack", *target],
                           trace_glob="heaptrack.*", kind="heaptrack", rlimit_as=ht_rlimit))
    else:
        skipped["heaptrack"] = "heaptrack not installed"

    log(f"{len(cols)} columns x {len(sizes_list)} size modes ({', '.join(sizes_list)}) x {a.rounds} rounds "
        f"at {a.steps} steps; scratch {scratch}")
    main_series = run_series(cols, a.steps, sizes_list, a.rounds, scratch, a.timeout, a.keep, check=True)
    tables: dict[str, str] = {}
    meds: dict[str, dict] = {}
    for sz, ser in main_series.items():
        tables[sz], meds[sz] = summary_table(ser, cols, skipped)

    # heaptrack below its crash threshold, for the size modes it crashed on (optional: --check-steps)
    small: dict[str, Series] = {}
    small_tables: dict[str, str] = {}
    crashed = [sz for sz in sizes_list if meds[sz].get("heaptrack", {}).get("n_ok", 1) == 0]
    if crashed and a.check_steps > 0:
        log(f"heaptrack crashed at {a.steps} steps ({', '.join(crashed)}); repeating all columns at "
            f"{a.check_steps} steps")
        small = run_series(cols, a.check_steps, crashed, a.rounds, scratch, a.timeout, a.keep, check=True)
        for sz, ser in small.items():
            small_tables[sz], _ = summary_table(ser, cols, skipped)

    perf_text = ""
    perf_sizes = sizes_list[0]
    if a.perf and "preload" in {c.key for c in cols} and shutil.which("perf"):
        log(f"perf record of one LD_PRELOAD run ({perf_sizes}) ...")
        pdir = scratch / "perf"
        pdir.mkdir(exist_ok=True)
        env = dict(os.environ, LD_PRELOAD=a.shim)
        rec = subprocess.run(["perf", "record", "-F", "2000", "-o", str(pdir / "perf.data"), "--",
                              prog, str(a.steps), perf_sizes], cwd=pdir, env=env, capture_output=True, text=True)
        if rec.returncode == 0:
            rep = subprocess.run(["perf", "report", "-i", str(pdir / "perf.data"), "--stdio", "--no-children",
                                  "--sort", "dso,symbol", "--percent-limit", "1"],
                                 capture_output=True, text=True)
            rows = [l for l in rep.stdout.splitlines() if l.strip() and not l.startswith("#")]
            dso = subprocess.run(["perf", "report", "-i", str(pdir / "perf.data"), "--stdio", "--no-children",
                                  "--sort", "dso"], capture_output=True, text=True)
            drows = [l for l in dso.stdout.splitlines() if l.strip() and not l.startswith("#")]
            perf_text = ("### perf profile of one LD_PRELOAD run (self time, `perf record -F 2000`, "
                         f"`alloc_heavy {a.steps} {perf_sizes}`)\n\nBy object:\n\n```\n" + "\n".join(drows[:12]) +
                         "\n```\n\nBy symbol (>= 1%):\n\n```\n" + "\n".join(rows[:40]) + "\n```\n")
        else:
            perf_text = f"(perf record failed: {rec.stderr.strip()[-300:]})\n"
        for p in pdir.glob("*"):
            p.unlink()

    # ---- the document ----
    def ref_of(ser: Series) -> dict | None:
        return next((r.counts for r in ser.runs["untraced"] if r.counts), None)

    ref = next((ref_of(ser) for ser in main_series.values() if ref_of(ser)), None)
    calls = alloc_calls(ref) if ref else None
    md: list[str] = []
    md.append("# memsift overhead benchmark: alloc_heavy\n")
    md.append("Generated by `tools/bench/run.sh` (do not edit by hand; rerun it).\n")
    md.append("## Machine\n")
    md.extend(machine_info(git_start, load_start))
    shim_id_end, cli_id_end = file_id(a.shim), (file_id(a.memsift) if a.memsift else "n/a")
    md.append(f"- shim: `{os.path.relpath(a.shim, a.repo)}` ({shim_id_start}), for both the LD_PRELOAD and the "
              "`memsift run` column" + ("" if shim_id_end == shim_id_start else
                                        f" — **replaced during the benchmark** (now {shim_id_end})"))
    md.append(f"- CLI: `{os.path.relpath(a.memsift, a.repo) if a.memsift else 'n/a'}` ({cli_id_start})"
              + ("" if cli_id_end == cli_id_start else f" — **replaced during the benchmark** (now {cli_id_end})"))
    md.append("")
    md.append("## Workloads\n")
    md.append(f"`tools/bench/alloc_heavy.c`, {a.steps:,} steps" +
              (f" = {calls:,} allocation calls, {events_of(ref):,} events (allocation calls + frees)" if ref else "") +
              "; single-threaded, fixed-seed PRNG; malloc ~85% / calloc ~8% / realloc ~7%; call depth 5–30 frames "
              "through 4 mutually recursive helpers along 16 paths; live pool of 4096 slots; leak: exactly 1000 "
              f"blocks of 100 B. {'Two size modes' if len(sizes_list) == 2 else 'Size modes'}, each measured as a "
              "workload of its own:\n")
    for sz in sizes_list:
        md.append(f"- `{sz}`: {SIZES_DESC[sz]}.")
    md.append("")
    if calls is not None and calls < 5_000_000:
        md.append(f"**Note: fewer than 5,000,000 allocation calls ({calls:,}): not a recorded-results run.**\n")
    md.append("## Commands\n")
    md.append("```")
    cmd_env = " ".join(x for x in [f"ROUNDS={a.rounds}", f"STEPS={a.steps}" if a.steps != 5000000 else "",
                                    f"SIZES={a.sizes}" if a.sizes != "pow2,random" else "",
                                    f"CHECK_STEPS={a.check_steps}" if a.check_steps else "",
                                    f"IDLE_WAIT={a.idle_wait:g}" if a.idle_wait != 10 else "",
                                    f"IDLE_BUDGET={a.idle_budget:g}" if a.idle_budget != 60 else "",
                                    "PERF=1" if a.perf else ""] if x)
    md.append(f"{cmd_env} tools/bench/run.sh")
    md.append(f"# build:     {a.build_cmd}")
    for c in cols:
        envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in c.env.items())
        lim = f"(ulimit -v {a.heaptrack_vmem_kb}; " if c.rlimit_as else ""
        cmdline = " ".join(x if x.startswith("$") else shlex.quote(x)
                           for x in expand(c.argv, a.steps, "$SIZES", Path("$RUNDIR")))
        md.append(f"# {c.key + ':':10s} {lim}{envs + ' ' if envs else ''}{cmdline}{')' if lim else ''}")
    md.append(f"# with $SIZES = {' and '.join(sizes_list)}; each command is wrapped as: "
              "/usr/bin/time -f '%e %U %S %M %x' -o time.txt <command>,")
    md.append("# run in a fresh directory $RUNDIR with ALLOC_HEAVY_RSS=1 in the environment. Order within each round: "
              + ", then ".join(f"{sz}: " + ", ".join(c.key for c in cols) for sz in sizes_list) + ".")
    md.append("```\n")

    md.append("## How to read this\n")
    md.append("Every number is a median over the rounds, and every ratio is a ratio of medians. *wall / untraced* "
              "and *CPU / untraced* are the slowdown of the traced program (CPU counts every process of the "
              "command tree: for `memsift run` the collector that compresses the trace on the second core, for "
              "heaptrack its script, heaptrack_interpret and zstd), so on this 2-CPU machine a tracer whose helper "
              "process works in parallel shows a CPU ratio above its wall ratio. *wall / heaptrack* and "
              "*CPU / heaptrack* below 1 mean faster than heaptrack on the same workload. *target peak RSS* is "
              "the traced program's own peak (what the tracer adds inside the target); *tree max RSS* the largest "
              "single process of the command tree. *trace bytes / event* divides the trace file size by the "
              "allocation calls + frees the program counted. "
              + ("The `pow2` workload is the one with a full-size heaptrack comparison: Debian 12's heaptrack 1.4.0 "
                 "crashes on the `random` one (see below), whose table therefore only compares memsift with the "
                 "untraced program. " if meds.get("random", {}).get("heaptrack", {}).get("n_ok", 1) == 0 else "")
              + "The two workloads make the same "
              "calls along the same call stacks; `pow2`'s sizes are on average somewhat smaller (mean "
              "≈1.25 x 2^k per octave instead of 1.5 x 2^k), so its untraced times need not equal `random`'s: compare "
              "ratios, not seconds, across the two tables. The "
              "count checks compare what each tracer recorded with the program's own JSON line: they must agree "
              "exactly for memsift; heaptrack's differences are explained under its table. In the per-round "
              "tables, *other CPU* is what the rest of the machine used during that run; a run where it exceeds "
              f"{DISTURBED} x its wall time is marked * and counted as *disturbed* in the summary's *ok rounds*: "
              "on 2 CPUs another busy process takes the CPU that `memsift run`'s collector and heaptrack_interpret "
              "otherwise use in parallel with the target (wall ≈ CPU instead of wall < CPU), so those runs are "
              "slower. Medians are robust to up to 2 disturbed runs out of 5; with more, the row is not a "
              "measurement of the tracer alone.\n")

    any_ht_crash = any(m.get("heaptrack", {}).get("n_ok", 1) == 0 for m in meds.values())
    ht_rows = []
    for sz in sizes_list:
        c = main_series[sz].checks.get("heaptrack")
        if c and isinstance(c.get("a_lines"), int):
            ht_rows.append(f"{c['a_lines']:,} with `{sz}`")
    if any_ht_crash:
        md.append("### Why heaptrack crashes on the `random` workload\n")
        md.append("Observed with Debian 12's heaptrack 1.4.0 while writing this benchmark: heaptrack_interpret "
                  "throws std::bad_alloc on the `random` workload at every size from about 64,000 steps up "
                  "(bisected: 63,769 steps complete, 63,837 crash; with or without the memory cap, with `-g`, "
                  "`-gdwarf-4` or no debug info), i.e. once about 59,000 distinct (size, stack) pairs "
                  "('a' allocation-info lines in its output) exist. Under gdb the throw comes from `operator new` "
                  "of a 2^27 x 24-byte bucket array (3 GiB), a hash-map rehash that keeps doubling: consistent with "
                  "a degenerate hash of its allocation-info keys (size, trace index). Real programs with few "
                  "distinct sizes per call site stay below that; random sizes do not. The target then dies of "
                  "SIGPIPE writing to heaptrack's pipe. (Said to be fixed in heaptrack 1.5.0; not verified here.) "
                  "The `pow2` workload exists for this reason: at most 13 sizes per call stack"
                  + (f" (distinct (size, stack) pairs in heaptrack's output: {', '.join(ht_rows)})" if ht_rows else "")
                  + ", and heaptrack 1.4.0 completes it at full size.\n")
    if ht_rlimit:
        md.append(f"heaptrack runs under `ulimit -v {a.heaptrack_vmem_kb}` (KiB; env `HEAPTRACK_VMEM_KB`, "
                  "`unlimited` lifts it): heaptrack 1.4.0's heaptrack_interpret otherwise grows to all free memory "
                  "(18.9 GB on this machine, ~65 s) before it throws std::bad_alloc on the `random` workload. The cap "
                  "changes nothing for a heaptrack that works (heaptrack completes `pow2` under it); it only makes "
                  "the crash cheap.\n")

    for n, sz in enumerate(sizes_list, 1):
        ser = main_series[sz]
        md.append(f"## Results {n}: {SIZES_TITLE[sz]}, {a.steps:,} steps ({a.rounds} round{'s' if a.rounds != 1 else ''}, "
                  "medians)\n")
        md.append(tables[sz] + "\n")
        md.append("Per round, wall s / CPU s (command tree) / other CPU s (the rest of the machine during the "
                  "run: other processes, kernel threads such as page-cache writeback, this driver); * = disturbed, i.e. "
                  f"other CPU > {DISTURBED} x wall:\n")
        md.append(rounds_table(ser, cols) + "\n")
        fail = failures_section(ser, cols)
        if fail:
            md.append("Failed runs:\n")
            md.append(fail)
        md.append(f"### Counts ({sz}): program vs tracers\n")
        for w in FORMAT_WARNINGS:
            md.append(f"**Warning: {w}**\n")
        md.append(check_section(ser, cols))
        if sz in small:
            md.append(f"### {sz}: heaptrack below its crash threshold, {a.check_steps:,} steps\n")
            md.append(f"heaptrack crashed on the full workload, so every column was repeated at {a.check_steps:,} "
                      f"steps ({a.rounds} rounds). At this size start-up costs dominate.\n")
            md.append(small_tables[sz] + "\n")
            fail = failures_section(small[sz], cols)
            if fail:
                md.append("Failed runs at this size:\n")
                md.append(fail)
            md.append(check_section(small[sz], cols))
    md.append("## Notes on the columns\n")
    md.append("- CPU is user+sys of the whole command tree (heaptrack: the script, the target, heaptrack_interpret "
              "and zstd; memsift run: the collector and the target).")
    md.append("- target peak RSS: the workload's own ru_maxrss; tree max RSS: the largest process of the command "
              "tree (for heaptrack that is usually heaptrack_interpret).")
    md.append("- trace file: the LD_PRELOAD shim (self-drain) writes raw records, `memsift run` zstd, heaptrack "
              "zstd of its text format. The memsift counts are read back from the trace files by bench.py "
              "(replaying allocations and frees for the leaks); heaptrack's with heaptrack_print (summary, "
              "flamegraph sums) and by counting the '+'/'-'/'a' lines of its file.\n")
    if perf_text:
        md.append("## Where the shim's time goes\n")
        md.append(perf_text)
    md.append(f"\nTotal benchmark time: {time.perf_counter() - t_start:.0f} s.\n")
    doc = "\n".join(md)
    print(doc)
    if a.results:
        Path(a.results).write_text(doc)
        log(f"wrote {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
