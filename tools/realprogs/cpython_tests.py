#!/usr/bin/env python3
"""Runs modules of CPython's own regression suite untraced and under
`memsift run`, and compares their outcomes test by test.

    cpython_tests.py [--quick | --full] [-j N] [--python PY] [--memsift M]
                     [--check-traces all|none] [--keep DIR] [MODULE...]

For each module: `PY -m test -u RESOURCES --junit-xml U.xml MODULE`
untraced, then `M run -q -o DIR/t.trace -- PY -m test ... MODULE` with the
same environment, working directory layout and time limit. The JUnit files
give each test's outcome (pass, fail, error, skip, xfail, xpass); a test
whose outcome differs between the two runs is a difference, and so is a
module whose exit status differs, or that crashed or timed out on one side
only. Then every trace the traced run left (the suite forks and execs a
lot: one per process) is read with `memsift report` (common.check_traces;
--quick reads 40 of each module's, evenly spread).

Flakiness, honestly: when a module differs, it is run untraced once more.
A test whose outcome in that rerun is the traced run's outcome is reported
as "flaky untraced" (the tool cannot blame memsift for it) but listed by
name; every other difference counts. Nothing is retried traced.

Prints a table (module, tests passed untraced/traced, time of each run,
traces read, differences) and the differences, and exits 1 on any
difference or unreadable trace, 2 when it cannot run at all.

--quick is the subset CI runs (tools/test.sh); --full (the default) is the
list in FULL below, whose results are in tools/realprogs/RESULTS.md.
Modules not run, and why, are in NOT_RUN.
"""

import argparse
import concurrent.futures
import os
import shutil
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# What CI runs: threads, fork, signals, mmap, ctypes (libffi, dlopen), the
# GC and weak references (finalizers run from the allocator), JSON (the C
# accelerator), about two minutes traced on 2 cores.
QUICK = ["test_fork1", "test_thread", "test_threading_local", "test_mmap", "test_ctypes",
         "test_weakref", "test_json", "test_wait4", "test_atexit"]

# The full list: the quick subset and what exercises processes (fork, exec,
# subprocess, pty, wait), signals and faulthandler, threads, mmap, ctypes and
# the C API (PyMem_SetAllocator, whose hooks the shim installs too), dlopen
# (extension modules through importlib), the allocators under load (the
# containers, str/bytes, pickle, re, decimal, sqlite3, compression), and
# finalization (gc, weakref, atexit).
FULL = QUICK + [
    "test_threading", "test_threadsignals", "test_threadedtempfile", "test_queue",
    "test_subprocess", "test_wait3", "test_pty", "test_os", "test_posix", "test_signal",
    "test_faulthandler", "test_select", "test_selectors", "test_poll", "test_epoll",
    "test_fcntl", "test_resource", "test_capi", "test_sys", "test_tracemalloc",
    "test_gc", "test_finalization", "test_importlib", "test_re", "test_sqlite3",
    "test_dict", "test_list", "test_set", "test_deque", "test_bytes", "test_unicode",
    "test_array", "test_struct", "test_memoryview", "test_pickle",
    "test_marshal", "test_decimal", "test_zlib", "test_bz2", "test_lzma", "test_hashlib",
    "test_socket", "test_logging", "test_tempfile", "test_shutil", "test_exceptions",
    "test_generators", "test_coroutines", "test_descr", "test_itertools",
    "test_collections", "test_functools", "test_xml_etree", "test_csv", "test_datetime",
    "test_multiprocessing_main_handling", "test_asyncio",
    # Shipped by Debian's libpython3.11-testsuite, not by every interpreter:
    # a module the interpreter lacks is listed as not run.
    "test_multiprocessing_fork", "test_concurrent_futures", "test_io",
]

# Resources the tests may use, those of them the interpreter's regrtest
# knows (3.11.2 has no walltime). Not network, urlfetch (no network here),
# largefile, extralargefile (gigabytes of disk), audio, gui, curses (no
# devices), cpu (minutes of pure computation that add nothing traced).
RESOURCES = ("subprocess", "decimal", "tzdata", "walltime")

