"""A leaking "data service": `data_service.py [N [WARMUP]]` handles N requests.

The workload of the Python-frames acceptance test (tools/python-compare.py):
`memsift diff TRACE@warm TRACE@label:end --group-by line` must name the same
top-5 growth lines as tracemalloc's `Snapshot.compare_to(old, 'lineno')`
taken at the same two moments. Mind the `label:`: `TRACE@end` is the end of
the trace, after the interpreter has freed the processor, not the label
"end". It is deterministic: a fixed-seed LCG drives the
requests (no `random`, no clock, no network, no threads), so two runs of the
same N and WARMUP make the same allocations in the same order.

A DataProcessor leaks through three containers, one entry per request:
  cache      an unbounded dict: a new key per request -> a fresh result
             (a list of bytes chunks)
  buffer     a list of large intermediate dicts (one per request, never
             trimmed), each holding a string per field and a raw bytes copy
  callbacks  a list of lambdas capturing `self`, never removed
Each request also does temporary work (parsing, rendering a response) whose
objects are all freed by the end of the request.

Moments: "warm" after WARMUP requests (default 2000), "end" after the last
(default N 20000). Each moment is: gc.collect(), then the label, then
gc.collect() again (see mark()). The label is
  - memsift_snapshot(label), looked up with ctypes.CDLL(None): it exists
    only when the memsift shim is preloaded (as in Tests/Victims/service.py);
  - a tracemalloc.take_snapshot(), when DATA_SERVICE_TRACEMALLOC=OUT.json is
    set: tracemalloc is started (1 frame) at start-up, and at the end
    end.compare_to(warm, 'lineno') is written to OUT.json (top
    DATA_SERVICE_TOP entries, default 20, after dropping tracemalloc's own
    file, <frozen importlib...> and <unknown>; see excluded_files()).
Run it with the same PYTHONMALLOC in both cases (memsift and tracemalloc
both hook CPython's allocators, so pymalloc or malloc, each sees the same
allocator calls), and with PYTHONHASHSEED=0.

Expected growth between "warm" and "end", by line (tracemalloc attributes an
allocation to the innermost Python frame's current line; 18,000 requests at
the defaults; sizes are the requested sizes, 3.11 x86-64; each line below
is marked `# @grow:NAME`, which tools/python-compare.py prints):
  @grow:record    the dict comprehension building an intermediate: the dict,
                  its keys table and one 30-char str per field   1728 B/req
  @grow:result    the bytes chunks cached as the result, and the growth of
                  their list                                      1096 B/req
  @grow:raw       the raw bytes copy stored in the intermediate   545 B/req
  @grow:callback  the lambda (function object + closure tuple) and the
                  callbacks list's growth (realloc)               ~209 B/req
  @grow:store     the cache key (a fresh str) and the cache dict's growth
                  (dictresize: a new keys table, the old one freed)  ~97 B/req
Those are the top 5, each >= 1.5x the next. Below them: the closure cell of
`self` (40 B/req), made by MAKE_CELL before subscribe()'s first line, which
tracemalloc (3.11) attributes to the *caller's* line (@grow:cell), then the
buffer list's growth (@grow:append, ~9 B/req). The two growth lines of
containers are steps, not per-request amounts: a dict's table grows 2-4x
at a time and a list's items array by 1/8, so their growth depends on where
N and WARMUP fall between two resizes; their sizes are exact all the same.

Free lists: CPython keeps freed list, dict, small-tuple and float objects on
free lists and hands them out again without calling the allocator.
tracemalloc re-attributes such an object to the line that takes it from the
list; memsift sees only malloc and names the line that first allocated the
block. The workload keeps the two from differing: of each free-listed type
the request keeps one object (the result list, the intermediate dict, the
lambda's 1-tuple closure), and it is allocated where the free list is empty
in steady state: the request's only other dict (the parsed request) stays
alive until the request ends, and the temporary work makes no list, no
other dict and no 1-tuple (it uses str, bytes, bytearray, int and the
3-tuples of str.partition; no map(), and before 3.12 no comprehension that
reads a local of its function: each of those makes a 1-tuple).
Automatic garbage collection is
disabled (the workload makes no cyclic garbage): its timing depends on how
many container objects were allocated, which tracemalloc's snapshots change,
and a full collection empties the free lists. mark() collects explicitly.
"""

import ctypes
import gc
import json
import os
import sys

