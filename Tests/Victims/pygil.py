"""A C extension that releases the GIL and allocates: a worker thread
calls hashlib.scrypt, which runs OpenSSL's EVP_PBE_scrypt between
Py_BEGIN_ALLOW_THREADS and Py_END_ALLOW_THREADS, and OpenSSL mallocs its
work area there; meanwhile the main thread holds the GIL and runs Python
(spin, allocating at its own line) until the worker is done. The work area
must name derive (the worker's frame), not spin (the frame of the thread
holding the GIL). Prints one JSON line (spins: spin's rounds) and leaves
with os._exit(0).

Sizes: OpenSSL's scrypt allocates B and V at once, p * 128 * r +
32 * r * (N + 2) * 4 bytes: 4197376 for N = 2^12, r = 8, p = 1; spin
allocates a block of SPIN_BLOCK + 33 bytes (a bytes object) at least once,
then once a round: both are the biggest sites of the run.
"""

import hashlib
import json
import os
import sys
import threading

N, R, P = 1 << 12, 8, 1
SPIN_BLOCK = 1 << 20
kept = []
done = threading.Event()


def derive():
    kept.append(hashlib.scrypt(b"password", salt=b"salt", n=N, r=R, p=P))  # @site:derive
    done.set()


def spin(size):
    spins = 0
    while True:
        block = b"s" * size  # @site:spin
        spins += 1
        for _ in range(1000):
            pass
        if done.is_set():
            return spins


worker = threading.Thread(target=derive)
worker.start()
spins = spin(SPIN_BLOCK)
worker.join()
print(json.dumps({"python": sys.version.split()[0], "spins": spins, "kept": len(kept)}), flush=True)
os._exit(0)
