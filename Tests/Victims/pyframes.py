"""Python frames in allocation stacks: `pyframes.py` makes one allocation of
a known size at each `@site:NAME` line, keeps them all, prints one JSON line
and leaves with os._exit(0) (no finalization: every kept block is leaked, so
each site reads as exactly its own bytes).

Sizes (bytes requested of CPython's allocator, as of malloc under
PYTHONMALLOC=malloc):
  b"x" * n              one malloc of n + 33 (the bytes object and its NUL)
  ctypes libc.malloc(n) one malloc of n, from native code called by Python

Sites, with their kept sizes (in KiB, distinct at a glance):
  inner (under outer, under <module>)         101 KiB
  gen (in a generator, driven by worker)      102 KiB
  worker (in a threading.Thread)              103 KiB
  K.meth (called back by the C builtin sorted) 104 KiB
  call_native (ctypes → libc malloc)          105 KiB
  thread_a .. thread_d (4 threads at once)    111 .. 114 KiB (each 8 times)
"""

import ctypes
import json
import os
import sys
import threading

KIB = 1024
kept = []


def inner():
    return b"x" * (101 * KIB)  # @site:inner


def outer():
    return inner()  # @site:outer


def gen():
    yield b"g" * (102 * KIB)  # @site:gen


def worker():
    kept.append(b"w" * (103 * KIB))  # @site:worker
    for block in gen():  # @site:drive_gen
        kept.append(block)


class K:
    def meth(self, item):
        kept.append(b"k" * (104 * KIB))  # @site:meth
        return item


def call_native():
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    kept.append(libc.malloc(105 * KIB))  # @site:native


# Four threads, each allocating in its own function while the others do;
# a barrier makes them overlap, and each releases the GIL in between.
barrier = threading.Barrier(4)


def thread_a():
    barrier.wait()
    for _ in range(8):
        kept.append(b"a" * (111 * KIB))  # @site:thread_a
        os.sched_yield()


def thread_b():
    barrier.wait()
    for _ in range(8):
        kept.append(b"b" * (112 * KIB))  # @site:thread_b
        os.sched_yield()


def thread_c():
    barrier.wait()
    for _ in range(8):
        kept.append(b"c" * (113 * KIB))  # @site:thread_c
        os.sched_yield()


def thread_d():
    barrier.wait()
    for _ in range(8):
        kept.append(b"d" * (114 * KIB))  # @site:thread_d
        os.sched_yield()


kept.append(outer())  # @site:module
t = threading.Thread(target=worker)
t.start()
t.join()
sorted([1], key=K().meth)  # @site:sorted
call_native()
threads = [threading.Thread(target=f) for f in (thread_a, thread_b, thread_c, thread_d)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"python": sys.version.split()[0], "kept": len(kept)}), flush=True)
os._exit(0)