NOT_RUN = {
    "test_embed": "needs Programs/_testembed from a CPython build tree",
}

# Differences that are memsift's design, not its bugs, each with the reason;
# still printed (as "expected"), not counted. A module whose only test-level
# differences are these may also differ in its exit status.
EXPECTED = {
    "test.test_sys.SysModuleTest.test_debugmallocstats":
        "sys._debugmallocstats() prints pymalloc's statistics only while pymalloc itself is the "
        "object allocator (_PyMem_PymallocEnabled); the shim's PyMem_SetAllocator hooks sit in "
        "front of it, as tracemalloc's do (`python3 -X tracemalloc` fails this test the same way)",
}


@dataclass
class Run:
    seconds: float
    returncode: int
    timed_out: bool
    outcomes: dict  # test id -> outcome
    messages: dict  # test id -> traceback, for failures and errors
    tail: str  # the last lines of the output, for a report


@dataclass
class Result:
    module: str
    untraced: Run
    traced: Run
    traces: common.TraceCheck | None
    differences: list = field(default_factory=list)  # (test, untraced outcome, traced outcome)
    expected: list = field(default_factory=list)  # (test, untraced, traced): in EXPECTED
    flaky: list = field(default_factory=list)  # (test, untraced, traced, untraced rerun)

    @property
    def ran(self):
        """Whether the untraced run ran tests at all: a module that cannot
        run (a bad option, an import error) compares equal to itself."""
        return bool(self.untraced.outcomes)

    @property
    def ok(self):
        return self.ran and not self.differences and (self.traces is None or self.traces.ok)


def outcomes_from_junit(path):
    """(test id -> outcome, test id -> traceback) from regrtest's
    --junit-xml file (Lib/test/libregrtest/testresult.py writes it)."""
    outcomes, messages = {}, {}
    if not os.path.exists(path):
        return outcomes, messages
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return outcomes, messages
    for case in root.iter("testcase"):
        for c in case:
            if c.tag in ("error", "failure"):
                messages[case.get("name")] = (c.text or c.get("message") or "").strip()
        children = {c.tag for c in case}
        if "error" in children:
            o = "error"
        elif "failure" in children:
            o = "fail"
        elif "skipped" in children:
            o = "skip"
        elif "output" in children:  # addExpectedFailure
            o = "xfail"
        elif "outcome" in children:  # addUnexpectedSuccess
            o = "xpass"
        else:
            o = "pass"
        outcomes[case.get("name")] = o
    return outcomes, messages


def run_module(args, module, scratch, traced):
    """One run of MODULE, in a fresh directory under SCRATCH (its own TMPDIR
    too, so the two runs never share files)."""
    side = "traced" if traced else "untraced"
    # A short path: multiprocessing's AF_UNIX sockets live under TMPDIR, and
    # a socket's path has 107 bytes at most.
    work = tempfile.mkdtemp(prefix=side[0], dir=scratch)
    tmp = os.path.join(work, "tmp")
    os.mkdir(tmp)
    env = dict(os.environ, TMPDIR=tmp, PYTHONHASHSEED="0")
    for k in [k for k in env if k.startswith("MEMSIFT_") or k in ("PYTHONMALLOC", "LD_PRELOAD")]:
        del env[k]
    xml = os.path.join(work, "junit.xml")
    cmd = [args.python, "-m", "test", "-u", args.resources, "--junit-xml", xml, module]
    trace_dir = None
    if traced:
        trace_dir = os.path.join(work, "traces")
        os.mkdir(trace_dir)
        cmd = [args.memsift, "run", "-q", "-o", os.path.join(trace_dir, "t.trace"), "--"] + cmd
    done = common.run(cmd, cwd=work, env=env, timeout=args.timeout * (args.traced_factor if traced else 1))
    run = Run(done.seconds, done.returncode, done.timed_out, *outcomes_from_junit(xml),
              "\n".join(done.output.rstrip().splitlines()[-15:]))
    if args.keep:
        dest = os.path.join(args.keep, f"{module}.{side}.out")
        with open(dest, "w") as f:
            f.write(done.output)
    return work, trace_dir, run