RESULT_CHUNKS = 8  # bytes chunks per cached result
CHUNK_BYTES = 96  # size of each chunk
BODY_BYTES = 128  # request body; the intermediate keeps RAW_REPEAT copies
RAW_REPEAT = 4
# Field names of an intermediate record: 16 fields fill a 32-slot keys table
# (21 usable), so storing "raw" as the 17th entry does not resize the dict.
FIELDS = tuple("metric_%02d" % j for j in range(16))

_LCG_MUL = 6364136223846793005
_LCG_ADD = 1442695040888963407
_LCG_MASK = (1 << 64) - 1

_snapshot = getattr(ctypes.CDLL(None), "memsift_snapshot", None)
if _snapshot is not None:
    _snapshot.restype = None
_LABEL_BYTES = {"warm": b"warm", "end": b"end"}

_TRACEMALLOC_OUT = os.environ.get("DATA_SERVICE_TRACEMALLOC")
# Both keys exist before "warm": storing a snapshot then grows no dict.
_tracemalloc_snapshots = {"warm": None, "end": None}
if _TRACEMALLOC_OUT:
    import tracemalloc

    tracemalloc.start(1)


class DataProcessor:
    def __init__(self, seed):
        self.state = seed
        self.cache = {}
        self.callbacks = []
        self.buffer = []
        self.served = 0
        self.evictions = 0

    def next_random(self):
        # Knuth's MMIX LCG: deterministic, no import of random.
        self.state = (self.state * _LCG_MUL + _LCG_ADD) & _LCG_MASK
        return self.state >> 16

    def handle(self, i):
        request = self.parse(i)  # temporary: a dict of str, freed on return
        result = self.build_result(request)
        self.cache[f"{request['path']}#{i:08d}"] = result  # @grow:store
        self.buffer.append(self.build_intermediate(request))  # @grow:append
        self.subscribe()  # @grow:cell
        return self.respond(request, result)

    def parse(self, i):
        r = self.next_random()
        user = r % 5000
        item = (r >> 20) % 100000
        line = f"GET /api/v1/items/{item}?user={user}&req={i} HTTP/1.1"
        method, _, rest = line.partition(" ")
        target, _, _ = rest.partition(" ")
        path, _, query = target.partition("?")
        body = (line * 4).encode()[:BODY_BYTES]
        return {"method": method, "path": path, "query": query, "seed": r, "body": body}

    def build_result(self, request):
        blob = request["body"] * (RESULT_CHUNKS * CHUNK_BYTES // BODY_BYTES)
        # A loop, not a comprehension: before 3.12 a comprehension is a
        # function, and one that reads `blob` gets a closure tuple, freed to
        # the tuple free list when it returns (see respond()).
        chunks = []
        for j in range(0, len(blob), CHUNK_BYTES):
            chunks.append(blob[j:j + CHUNK_BYTES])  # @grow:result
        return chunks

    def build_intermediate(self, request):
        seed = request["seed"]
        # No local of this function inside the comprehension (a closure
        # tuple before 3.12, see build_result): the values come with the names.
        values = range(seed, seed + len(FIELDS))
        record = {name: f"{name}={value:020d}" for name, value in zip(FIELDS, values)}  # @grow:record
        record["raw"] = request["body"] * RAW_REPEAT  # @grow:raw
        return record

    def subscribe(self):
        # The lambda captures self (a closure cell) and the list keeps every lambda.
        self.callbacks.append(lambda: self.evict_stale())  # @grow:callback

    def evict_stale(self):
        self.evictions += 1

    def respond(self, request, result):
        # Temporary work, all freed on return: render headers and a body,
        # checksum them. Only str, bytes, bytearray and int (see the module
        # docstring on free lists).
        # A loop, not sum(map(len, result)): map() makes a 1-tuple, which
        # goes to the tuple free list when freed and comes back as the
        # closure of the next request's lambda. tracemalloc re-attributes an
        # object taken from a free list to the line that takes it; memsift
        # sees only malloc, so it names the line that first allocated it.
        size = 0
        for chunk in result:
            size += len(chunk)
        head = f"HTTP/1.1 200 OK\r\ncontent-length: {size}\r\nx-query: {request['query']}\r\n\r\n"
        out = bytearray()
        out += head.encode()
        for chunk in result:
            out += chunk.upper()
        checksum = sum(out[::7]) & 0xFFFF
        self.served += len(out)
        return checksum


def mark(label):
    """One labelled moment: the same calls whichever tool is listening."""
    gc.collect()
    if _snapshot is not None:
        # A bytes made now would be alive during the label (b"warm" is one
        # byte longer than b"end"): pass one made at start-up.
        _snapshot(_LABEL_BYTES[label])
    if _TRACEMALLOC_OUT:
        _tracemalloc_snapshots[label] = tracemalloc.take_snapshot()
    # Empties the free lists again (a full collection does), so the blocks
    # that take_snapshot's temporaries left on them are not reused by the
    # workload: the runs with and without tracemalloc go on alike.
    gc.collect()


def excluded_files():
    # What tracemalloc's own documentation filters out, plus tracemalloc's
    # own Python frames. memsift filters NONE of these; what each stands for:
    #  - tracemalloc.__file__: the warm snapshot (its traces) is alive at
    #    "end"; in the memsift run there is no snapshot at all.
    #  - "<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>":
    #    imports; the workload imports nothing between "warm" and "end".
    #  - "<unknown>": allocations with no Python frame (interpreter
    #    internals, finalization); memsift shows those as sites whose
    #    innermost frame is native.
    return (
        tracemalloc.__file__,
        "<frozen importlib._bootstrap>",
        "<frozen importlib._bootstrap_external>",
        "<unknown>",
    )


def write_tracemalloc(path, top):
    # With 1 frame per trace and 'lineno' grouping, dropping the statistics
    # of an excluded file after compare_to is the same as filtering the two
    # snapshots first with tracemalloc.Filter(False, file) (which matches a
    # trace's only frame), and it takes 1 s instead of 25 s on 1.4 M traces:
    # Snapshot.filter_traces runs fnmatch once per trace and filter.
    excluded = excluded_files()
    stats = _tracemalloc_snapshots["end"].compare_to(_tracemalloc_snapshots["warm"], "lineno")
    entries = []
    dropped = {}
    total_size_diff = total_count_diff = 0
    for stat in stats:
        frame = stat.traceback[0]
        if frame.filename in excluded:
            dropped[frame.filename] = dropped.get(frame.filename, 0) + stat.size_diff
            continue
        total_size_diff += stat.size_diff
        total_count_diff += stat.count_diff
        if len(entries) < top:
            entries.append({
                "file": frame.filename if frame.filename.startswith("<") else os.path.abspath(frame.filename),
                "line": frame.lineno,
                "size_diff": stat.size_diff,
                "count_diff": stat.count_diff,
                "size": stat.size,
                "count": stat.count,
            })
    document = {
        "schema": "data_service.tracemalloc/1",
        "python": sys.version.split()[0],
        "pythonmalloc": os.environ.get("PYTHONMALLOC"),
        "group_by": "lineno",
        "excluded": {name: dropped.get(name, 0) for name in excluded},
        "total_size_diff": total_size_diff,
        "total_count_diff": total_count_diff,
        "stats": entries,
    }
    with open(path, "w") as out:
        json.dump(document, out, indent=1)
        out.write("\n")


def main():
    args = sys.argv[1:]
    if len(args) > 2 or any(not a.isdigit() for a in args):
        sys.exit("usage: data_service.py [N [WARMUP]]")
    n = int(args[0]) if len(args) > 0 else 20000
    warmup = int(args[1]) if len(args) > 1 else 2000
    if not 0 < warmup < n:
        sys.exit("data_service.py: need 0 < WARMUP < N")
    gc.disable()
    processor = DataProcessor(seed=20240601)
    checksum = 0
    for i in range(n):
        checksum ^= processor.handle(i)
        if i + 1 == warmup:
            mark("warm")
    mark("end")
    if _TRACEMALLOC_OUT:
        write_tracemalloc(_TRACEMALLOC_OUT, int(os.environ.get("DATA_SERVICE_TOP", "20")))
    print(json.dumps({
        "requests": n,
        "warmup": warmup,
        "cache_entries": len(processor.cache),
        "callbacks": len(processor.callbacks),
        "buffered": len(processor.buffer),
        "served_bytes": processor.served,
        "checksum": checksum,
        "memsift_labels": _snapshot is not None,
        "tracemalloc": _TRACEMALLOC_OUT or None,
    }))


if __name__ == "__main__":
    main()
