#!/usr/bin/env python3
"""Does `memsift diff --group-by line` agree with tracemalloc on a Python leak?

The acceptance test of Python frames in memsift stacks. It runs the workload
tools/examples/data_service.py twice, with the same N, WARMUP, interpreter,
PYTHONMALLOC (malloc unless --pythonmalloc says otherwise) and
PYTHONHASHSEED=0:

  (a) untraced by memsift, with DATA_SERVICE_TRACEMALLOC=OUT.json: the
      workload starts tracemalloc (1 frame), snapshots at "warm" and "end" and
      writes end.compare_to(warm, 'lineno') (tracemalloc's own file,
      <frozen importlib...> and <unknown> left out);
  (b) MEMSIFT run -q -o TRACE -- PYTHON data_service.py N WARMUP, then
      MEMSIFT diff TRACE@warm TRACE@label:end --group-by line --format json
      (`@label:end`: a bare `@end` is the end of the trace, not the label).

and compares the top 5 growth lines (file, line) of each:
  - the same set of lines;
  - in the same order, except for two lines whose tracemalloc growths differ
    by less than 10% (either order is then right; at the 5th place this also
    lets memsift name tracemalloc's 6th instead of its 5th);
  - each memsift bytes_diff within 10% of tracemalloc's size_diff.
memsift sites are summed by (file, line) of their innermost Python frame
(frames[0] with "kind": "python"; a frame without "kind" counts as native).
Sites whose innermost frame is native (no Python frame: what tracemalloc
calls <unknown>) and <frozen importlib...> lines are left out, as on the
tracemalloc side, and listed.

Prints the two lists side by side; exits 0 when they agree, 1 when they do
not (with the reasons), 2 when a run fails. --diff-json and --tracemalloc-json
compare files kept from an earlier run (--keep) instead of running.

How exact it can be. memsift hooks PyMem_/PyObject_Malloc as tracemalloc
does (cshim/src/pymem.c), so the sizes tracemalloc records (requested
sizes, with the GC header and 3.11's managed-dict pre-header) are the sizes
memsift records, under PYTHONMALLOC=malloc as under pymalloc
(--pythonmalloc pymalloc): on this workload the two totals agree to the
byte. What can still differ:
  - realloc: tracemalloc gives the whole new block to the realloc's line,
    moved or not (the old trace is replaced), and compare_to only sums live
    blocks per line: a list grown by append moves its whole items array to
    the append's line. memsift must do the same (release + new block at the
    realloc's stack); keeping the first stack for an in-place realloc would
    break list and str growth.
  - frames being set up (3.11 MAKE_CELL / COPY_FREE_VARS / RETURN_GENERATOR
    before RESUME, "incomplete" frames): tracemalloc skips them and names
    the caller's line (the workload's closure cell, @grow:cell). memsift must
    skip them too, not name co_firstlineno.
  - allocations with no Python frame (tracemalloc: <unknown>), and malloc
    calls that bypass PyMem (ctypes/libffi, C libraries): only memsift sees
    the latter. Both are left out here and listed.
  - memsift groups lines by frame; a comprehension and its enclosing
    function share a line but not a code object: summed here by (file, line).
  - tracemalloc's own objects (the warm snapshot) and its traces table:
    tracemalloc runs in a separate run, and its file is left out.
  - anything that makes the two runs differ: hash seed (fixed), automatic GC
    and free lists (see the workload's docstring), the interpreter (a pyenv
    shim is resolved to sys.executable, or memsift would trace bash).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = os.path.join(REPO, "tools", "examples", "data_service.py")
# Lines tracemalloc leaves out (see excluded_files() in the workload);
# <unknown> is matched on the memsift side by "no Python frame".
FROZEN = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


class RunError(Exception):
    pass


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Compare memsift diff --group-by line with tracemalloc on tools/examples/data_service.py.")
    p.add_argument("--memsift", default=os.path.join(REPO, ".build", "release", "memsift"),
                   help="the memsift CLI (default: .build/release/memsift of this repository)")
    p.add_argument("--python", default="python3",
                   help="the interpreter (default: python3); resolved to sys.executable first, "
                        "so that memsift traces the interpreter and not a pyenv shim")
    p.add_argument("--requests", type=int, default=20000, help="N, requests handled (default 20000)")
    p.add_argument("--warmup", type=int, default=2000, help="requests before the \"warm\" label (default 2000)")
    p.add_argument("--top", type=int, default=5, help="how many lines must agree (default 5)")
    p.add_argument("--tolerance", type=float, default=0.10,
                   help="relative tolerance for sizes and for ties in order (default 0.10)")
    p.add_argument("--keep", metavar="DIR", help="keep the trace and the JSON files in DIR")
    p.add_argument("--run-option", action="append", default=[], metavar="OPT",
                   help="an option for `memsift run` (repeatable), e.g. --run-option=--live")
    p.add_argument("--pythonmalloc", default="malloc", metavar="NAME",
                   help="PYTHONMALLOC of both runs (default malloc; pymalloc: CPython's own allocator, which "
                        "memsift hooks)")
    p.add_argument("--tracemalloc-json", metavar="FILE",
                   help="use this tracemalloc result (from --keep) instead of running (a)")
    p.add_argument("--diff-json", metavar="FILE",
                   help="use this memsift.diff/1 document instead of running (b)")
    args = p.parse_args(argv)
    if not 0 < args.warmup < args.requests:
        p.error("need 0 < --warmup < --requests")
    if args.top < 1:
        p.error("--top must be at least 1")
    return args


def run(cmd, env, what, stdout=subprocess.PIPE):
    try:
        proc = subprocess.run(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise RunError(f"{what}: cannot run {cmd[0]}: {e}")
    if proc.returncode != 0:
        raise RunError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()}")
    return proc


def resolve_python(python):
    proc = run([python, "-c", "import sys; print(sys.executable)"], os.environ.copy(), "resolving --python")
    exe = proc.stdout.strip()
    if not exe:
        raise RunError(f"{python} has no sys.executable")
    return exe


def workload_env(extra, pythonmalloc="malloc"):
    env = os.environ.copy()
    for name in ("DATA_SERVICE_TRACEMALLOC", "DATA_SERVICE_TOP", "LD_PRELOAD", "PYTHONTRACEMALLOC"):
        env.pop(name, None)
    env["PYTHONMALLOC"] = pythonmalloc
    env["PYTHONHASHSEED"] = "0"
    env.update(extra)
    return env


def last_json_line(text, what):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    raise RunError(f"{what}: no JSON line on stdout")


def run_tracemalloc(python, args, workdir):
    out = os.path.join(workdir, "tracemalloc.json")
    env = workload_env({"DATA_SERVICE_TRACEMALLOC": out, "DATA_SERVICE_TOP": str(max(50, 4 * args.top))},
                       args.pythonmalloc)
    proc = run([python, WORKLOAD, str(args.requests), str(args.warmup)], env, "the tracemalloc run")
    summary = last_json_line(proc.stdout, "the tracemalloc run")
    return out, summary


def run_memsift(python, args, workdir):
    memsift = args.memsift
    if not (os.path.isfile(memsift) and os.access(memsift, os.X_OK)):
        raise RunError(f"memsift not found at {memsift} (build it, or pass --memsift)")
    trace = os.path.join(workdir, "service.trace")
    proc = run([memsift, "run", "-q", *args.run_option, "-o", trace, "--", python, WORKLOAD, str(args.requests),
                str(args.warmup)],
               workload_env({}, args.pythonmalloc), "memsift run")
    summary = last_json_line(proc.stdout, "the memsift run")
    if not summary.get("memsift_labels"):
        raise RunError("the workload did not find memsift_snapshot under memsift run: no labels in the trace")
    out = os.path.join(workdir, "diff.json")
    with open(out, "w") as f:
        run([memsift, "diff", trace + "@warm", trace + "@label:end", "--group-by", "line", "--format", "json"],
            workload_env({}, args.pythonmalloc), "memsift diff", stdout=f)
    return out, summary


def norm_file(name):
    if not name or name.startswith("<"):
        return name
    return os.path.realpath(name)


def load_tracemalloc(path):
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") != "data_service.tracemalloc/1":
        raise RunError(f"{path}: not a data_service.tracemalloc/1 document")
    lines = []
    for s in doc["stats"]:
        lines.append({"key": (norm_file(s["file"]), s["line"]), "bytes": s["size_diff"], "count": s["count_diff"]})
    return doc, lines


def load_memsift(path):
    """Sums the sites by their innermost Python line. Returns (doc, lines, left_out)."""
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") != "memsift.diff/1":
        raise RunError(f"{path}: not a memsift.diff/1 document (schema {doc.get('schema')!r})")
    by_line = {}
    left_out = []  # (reason, bytes_diff, description) of sites not counted
    for site in doc.get("sites", []):
        frames = site.get("frames") or []
        top = frames[0] if frames else None
        if top is None or top.get("kind", "native") != "python" or top.get("file") is None or top.get("line") is None:
            name = "no frames" if top is None else f"{top.get('function') or hex(top.get('address', 0))} ({top.get('module')})"
            left_out.append(("no Python frame", site["bytes_diff"], name))
            continue
        key = (norm_file(top["file"]), top["line"])
        if key[0] in FROZEN:
            left_out.append(("import machinery", site["bytes_diff"], f"{key[0]}:{key[1]}"))
            continue
        entry = by_line.setdefault(key, {"key": key, "bytes": 0, "count": 0, "sites": 0})
        entry["bytes"] += site["bytes_diff"]
        entry["count"] += site["count_diff"]
        entry["sites"] += 1
    lines = sorted(by_line.values(), key=lambda e: (-abs(e["bytes"]), e["key"]))
    left_out.sort(key=lambda e: -abs(e[1]))
    return doc, lines, left_out


def close(a, b, tol):
    """a and b differ by less than tol of the larger."""
    return abs(a - b) < tol * max(abs(a), abs(b))


def compare(tm, ms, top, tol):
    """Returns the list of reasons they disagree (empty: they agree)."""
    reasons = []
    if len(tm) < top:
        reasons.append(f"tracemalloc names only {len(tm)} lines (need {top})")
        return reasons
    if not ms:
        reasons.append("memsift's diff names no Python line (no site has a frame of kind \"python\"): "
                       "is this memsift built with Python frames?")
        return reasons
    tm_rank = {e["key"]: i for i, e in enumerate(tm)}
    tm_by_key = {e["key"]: e for e in tm}
    ms_by_key = {e["key"]: e for e in ms}
    ms_top = ms[:top]
    tm_top = tm[:top]
    boundary = abs(tm[top - 1]["bytes"])

    # The same set: a memsift line outside tracemalloc's top is allowed only
    # as a near-tie with tracemalloc's last one; likewise the other way.
    for i, e in enumerate(ms_top):
        r = tm_rank.get(e["key"])
        if r is None:
            reasons.append(f"memsift's #{i + 1} {fmt_key(e['key'])} ({e['bytes']:+,} B) is not among "
                           f"tracemalloc's {len(tm)} listed lines")
        elif r >= top and not close(abs(tm[r]["bytes"]), boundary, tol):
            reasons.append(f"memsift's #{i + 1} {fmt_key(e['key'])} is tracemalloc's #{r + 1} "
                           f"({tm[r]['bytes']:+,} B, not within {tol:.0%} of its #{top}, {tm[top - 1]['bytes']:+,} B)")
    ms_top_keys = {e["key"] for e in ms_top}
    ties_from_below = [k for k in ms_top_keys
                       if tm_rank.get(k, -1) >= top and close(abs(tm_by_key[k]["bytes"]), boundary, tol)]
    for i, e in enumerate(tm_top):
        if e["key"] in ms_top_keys:
            continue
        if ties_from_below and close(abs(e["bytes"]), boundary, tol):
            continue  # swapped with a near-tie from below
        m = ms_by_key.get(e["key"])
        where = "absent from memsift's diff" if m is None else \
            f"memsift's #{ms.index(m) + 1} with {m['bytes']:+,} B"
        reasons.append(f"tracemalloc's #{i + 1} {fmt_key(e['key'])} ({e['bytes']:+,} B) is not in memsift's "
                       f"top {top}: {where}")

    # The order: every pair memsift puts the other way round must be a near-tie.
    common = [e for e in ms_top if e["key"] in tm_rank]
    for i in range(len(common)):
        for j in range(i + 1, len(common)):
            a, b = common[i], common[j]
            ta, tb = tm_by_key[a["key"]], tm_by_key[b["key"]]
            if tm_rank[a["key"]] > tm_rank[b["key"]] and not close(ta["bytes"], tb["bytes"], tol):
                reasons.append(f"order: memsift puts {fmt_key(a['key'])} before {fmt_key(b['key'])}, tracemalloc "
                               f"after ({ta['bytes']:+,} B vs {tb['bytes']:+,} B, more than {tol:.0%} apart)")

    # The sizes.
    for e in ms_top:
        t = tm_by_key.get(e["key"])
        if t is None:
            continue
        if abs(e["bytes"] - t["bytes"]) > tol * abs(t["bytes"]):
            reasons.append(f"size: {fmt_key(e['key'])} grew by {e['bytes']:+,} B in memsift, {t['bytes']:+,} B in "
                           f"tracemalloc ({ratio(e['bytes'], t['bytes'])}, more than {tol:.0%} apart)")
    return reasons


def ratio(m, t):
    return f"{m / t:.3f}" if t else "-"


def fmt_file(name):
    if name and not name.startswith("<"):
        rel = os.path.relpath(name, REPO)
        if not rel.startswith(".."):
            return rel
    return name


def fmt_key(key):
    return f"{fmt_file(key[0])}:{key[1]}"


def markers(path):
    """Line -> NAME of the `# @grow:NAME` comments of the workload."""
    found = {}
    try:
        with open(path) as f:
            for n, text in enumerate(f, 1):
                if "# @grow:" in text:
                    found[n] = text.split("# @grow:", 1)[1].split()[0]
    except OSError:
        pass
    return found


def print_table(tm, ms, top):
    marks = markers(WORKLOAD)
    workload = os.path.realpath(WORKLOAD)
    ms_rank = {e["key"]: i for i, e in enumerate(ms)}
    ms_by_key = {e["key"]: e for e in ms}
    rows = []
    shown = set()
    # tracemalloc's order, then memsift's top lines tracemalloc ranks lower.
    for i, t in enumerate(tm[:top + 3]):
        shown.add(t["key"])
        rows.append((i, t))
    extra = [e for e in ms[:top] if e["key"] not in shown]
    width = max([len(fmt_key(t["key"])) for _, t in rows] + [len(fmt_key(e["key"])) for e in extra] + [9])
    print(f"{'tm#':>3}  {'file:line':<{width}}  {'role':<9}  {'tracemalloc':>13}  {'memsift':>13}  {'ratio':>6}  {'ms#':>3}")
    for i, t in rows:
        m = ms_by_key.get(t["key"])
        role = marks.get(t["key"][1], "") if t["key"][0] == workload else ""
        mrank = f"{ms_rank[t['key']] + 1}" if m else "-"
        mbytes = f"{m['bytes']:+,}" if m else "-"
        print(f"{i + 1:>3}  {fmt_key(t['key']):<{width}}  {role:<9}  {t['bytes']:>+13,}  {mbytes:>13}  "
              f"{ratio(m['bytes'], t['bytes']) if m else '-':>6}  {mrank:>3}")
        if i + 1 == top:
            print(f"{'':>3}  {'-' * width}")
    for e in extra:
        role = marks.get(e["key"][1], "") if e["key"][0] == workload else ""
        print(f"{'-':>3}  {fmt_key(e['key']):<{width}}  {role:<9}  {'-':>13}  {e['bytes']:>+13,}  {'-':>6}  "
              f"{ms_rank[e['key']] + 1:>3}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        workdir = args.keep
    else:
        workdir = tempfile.mkdtemp(prefix="memsift-python-compare.")
    try:
        python = None
        summaries = {}
        if args.tracemalloc_json:
            tm_path = args.tracemalloc_json
        else:
            python = resolve_python(args.python)
            print(f"(a) tracemalloc: {python} {os.path.relpath(WORKLOAD)} {args.requests} {args.warmup}", flush=True)
            tm_path, summaries["tracemalloc"] = run_tracemalloc(python, args, workdir)
        if args.diff_json:
            diff_path = args.diff_json
        else:
            python = python or resolve_python(args.python)
            print(f"(b) memsift: {args.memsift} run -- {python} {os.path.relpath(WORKLOAD)} "
                  f"{args.requests} {args.warmup}; diff @warm @label:end --group-by line", flush=True)
            diff_path, summaries["memsift"] = run_memsift(python, args, workdir)
        if len(summaries) == 2:
            same = {k: v for k, v in summaries["tracemalloc"].items() if k not in ("memsift_labels", "tracemalloc")}
            other = {k: v for k, v in summaries["memsift"].items() if k not in ("memsift_labels", "tracemalloc")}
            if same != other:
                raise RunError(f"the two runs did different work:\n  {same}\n  {other}")

        tm_doc, tm = load_tracemalloc(tm_path)
        ms_doc, ms, left_out = load_memsift(diff_path)
    except (RunError, OSError, ValueError, KeyError) as e:
        print(f"python-compare: {e}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print_table(tm, ms, args.top)
    print()
    tm_total = tm_doc.get("total_size_diff")
    ms_total = ms_doc.get("totals", {}).get("bytes_diff")
    if tm_total is not None and ms_total is not None:
        print(f"total growth: tracemalloc {tm_total:+,} B (Python lines), memsift {ms_total:+,} B (every site); "
              f"ratio {ratio(ms_total, tm_total)}")
    excluded = {k: v for k, v in tm_doc.get("excluded", {}).items() if v}
    if excluded:
        print("left out by tracemalloc: " + ", ".join(f"{fmt_file(k)} {v:+,} B" for k, v in excluded.items()))
    threshold = abs(ms[args.top - 1]["bytes"]) if len(ms) >= args.top else 0
    big = [e for e in left_out if abs(e[1]) >= threshold]
    if left_out:
        print(f"left out of memsift's {len(ms_doc.get('sites', []))} sites: {len(left_out)} "
              f"({sum(e[1] for e in left_out):+,} B), {len(big)} of them larger than memsift's #{args.top} line")
        for reason, size, name in left_out[:5]:
            print(f"  {size:>+13,}  {reason}: {name}")
    merged = [e for e in ms[:args.top] if e.get("sites", 1) > 1]
    for e in merged:
        print(f"memsift {fmt_key(e['key'])}: the sum of {e['sites']} sites")
    for w in ms_doc.get("warnings", []):
        print(f"memsift warning: {w}")
    if args.keep:
        print(f"kept in {args.keep}")

    reasons = compare(tm, ms, args.top, args.tolerance)
    print()
    if reasons:
        print(f"DISAGREE: memsift and tracemalloc differ on the top {args.top} growth lines:")
        for r in reasons:
            print(f"  - {r}")
        return 1
    print(f"AGREE: the same top {args.top} growth lines, in a compatible order, each within {args.tolerance:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