def compare(untraced, traced):
    diffs = []
    for test in sorted(set(untraced.outcomes) | set(traced.outcomes)):
        u = untraced.outcomes.get(test, "missing")
        t = traced.outcomes.get(test, "missing")
        if u != t:
            diffs.append((test, u, t))
    if untraced.timed_out != traced.timed_out:
        diffs.append(("(module)", "timeout" if untraced.timed_out else "finished",
                      "timeout" if traced.timed_out else "finished"))
    elif untraced.returncode != traced.returncode:
        diffs.append(("(module)", f"exit {untraced.returncode}", f"exit {traced.returncode}"))
    return diffs


def test_module(args, module, scratch, log):
    uwork, _, untraced = run_module(args, module, scratch, traced=False)
    shutil.rmtree(uwork, ignore_errors=True)
    log(f"{module}: untraced {untraced.seconds:.0f} s, exit {untraced.returncode}")
    twork, trace_dir, traced = run_module(args, module, scratch, traced=True)
    log(f"{module}: traced {traced.seconds:.0f} s, exit {traced.returncode}")
    traces = None
    if args.check_traces != "none":
        traces = common.check_traces(args.memsift, trace_dir, sample=40 if args.check_traces == "sample" else None)
    shutil.rmtree(twork, ignore_errors=True)
    result = Result(module, untraced, traced, traces, compare(untraced, traced))
    if result.differences:
        log(f"{module}: {len(result.differences)} differences; running it untraced again")
        rwork, _, rerun = run_module(args, module, scratch, traced=False)
        shutil.rmtree(rwork, ignore_errors=True)
        again = {t: (u, tr) for t, u, tr in compare(rerun, traced)}
        kept = []
        for test, u, t in result.differences:
            if test == "(module)":
                if test not in again:  # the rerun ended as the traced run did
                    result.flaky.append((test, u, t, "same as traced"))
                    continue
            elif rerun.outcomes.get(test, "missing") == t:
                result.flaky.append((test, u, t, rerun.outcomes.get(test, "missing")))
                continue
            kept.append((test, u, t))
        result.differences = kept
        if not kept:
            log(f"{module}: every difference recurred untraced (flaky untraced)")
    explained = [d for d in result.differences if d[0] in EXPECTED]
    if explained:
        result.expected = explained
        result.differences = [d for d in result.differences if d[0] not in EXPECTED]
        if [d[0] for d in result.differences] == ["(module)"]:
            result.expected += result.differences
            result.differences = []
    return result


def passed(run):
    n = sum(1 for o in run.outcomes.values() if o == "pass")
    return f"{n}/{len(run.outcomes)}" if not run.timed_out else f"{n}/{len(run.outcomes)} (timeout)"


