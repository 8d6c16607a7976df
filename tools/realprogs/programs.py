#!/usr/bin/env python3
"""Runs real programs untraced and under `memsift run`, and compares what
they print and the files they write.

    programs.py [--quick] [--memsift M] [--keep DIR] [CASE...]

Each case (CASES below) is a shell script run by bash in a scratch
directory: untraced first, then traced (`memsift run -q -o ... -- bash
case.sh`, which traces bash and every program it starts), each time in the
same directory, rebuilt from the same inputs (a compiler writes its working
directory into debug information). Compared: the exit status, stdout and
stderr, and the SHA-256 of every file the case lists as its output. Then
every trace of the traced run is read with `memsift report`
(common.check_traces; --quick reads 40 of each case's, evenly spread).
Exits 1 on any difference or unreadable trace.

The outputs are deterministic by construction: fixed dates and identities
for git, PYTHONHASHSEED for Python, generated inputs from fixed seeds.
"""

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SQLGEN = os.path.join(common.REPO, "tools", "bench", "sqlgen.py")


@dataclass
class Case:
    name: str
    script: str  # run by bash in the case's directory; $REPO, $PY are set
    outputs: tuple = ()  # files (relative) whose bytes must be the same
    quick: bool = True  # in the --quick (CI) list


# sqlite3: the benchmark's workload (inserts, index builds that sort, GROUP
# BY, a self-join) in memory, then the same into a WAL-mode file database
# read back by a second process, with an integrity check and a hash of the
# whole content (.sha3sum).
SQLITE = r"""
"$PY" "$REPO/tools/bench/sqlgen.py" work.sql --rows 20000
sqlite3 :memory: ".read work.sql"
sqlite3 db.sqlite "PRAGMA journal_mode=WAL;" ".read work.sql"
sqlite3 db.sqlite "PRAGMA integrity_check;" ".sha3sum" "VACUUM;" "SELECT count(*) FROM orders;"
"""

# git: a scratch repository with fixed identities and dates, so every object
# id is the same in every run; commits, a branch and a merge, diff, log,
# gc (pack-objects, with threads), fsck, and a tar archive of the tree.
GIT = r"""
export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@example.org \
       GIT_COMMITTER_NAME=c GIT_COMMITTER_EMAIL=c@example.org TZ=UTC
export GIT_AUTHOR_DATE='2026-01-01T00:00:00' GIT_COMMITTER_DATE='2026-01-01T00:00:00'
git init -q -b main repo && cd repo
git config pack.threads 2
for i in $(seq 1 40); do
    mkdir -p "d$((i % 7))"
    seq "$i" $((i * 50)) | sed "s/^/line $i /" > "d$((i % 7))/f$i.txt"
    git add -A && git commit -q -m "commit $i"
    if [ "$i" = 20 ]; then git checkout -q -b side; fi
    if [ "$i" = 30 ]; then git checkout -q main; fi
done
git merge -q --no-edit side
git log --format='%H %s'
git diff --stat HEAD~10 HEAD
git diff HEAD~3 HEAD | sha256sum
git gc -q --aggressive
git fsck --full --strict 2>&1
git count-objects -v | grep -v size
git rev-list --objects --all | sort | sha256sum
git archive --format=tar HEAD > ../tree.tar
git blame d3/f10.txt | sed -n 1,5p
"""

# gcc: the shim's own sources and a C++ file with the standard containers,
# compiled (cc1, cc1plus, as) and linked (collect2, ld); the objects and the
# binaries must be byte for byte the same, and the program's output too.
GCC = r"""
gcc -O2 -g -std=c11 -I"$REPO/cshim/include" -I"$REPO/cshim/src" -I"$REPO/cshim/ring/include" \
    -c "$REPO/cshim/src/unwind.c" "$REPO/cshim/src/stack.c" "$REPO/cshim/src/interpose.c" "$REPO/cshim/ring/ring.c"
g++ -O2 -g -o containers "$REPO/Tests/Victims/containers.cpp"
./containers 200 50 > containers.out
cat > hello.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    char *s = malloc(64);
    strcpy(s, "hello from a traced gcc");
    puts(s);
    free(s);
    return 0;
}
EOF
gcc -O1 -o hello hello.c && ./hello
"""

