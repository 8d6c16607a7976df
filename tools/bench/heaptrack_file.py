"""What a heaptrack file says about the run, for the benchmark's count checks.

heaptrack_interpret's closing stats (from the run's stderr), heaptrack_print's
summary, exact sums from its flamegraph output, and the '+'/'-'/'a' lines of
the (zstd) file itself.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path


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

