"""A module run as `python -m pymodule` (PYTHONPATH=Tests/Victims), where
runpy executes it as __main__, or as a plain script: its one allocation,
of 121 KiB in allocate (called from the module's code), names this file and
the lines marked "@site:" allocate and call. Prints one JSON line and
leaves with os._exit(0), so the block reads as leaked.

Runs on every CPython (2.7 too: no f-strings), for the tests of
interpreters whose frames are not read.

Size (bytes requested of CPython's allocator, as of malloc under
PYTHONMALLOC=malloc):
  b"m" * n   one malloc of n + 33 on 3.x (the bytes object and its NUL)
"""

import json
import os
import sys

KIB = 1024
kept = []


def allocate():
    kept.append(b"m" * (121 * KIB))  # @site:allocate


allocate()  # @site:call
print(json.dumps({"python": sys.version.split()[0], "name": __name__, "kept": len(kept)}))
sys.stdout.flush()
os._exit(0)