# perl: hashes, regular expressions, sort, sprintf, pack, a fork with a pipe.
PERL = r"""
cat > work.pl <<'EOF'
use strict; use warnings;
my (%count, @words);
my $x = 12345;
for my $i (1 .. 200000) {
    $x = ($x * 1103515245 + 12345) % 2147483648;
    my $w = join '', map { chr(97 + (($x >> (3 * $_)) % 26)) } 0 .. 1 + $x % 6;
    $count{$w}++;
    push @words, $w if $i % 10 == 0;
}
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 9];
printf "%s %d\n", $_, $count{$_} for @top;
my $text = join ' ', @words;
(my $t = $text) =~ s/([aeiou])([^aeiou ]*)/\U$1\E$2/g;
print length($t), ' ', scalar(() = $t =~ /[AEIOU]/g), "\n";
print unpack('H*', pack('N*', map { $count{$_} } @top)), "\n";
pipe(my $r, my $w) or die;
my $pid = fork // die;
if ($pid == 0) { close $r; print $w scalar(keys %count), "\n"; close $w; exit 0 }
close $w; my $got = <$r>; waitpid $pid, 0;
print "child counted $got";
EOF
perl work.pl
"""

# bash: arrays, associative arrays, arithmetic, command substitution and
# pipelines (forks; no `head`, whose early exit would make pipefail depend on
# timing), a here-document, coreutils sort (with threads and temp
# files) and awk.
BASH = r"""
declare -A seen
words=()
x=7
for ((i = 0; i < 20000; i++)); do
    x=$(( (x * 1103515245 + 12345) % 2147483648 ))
    w=w$(( x % 997 ))
    seen[$w]=$(( ${seen[$w]:-0} + 1 ))
    (( i % 100 == 0 )) && words+=("$w")
done
echo "${#seen[@]} distinct, ${#words[@]} kept"
for k in "${!seen[@]}"; do echo "$k ${seen[$k]}"; done | sort -k2,2nr -k1,1 | sed -n 1,5p
echo "$(printf '%s\n' "${words[@]}" | sort -u | wc -l) unique kept"
seq 1 300000 | awk '{ print ($1 * 7919) % 100003, $1 }' > numbers.txt
sort -n -S 1M --parallel=2 -T . numbers.txt | sha256sum
cat <<EOF | tr a-z A-Z
here-document with ${words[0]} and $(( ${#words[@]} * 2 ))
EOF
"""

# The Debian interpreter (libpython built into the executable, stripped):
# json, re, sqlite3, threads and a subprocess.
PYTHON_DEBIAN = r"""
PYTHONHASHSEED=0 /usr/bin/python3 - <<'EOF'
import json, re, sqlite3, subprocess, sys, threading, zlib
data = [{"id": i, "name": f"item{i}", "tags": ["t%d" % (i % 7)] * (i % 5)} for i in range(20000)]
blob = json.dumps(data)
print(len(blob), zlib.crc32(blob.encode()))
print(len(re.findall(r'"item(\d*7)"', blob)))
db = sqlite3.connect(":memory:")
db.execute("create table t(id integer, name text)")
db.executemany("insert into t values(?, ?)", ((d["id"], d["name"]) for d in data))
print(db.execute("select count(*), sum(length(name)) from t").fetchone())
out = []
ts = [threading.Thread(target=lambda n=n: out.append(sum(len(json.dumps(d)) for d in data[n::4]))) for n in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sum(out))
print(subprocess.run([sys.executable, "-c", "print(sum(range(10**6)))"], capture_output=True, text=True).stdout, end="")
EOF
"""

CASES = [
    Case("sqlite3", SQLITE, ("db.sqlite",)),
    Case("git", GIT, ("tree.tar",)),
    Case("gcc", GCC, ("unwind.o", "stack.o", "interpose.o", "ring.o", "containers", "containers.out", "hello")),
    Case("perl", PERL),
    Case("bash", BASH),
    Case("python3 (Debian)", PYTHON_DEBIAN),
]


def run_case(args, case, scratch, traced):
    """Runs CASE in SCRATCH/NAME (emptied first), returns (completed,
    {output file: sha256}, trace dir or None)."""
    work = os.path.join(scratch, case.name.split()[0])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(os.path.join(work, "case.sh"), "w") as f:
        f.write("set -e -o pipefail\n" + case.script)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMSIFT_") and k not in ("PYTHONMALLOC", "LD_PRELOAD")}
    env.update(REPO=common.REPO, PY=sys.executable, LC_ALL="C.UTF-8", TMPDIR=work)
    cmd = ["bash", "case.sh"]
    trace_dir = None
    if traced:
        trace_dir = os.path.join(scratch, case.name.split()[0] + ".traces")
        shutil.rmtree(trace_dir, ignore_errors=True)
        os.makedirs(trace_dir)
        cmd = [args.memsift, "run", "-q", "-o", os.path.join(trace_dir, "t.trace"), "--"] + cmd
    done = common.run(cmd, cwd=work, env=env, timeout=args.timeout * (args.traced_factor if traced else 1))
    hashes = {}
    for rel in case.outputs:
        path = os.path.join(work, rel)
        if os.path.exists(path):
            with open(path, "rb") as f:
                hashes[rel] = hashlib.file_digest(f, "sha256").hexdigest()
        else:
            hashes[rel] = "missing"
    if args.keep:
        with open(os.path.join(args.keep, f"{case.name.split()[0]}.{'traced' if traced else 'untraced'}.out"), "w") as f:
            f.write(done.output)
    return done, hashes, trace_dir


