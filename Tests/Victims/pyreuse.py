"""Code objects whose addresses are reused: ROUNDS times, compile and run
a small generated module that defines f and calls it; f allocates a block
of a size of its own at a line of its own; then drop f and its code, so
that the next round's code objects may take the freed addresses (and their
file name and line table may take those of the freed ones).

Two series, so that every interpreter reuses addresses in them:
  round i (0 <= i < ROUNDS) of "file": compiled as file gen{i}.py, f
      allocates (200 + i) KiB at line i + 2 (i blank lines above it);
  round i of "string": run by exec of the source string, so every round's
      file is "<string>" (the same interned str, as for any exec'd string),
      f allocates (300 + i) KiB at line i + 2.
f's def is on line 1 in every round: only the line of the allocation
tells the rounds of a series apart, and the file those of "file".

Prints one JSON line: per series, how many rounds found their f's code
object at an address an earlier round's had (id()), and how many found
its code object, file name and line table all where an earlier round's
were. Leaves with os._exit(0): every block reads as leaked.

Sizes (bytes requested of CPython's allocator, as of malloc under
PYTHONMALLOC=malloc):
  b"r" * n   one malloc of n + 33 (the bytes object and its NUL)
"""

import json
import os
import sys

ROUNDS = 30
KIB = 1024
kept = []


def source(i, kib):
    return "def f(kept):\n" + "\n" * i + "    kept.append(b'r' * %d)\n" % (kib * KIB) + "f(kept)\n"


def series(base, run):
    addresses = set()
    identities = set()
    reused = collided = 0
    for i in range(ROUNDS):
        namespace = {"kept": kept}
        run(source(i, base + i), i, namespace)
        code = namespace["f"].__code__
        identity = (id(code), id(code.co_filename), id(code.co_linetable))
        reused += id(code) in addresses
        collided += identity in identities
        addresses.add(id(code))
        identities.add(identity)
        del code
        namespace.clear()  # f (and its code) die here: f and its globals were a cycle
    return {"reused": reused, "collided": collided}


def in_file(text, i, namespace):
    exec(compile(text, "gen%d.py" % i, "exec"), namespace)  # @site:in_file


def in_string(text, i, namespace):
    exec(text, namespace)  # @site:in_string


result = {"python": sys.version.split()[0], "rounds": ROUNDS}
result["file"] = series(200, in_file)
result["string"] = series(300, in_string)
result["kept"] = len(kept)
print(json.dumps(result), flush=True)
os._exit(0)
