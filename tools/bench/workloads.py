"""The benchmark's workloads: what each runs, how it is built, and how it is described in RESULTS.md.

Every workload is deterministic (fixed seeds; PYTHONHASHSEED=0 for Python), so
every run of it makes the same allocation calls, and the count checks can
compare tracers with each other and with the program's own counts.

    key             program                                           group (WORKLOADS=...)
    alloc_pow2      alloc_heavy.c STEPS pow2: 1 thread, 13 sizes       alloc
    alloc_random    alloc_heavy.c STEPS random: 1 thread, random sizes alloc
    threads_pow2    alloc_threads.c STEPS pow2: 8 threads              threads
    threads_random  alloc_threads.c STEPS random                       threads
    containers      containers.cpp CXX_STEPS: std::map/unordered_map/string churn
    python          tools/examples/data_service.py PY_REQUESTS (CPython)
    service         the same program, PROD_REQUESTS, under the production mode only (production)
    sqlite          /usr/bin/sqlite3 :memory: ".read workload.sql" (sqlgen.py SQL_ROWS)
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# Full-run sizes; a run with anything smaller is labelled a quick run in RESULTS.md.
DEFAULTS = {"steps": 5_000_000, "cxx_steps": 800_000, "py_requests": 60_000, "sql_rows": 200_000,
            "prod_requests": 400_000}
GROUPS = {"alloc": ["alloc_pow2", "alloc_random"], "threads": ["threads_pow2", "threads_random"],
          "containers": ["containers"], "python": ["python"], "sqlite": ["sqlite"], "production": ["service"]}
DEFAULT_SELECTION = "alloc,threads,containers,python,sqlite,production"
C_FLAGS = ["-O2", "-g", "-fno-omit-frame-pointer", "-Wall", "-Wextra"]


@dataclass
class Params:
    steps: int = DEFAULTS["steps"]
    cxx_steps: int = DEFAULTS["cxx_steps"]
    py_requests: int = DEFAULTS["py_requests"]
    sql_rows: int = DEFAULTS["sql_rows"]
    python: str = "python3"  # the interpreter of the Python workload (and of memray)
    prod_requests: int = DEFAULTS["prod_requests"]

    def smaller_than_default(self) -> list[str]:
        return [f"{k}={getattr(self, k):,} (full: {v:,})" for k, v in DEFAULTS.items() if getattr(self, k) < v]


@dataclass
class Build:
    output: str  # file name in the scratch directory
    argv: list[str]  # paths relative to the repository, $SCRATCH for the scratch directory


@dataclass
class Workload:
    key: str
    title: str
    description: str  # markdown
    argv: list[str]  # the target command
    exe: str  # the target's executable (real path): its line of the RSS probe
    builds: list[Build]
    env: dict[str, str] = field(default_factory=dict)  # every column
    traced_env: dict[str, str] = field(default_factory=dict)  # what `memsift run` sets by itself: the other tracers get it too
    counts_line: bool = False  # prints a JSON line of its own allocation calls
    python: bool = False  # a CPython program: memray columns, an untraced PYTHONMALLOC=malloc column
    size: str = ""  # e.g. "5,000,000 steps"
    output_mask: str = ""  # a regex: the part of the output that may differ between columns
    only: list[str] | None = None  # these columns (and untraced) whatever BENCH_COLUMNS says


def select(spec: str) -> list[str]:
    """WORKLOADS=alloc,python or alloc_pow2,sqlite: keys in canonical order."""
    wanted: set[str] = set()
    for item in (x.strip() for x in spec.split(",")):
        if not item:
            continue
        if item in GROUPS:
            wanted.update(GROUPS[item])
        elif any(item in keys for keys in GROUPS.values()):
            wanted.add(item)
        else:
            known = sorted(set(GROUPS) | {k for keys in GROUPS.values() for k in keys})
            raise ValueError(f"unknown workload {item!r} (known: {', '.join(known)})")
    return [k for keys in GROUPS.values() for k in keys if k in wanted]


def _cc(src: str, out: str, *extra: str) -> Build:
    return Build(out, ["cc", *C_FLAGS, *extra, "-o", f"$SCRATCH/{out}", f"tools/bench/{src}"])


PROBE_BUILD = Build("rssprobe.so", ["cc", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-o", "$SCRATCH/rssprobe.so",
                                    "tools/bench/rssprobe.c"])

ALLOC_DESC = ("`tools/bench/alloc_heavy.c`: single-threaded, fixed-seed PRNG; each step replaces the block of a random "
              "slot of a 4096-slot pool: malloc ~85% / calloc ~8% / realloc ~7%; every call at a depth of 5–30 frames "
              "through 4 mutually recursive non-inlined helpers along 16 paths; leak: exactly 1000 blocks of 100 B.")
THREADS_DESC = ("`tools/bench/alloc_threads.c`: the same steps (shared code: `alloc_common.h`, `bench_common.h`) made "
                "by 8 threads at once, each with its own fixed seed and 1/8 of the steps. malloc and calloc publish the "
                "new block into a random slot of a 4096-slot pool shared by all threads (atomic exchange) and free the "
                "block it displaces, which another thread allocated 7 times in 8 (the program reports how many frees "
                "were cross-thread on stderr); realloc resizes a block of the thread's private 64-slot pool, so the "
                "counts do not depend on the interleaving; leak: 1000 blocks of 100 B (125 per thread).")
SIZES_DESC = {
    "random": "log-distributed 16 B–64 KiB (a uniform octave, then a uniform size inside it): tens of thousands of "
              "distinct sizes",
    "pow2": "the same size draw rounded to the nearest power of two, 16 B … 64 KiB (13 sizes); the same PRNG stream "
            "otherwise, so the same calls, call depths, call stacks and JSON counts as `random`",
}


# The part of data_service.py's JSON line that differs between columns: whether memsift_snapshot() exists,
# i.e. whether the shim is preloaded.
DATA_SERVICE_MASK = r'"memsift_labels": (true|false), '


def _data_service(p: Params, repo: Path, requests: int) -> tuple[list[str], str]:
    """data_service.py for `requests` requests, its label after a tenth: the command and the interpreter's path."""
    script = repo / "tools" / "examples" / "data_service.py"
    return ([p.python, str(script), str(requests), str(requests // 10)],
            os.path.realpath(shutil.which(p.python) or p.python))


def define(keys: list[str], p: Params, repo: Path, scratch: Path) -> list[Workload]:
    """The selected workloads, their commands pointing into the scratch directory."""
    out: list[Workload] = []
    s = str(scratch)
    for key in keys:
        if key.startswith(("alloc_", "threads_")):
            prog, sizes = key.split("_")
            name = "alloc_heavy" if prog == "alloc" else "alloc_threads"
            build = _cc(f"{name}.c", name, *(["-pthread"] if prog == "threads" else []))
            title = (f"{'single-threaded C' if prog == 'alloc' else 'C, 8 threads, cross-thread frees'}, "
                     f"{'power-of-two' if sizes == 'pow2' else 'random'} sizes (`{name} {sizes}`)")
            out.append(Workload(key, title, f"{ALLOC_DESC if prog == 'alloc' else THREADS_DESC} Sizes: "
                                f"{SIZES_DESC[sizes]}.", [f"{s}/{name}", str(p.steps), sizes], f"{s}/{name}",
                                [build], counts_line=True, size=f"{p.steps:,} steps"))
        elif key == "containers":
            build = Build("containers", ["c++", *C_FLAGS, "-o", "$SCRATCH/containers", "tools/bench/containers.cpp"])
            out.append(Workload(key, "C++ containers (`containers`)",
                                "`tools/bench/containers.cpp`: single-threaded, fixed-seed churn of "
                                "`std::map<std::string, Record>` (upserts: node, key, name string, growing "
                                "`std::vector`; erases), `std::unordered_map<uint64_t, std::string>` (assignments, "
                                "rehashes, bounded size) and temporary `std::string` work (+=, split into a "
                                "`std::vector<std::string>`, join); keys and texts longer than the 15-byte short-string "
                                "buffer. It replaces the global operator new/delete with counting ones that call "
                                "malloc/free once each, so its JSON line counts them as malloc/free; leak: 1000 "
                                "blocks of 100 B from `::operator new`.",
                                [f"{s}/containers", str(p.cxx_steps)], f"{s}/containers", [build], counts_line=True,
                                size=f"{p.cxx_steps:,} steps"))
        elif key == "python":
            req = p.py_requests
            argv, exe = _data_service(p, repo, req)
            out.append(Workload(key, "CPython leaking service (`data_service.py`)",
                                "`tools/examples/data_service.py`: a deterministic (fixed-seed LCG, "
                                "PYTHONHASHSEED=0) request loop that leaks through a dict cache, a list of large "
                                "intermediate dicts and a list of callbacks, with temporary parsing and rendering work "
                                f"per request; {req:,} requests, the snapshot label after {req // 10:,}. "
                                "memsift (`memsift run` and the LD_PRELOAD column) and memray run the program as it "
                                "normally runs (pymalloc), whose allocators they hook themselves (memsift on CPython "
                                "3.11-3.13; memray with `--trace-python-allocators`); heaptrack gets "
                                "PYTHONMALLOC=malloc (without it it would see only pymalloc's arenas).",
                                argv, exe, [],
                                env={"PYTHONHASHSEED": "0"}, python=True,
                                size=f"{req:,} requests", output_mask=DATA_SERVICE_MASK))
        elif key == "service":
            req = p.prod_requests
            argv, exe = _data_service(p, repo, req)
            out.append(Workload(key, "the leaking CPython service under the production mode (`data_service.py`)",
                                f"The `python` workload's program, longer ({req:,} requests, the label after "
                                f"{req // 10:,}), untraced (pymalloc) and under the production mode "
                                "(`--live --sample-rate 524288`) with the default snapshot interval (60 s) and "
                                "with a snapshot every 0.25 s, both with the same sample (MEMSIFT_SAMPLE_SEED=1): "
                                "the difference between the two traces is what the extra snapshots cost, which "
                                "gives the trace size per hour below.",
                                argv, exe, [],
                                env={"PYTHONHASHSEED": "0", "MEMSIFT_SAMPLE_SEED": "1"}, size=f"{req:,} requests",
                                output_mask=DATA_SERVICE_MASK, only=["production", "production_fast"]))
        elif key == "sqlite":
            sqlite = shutil.which("sqlite3") or "/usr/bin/sqlite3"
            build = Build("workload.sql", ["python3", "tools/bench/sqlgen.py", "$SCRATCH/workload.sql", "--rows",
                                           str(p.sql_rows)])
            out.append(Workload(key, "sqlite3 running a generated SQL script (`sqlite3`)",
                                f"Debian's `{sqlite}` on an in-memory database, running a script that "
                                "`tools/bench/sqlgen.py` generates deterministically (fixed-seed LCG): one table, "
                                f"{p.sql_rows:,} single-row INSERT statements in one transaction, two indexes, seven "
                                "aggregate queries (GROUP BY, HAVING, DISTINCT, a self-join). The program does not "
                                "count its own calls: allocation calls are memsift's count, and the count checks "
                                "compare the tracers with each other.",
                                [sqlite, ":memory:", f".read {s}/workload.sql"], os.path.realpath(sqlite), [build],
                                size=f"{p.sql_rows:,} rows"))
    return out


def build_all(workloads: list[Workload], repo: Path, scratch: Path) -> list[Build]:
    """Builds the rss probe and what the workloads need (once each), in the scratch directory. Raises on failure."""
    done: dict[str, Build] = {}
    for b in [PROBE_BUILD] + [b for w in workloads for b in w.builds]:
        if b.output in done:
            continue
        argv = [a.replace("$SCRATCH", str(scratch)) for a in b.argv]
        subprocess.run(argv, cwd=repo, check=True)
        done[b.output] = b
    return list(done.values())