def differences(untraced, traced):
    (u, uh), (t, th) = untraced, traced
    diffs = []
    if u.timed_out or t.timed_out:
        diffs.append(f"timed out: untraced {u.timed_out}, traced {t.timed_out}")
    if u.returncode != t.returncode:
        diffs.append(f"exit status: untraced {u.returncode}, traced {t.returncode}")
    if u.output != t.output:
        ul, tl = u.output.splitlines(), t.output.splitlines()
        first = next((i for i, (a, b) in enumerate(zip(ul, tl)) if a != b), min(len(ul), len(tl)))
        diffs.append(f"output differs from line {first + 1}: untraced {ul[first:first + 1]}, "
                     f"traced {tl[first:first + 1]}")
    for rel in uh:
        if uh[rel] != th[rel]:
            diffs.append(f"{rel}: untraced sha256 {uh[rel][:16]}, traced {th[rel][:16]}")
    return diffs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cases", nargs="*", metavar="CASE", help="these cases only: " + ", ".join(c.name.split()[0] for c in CASES))
    p.add_argument("--quick", action="store_true", help="the CI list (every case marked quick)")
    p.add_argument("--memsift", help="the memsift binary (default: .build/release, else .build/debug)")
    p.add_argument("--timeout", type=float, default=300, help="seconds an untraced case may take (default 300)")
    p.add_argument("--traced-factor", type=float, default=10, help="a traced case may take this many times --timeout")
    p.add_argument("--keep", metavar="DIR", help="write each run's output to DIR/CASE.SIDE.out")
    p.add_argument("--sample", type=int, metavar="N",
                   help="read only N traces of each case with memsift report (default: all; --quick: 40)")
    args = p.parse_args(argv)
    if args.sample is None and args.quick:
        args.sample = 40
    if args.sample is not None and args.sample < 1:
        p.error("--sample must be at least 1")
    args.memsift = common.find_memsift(args.memsift)
    names = {c.name.split()[0]: c for c in CASES}
    unknown = [n for n in args.cases if n not in names]
    if unknown:
        p.error(f"no case {' '.join(unknown)} (cases: {', '.join(names)})")
    cases = [names[n] for n in args.cases] if args.cases else [c for c in CASES if c.quick or not args.quick]
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)

    rows, bad, notes = [], [], []
    scratch = tempfile.mkdtemp(prefix="memsift-programs.")
    try:
        for case in cases:
            u, uh, _ = run_case(args, case, scratch, traced=False)
            t, th, trace_dir = run_case(args, case, scratch, traced=True)
            check = common.check_traces(args.memsift, trace_dir, sample=args.sample)
            diffs = differences((u, uh), (t, th))
            if u.returncode != 0:
                diffs.append(f"the untraced run failed (exit {u.returncode}): "
                             + " | ".join(u.output.strip().splitlines()[-3:]))
            rows.append([case.name, f"exit {u.returncode}", f"exit {t.returncode}", f"{u.seconds:.1f}",
                         f"{t.seconds:.1f}", check.summary(), "same" if not diffs else f"**{len(diffs)} differ**"])
            for d in diffs:
                notes.append(f"DIFFERENCE {case.name}: {d}")
            for name, err in check.unreadable:
                notes.append(f"UNREADABLE TRACE {case.name} {name}: {err}")
            for name in check.incomplete:
                notes.append(f"INCOMPLETE TRACE {case.name} {name}")
            if diffs or not check.ok:
                bad.append(case.name)
            print(f"{case.name}: {'ok' if case.name not in bad else 'DIFFERS'}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(common.table(rows, ["program", "untraced", "traced", "untraced s", "traced s",
                              "traces read by memsift report", "output and files"]))
    for n in notes:
        print(n)
    print(f"{len(rows) - len(bad)}/{len(rows)} programs the same traced as untraced")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