def print_results(results, out=sys.stdout):
    rows = []
    for r in results:
        rows.append([
            r.module, passed(r.untraced), passed(r.traced),
            f"{r.untraced.seconds:.0f}", f"{r.traced.seconds:.0f}",
            r.traces.summary() if r.traces else "not checked",
            "none" if not r.differences else f"**{len(r.differences)}**",
        ])
    print(common.table(rows, ["module", "passed untraced", "passed traced", "untraced s",
                              "traced s", "traces read by memsift report", "differences"]), file=out)
    for r in results:
        if not r.ran:
            print(f"RAN NO TESTS {r.module}: the untraced run (exit {r.untraced.returncode}) left no results:",
                  file=out)
            print("    " + "\n    ".join(line[:300] for line in r.untraced.tail.splitlines()), file=out)
        for test, u, t in r.differences:
            print(f"DIFFERENCE {r.module} {test}: untraced {u}, traced {t}", file=out)
            why = r.traced.messages.get(test) or r.untraced.messages.get(test)
            if why:
                print("    " + "\n    ".join(line[:300] for line in why.splitlines()[-8:]), file=out)
        if r.differences:
            print(f"  last lines of the traced run of {r.module}:", file=out)
            print("    " + "\n    ".join(line[:300] for line in r.traced.tail.splitlines()), file=out)
        for test, u, t in r.expected:
            print(f"expected {r.module} {test}: untraced {u}, traced {t}: {EXPECTED.get(test, 'follows from the above')}",
                  file=out)
        for test, u, t, again in r.flaky:
            print(f"flaky untraced {r.module} {test}: untraced {u}, traced {t}, untraced again {again}", file=out)
        if r.traces:
            for name, err in r.traces.unreadable:
                print(f"UNREADABLE TRACE {r.module} {name}: {err}", file=out)
            for name in r.traces.incomplete:
                print(f"INCOMPLETE TRACE {r.module} {name}", file=out)
    if results:
        endings = sum((r.traces.endings for r in results if r.traces), start=__import__("collections").Counter())
        print("traced processes by how they ended: "
              + ", ".join(f"{k} {v}" for k, v in sorted(endings.items())), file=out)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="the CI subset: " + " ".join(QUICK))
    g.add_argument("--full", action="store_true", help="the full list (default)")
    p.add_argument("modules", nargs="*", metavar="MODULE", help="these modules instead of a list")
    p.add_argument("-j", "--jobs", type=int, default=2, help="modules run at once (default 2)")
    p.add_argument("--python", default=sys.executable,
                   help="the interpreter whose suite runs (default: this one, a pyenv shim resolved)")
    p.add_argument("--memsift", help="the memsift binary (default: .build/release, else .build/debug)")
    p.add_argument("--timeout", type=float, default=900,
                   help="seconds an untraced module may take (default 900)")
    p.add_argument("--traced-factor", type=float, default=8,
                   help="a traced module may take this many times --timeout (default 8)")
    p.add_argument("--check-traces", choices=("all", "sample", "none"),
                   help="read every trace with memsift report, or 40 of each module's, evenly spread "
                        "(default: all; --quick: sample)")
    p.add_argument("--keep", metavar="DIR", help="write each run's output to DIR/MODULE.SIDE.out")
    args = p.parse_args(argv)
    if args.check_traces is None:
        args.check_traces = "sample" if args.quick else "all"
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    if args.timeout <= 0 or args.traced_factor < 1:
        p.error("--timeout must be positive and --traced-factor at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    args.memsift = common.find_memsift(args.memsift)
    modules = args.modules or (QUICK if args.quick else FULL)
    probe = common.run([args.python, "-m", "test", "--list-tests"], cwd=".", env=dict(os.environ), timeout=120)
    listed = probe.output.split()
    # A package split into its modules lists them: test.test_asyncio.test_tasks.
    shipped = set(listed) | {name.removeprefix("test.").split(".")[0] for name in listed}
    missing = [m for m in modules if m not in shipped]
    if probe.returncode != 0 or (missing and (args.modules or args.quick)):
        print(f"cpython_tests: {args.python} has no test module {' '.join(missing) or '(listing failed)'}",
              file=sys.stderr)
        return 2
    not_run = dict(NOT_RUN, **{m: f"not shipped with {args.python}" for m in missing})
    modules = [m for m in modules if m in shipped]
    known = common.run([args.python, "-c", "from test.libregrtest.cmdline import RESOURCE_NAMES; print(*RESOURCE_NAMES)"],
                       cwd=".", env=dict(os.environ), timeout=120)
    args.resources = ",".join(r for r in RESOURCES if r in known.output.split())
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    lock = threading.Lock()

    def log(msg):
        with lock:
            print(msg, file=sys.stderr, flush=True)

    scratch = tempfile.mkdtemp(prefix="msrp.")
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda m: test_module(args, m, scratch, log), modules))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"python: {args.python}; memsift: {args.memsift}; resources: {args.resources}")
    print_results(results)
    if not args.modules and not args.quick:
        for m, why in not_run.items():
            print(f"not run: {m}: {why}")
    bad = [r.module for r in results if not r.ok]
    print(f"{len(results) - len(bad)}/{len(results)} modules the same traced as untraced"
          + (f"; differ or lost traces: {' '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
