"""A fake data service: `service.py MODE N [WARMUP]` handles N requests.

Each request builds a 10,000-byte result (a fresh bytes object) and hands it
to a cache:
  leaky  an unbounded dict, a new key per request: every result stays live
  fixed  an LRU (collections.OrderedDict) capped at 10 entries, evicting
Moments are labelled with memsift_snapshot (looked up with ctypes, so the
program also runs without memsift): "warm" after WARMUP requests (default
50), "done" after the last. Prints one JSON line about what it did. Run it
with `python3 -S`: without the site module the interpreter allocates less
at startup, which keeps the trace (and its symbolization) small.

The result is allocated in remember() at the line marked @site:remember,
in both modes, so the two runs have the same allocating code.
"""

import collections
import ctypes
import sys

RESULT_BYTES = 10_000
LRU_CAPACITY = 10

_snapshot = getattr(ctypes.CDLL(None), "memsift_snapshot", None)
if _snapshot is not None:
    _snapshot.restype = None


def label(name):
    if _snapshot is not None:
        _snapshot(name.encode())


class LeakyCache:
    def __init__(self):
        self.entries = {}

    def put(self, key, value):
        self.entries[key] = value  # never evicted

    def __len__(self):
        return len(self.entries)


class LruCache:
    def __init__(self, capacity):
        self.capacity = capacity
        self.entries = collections.OrderedDict()

    def put(self, key, value):
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def __len__(self):
        return len(self.entries)


def remember(cache, key, seed):
    result = (b"%09d\n" % seed) * (RESULT_BYTES // 10)  # @site:remember
    cache.put(key, result)
    return len(result)


def handle(cache, i):
    # Some churn that is gone by the end of the request: parse a "request".
    request = {"id": i, "path": "/items/%d" % (i % 97), "fields": [str(j) for j in range(8)]}
    key = "%s?id=%d" % (request["path"], request["id"])
    return remember(cache, key, i)


def main():
    mode = sys.argv[1]
    n = int(sys.argv[2])
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    if mode == "leaky":
        cache = LeakyCache()
    elif mode == "fixed":
        cache = LruCache(LRU_CAPACITY)
    else:
        sys.exit("usage: service.py leaky|fixed N [WARMUP]")
    served = 0
    for i in range(n):
        served += handle(cache, i)
        if i + 1 == warmup:
            label("warm")
    label("done")
    # One JSON line, written by hand: importing json would load more modules.
    print('{"mode": "%s", "requests": %d, "warmup": %d, "served_bytes": %d, "cached": %d}'
          % (mode, n, warmup, served, len(cache)))


if __name__ == "__main__":
    main()
