"""Finalization while daemon threads allocate: THREADS daemon threads each
make WARMUP allocations of BLOCK bytes (the line marked "@site:" warm),
meet the main thread at a barrier, then allocate in a tight loop (the line
marked churn) that releases the GIL on every call: ctypes releases it
around the foreign malloc and free (so the shim reads their frames without
the GIL), hashlib around hashing a buffer over 2 KiB, time.sleep(0)
outright. The main thread prints one JSON line and returns: the
interpreter finalizes, freeing the daemon threads' states, while they are
inside malloc or about to be.

Sizes: every warm-up and loop block is BLOCK = 1 MiB + 1 bytes, a size
nothing else here requests, and each stack of them outweighs any of the
interpreter's own (so the report's top sites hold them all).
"""

import ctypes
import hashlib
import json
import sys
import threading
import time

THREADS = 4
WARMUP = 100
BLOCK = 1024 * 1024 + 1

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
data = b"h" * (64 * 1024)
warm = threading.Barrier(THREADS + 1)


def churn():
    for _ in range(WARMUP):
        libc.free(libc.malloc(BLOCK))  # @site:warm
    warm.wait()
    while True:
        libc.free(libc.malloc(BLOCK))  # @site:churn
        hashlib.sha256(data).digest()
        time.sleep(0)


for _ in range(THREADS):
    threading.Thread(target=churn, daemon=True).start()
warm.wait()
print(json.dumps({"python": sys.version.split()[0], "threads": THREADS, "warmup": WARMUP}), flush=True)
