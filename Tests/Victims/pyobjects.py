"""Python objects allocated by CPython's own allocators (pymalloc), for the
tests of the shim's hooks on them (cshim/src/pymem.c): run under `memsift
run` without PYTHONMALLOC=malloc, each object must still be one allocation,
at the line that made it. Leaves with os._exit(0), so kept objects read as
leaked.

Sizes (bytes asked of PyObject_Malloc; the same asked of malloc under
PYTHONMALLOC=malloc):
  b"s" * 100   a bytes object of 133 (pymalloc's pools: 512 bytes or less)
  b"b" * 600   a bytes object of 633 (pymalloc hands it to malloc)
  b"t" * 150   a bytes object of 183, freed by the next iteration's
"""

import json
import os
import sys

SMALL, BIG, TEMP = 1000, 10, 500
# Sizes passed as arguments: a constant expression would be folded into a
# constant by the compiler and allocate nothing at run time.

small = [None] * SMALL
big = [None] * BIG


def fill(s, b, t):
    for i in range(SMALL):
        small[i] = b"s" * s  # @site:small
    for i in range(BIG):
        big[i] = b"b" * b  # @site:big
    last = None
    for i in range(TEMP):
        last = b"t" * t  # @site:temp
    return last


last = fill(100, 600, 150)
print(json.dumps({"python": sys.version.split()[0], "kept": len(small) + len(big),
                  "pythonmalloc": os.environ.get("PYTHONMALLOC", "")}))
sys.stdout.flush()
os._exit(0)
