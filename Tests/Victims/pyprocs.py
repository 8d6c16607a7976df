"""multiprocessing children, one started with "fork" and one with "spawn":
each allocates a block of its own size in its own function (the lines
marked "@site:"), and each gets a trace of its own. The fork child leaves
as multiprocessing's fork children do (os._exit, the block still live);
the spawn child is a fresh interpreter that imports this file as
__mp_main__ and finalizes normally (the block freed at exit). The parent prints one JSON
line with each child's pid and exit code.

Sizes (bytes requested of CPython's allocator, as of malloc under
PYTHONMALLOC=malloc), large enough to be the children's biggest allocations:
  in_fork_child    b"f" * 1031 KiB   one malloc of 1031 KiB + 33
  in_spawn_child   b"s" * 1032 KiB   one malloc of 1032 KiB + 33
"""

import json
import multiprocessing
import sys

KIB = 1024
kept = []


def in_fork_child():
    kept.append(b"f" * (1031 * KIB))  # @site:fork_child


def in_spawn_child():
    kept.append(b"s" * (1032 * KIB))  # @site:spawn_child


if __name__ == "__main__":
    children = {}
    for method, target in (("fork", in_fork_child), ("spawn", in_spawn_child)):
        child = multiprocessing.get_context(method).Process(target=target)
        child.start()
        child.join()
        children[method] = {"pid": child.pid, "exitcode": child.exitcode}
    print(json.dumps({"python": sys.version.split()[0], "children": children}), flush=True)
