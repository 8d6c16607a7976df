#!/usr/bin/env python3
"""Writes the fuzz target's seed corpus (tools/fuzz/corpus): real traces of
small victims in each of the target's input modes, and hand-built hostile
record streams. The first byte of a seed is the target's mode byte (see
Sources/memsift-fuzz/FuzzTarget.swift).

usage: tools/fuzz/make-seeds.py [OUT_DIR]   (run from the repository, after
`swift build` and `make -C cshim`; the debug memsift and its shim are used)
"""
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEMSIFT = os.path.join(ROOT, ".build/debug/memsift")
SHIM = os.path.join(ROOT, "cshim/build/libmemsift.so")
VICTIMS = os.path.join(ROOT, "Tests/Victims")
HEADER_SIZE = 56
MAX_SEED = 48 * 1024

# Modes (first byte): 0 raw records, 1 records compressed by the target,
# 2 the whole file, 3 the zstd stream as is; +8 the live flag.
RAW, COMPRESS, WHOLE, STREAM, LIVE = 0, 1, 2, 3, 8


def records_of(trace):
    """The record stream of a trace file, decompressed."""
    flags = struct.unpack_from("<I", trace, 16)[0]
    body = trace[HEADER_SIZE:]
    if flags & 1:
        body = subprocess.run(["zstd", "-dc"], input=body, capture_output=True, check=True).stdout
    return body, flags


def seeds_of_trace(name, trace, out):
    body, flags = records_of(trace)
    live = LIVE if flags & 4 else 0
    candidates = {f"{name}-whole": bytes([WHOLE]) + trace}
    if flags & 1:
        candidates[f"{name}-stream"] = bytes([STREAM | live]) + trace[HEADER_SIZE:]
    candidates[f"{name}-raw"] = bytes([RAW | live]) + body
    candidates[f"{name}-compress"] = bytes([COMPRESS | 4 | live, 128]) + body
    for seed, data in candidates.items():
        if len(data) <= MAX_SEED:
            write(out, seed, data)
        else:
            print(f"skipped {seed}: {len(data)} bytes", file=sys.stderr)


def write(out, name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def real_traces(out):
    tmp = tempfile.mkdtemp(prefix="memsift-seeds.")
    cc = lambda exe, src, *extra: subprocess.run(
        ["cc", "-O1", "-g", "-fno-omit-frame-pointer", "-o", os.path.join(tmp, exe), os.path.join(VICTIMS, src), *extra],
        check=True)
    cc("leak", "leak.c")
    cc("functions", "functions.c")
    cc("snapshots", "snapshots.c", "-ldl")
    cc("sampled", "sampled.c")
    leak, functions, snapshots, sampled = (os.path.join(tmp, x) for x in ("leak", "functions", "snapshots", "sampled"))

    def run(name, args, stdin=b"", env=None):
        path = os.path.join(tmp, name + ".trace")
        subprocess.run([MEMSIFT, "run", "-q", "-o", path, *args], input=stdin, stdout=subprocess.DEVNULL,
                       check=True, env=env)
        with open(path, "rb") as f:
            seeds_of_trace(name, f.read(), out)

    def preload(name, args):
        path = os.path.join(tmp, name + ".trace")
        env = dict(os.environ, LD_PRELOAD=SHIM, MEMSIFT_OUTPUT=path)
        subprocess.run(args, stdout=subprocess.DEVNULL, check=True, env=env)
        with open(path, "rb") as f:
            seeds_of_trace(name, f.read(), out)

    run("leak", ["--", leak, "5", "100"])
    run("functions", ["--depth", "8", "--", functions])
    run("snapshots", ["--", snapshots], stdin=b"\n")
    run("live", ["--live", "--snapshot-every", "0.05", "--", snapshots], stdin=b"\n")
    run("sampled", ["--sample-rate", "4096", "--", sampled])
    run("python", ["--depth", "4", "--", "python3", "-S", "-c", "x = [bytes(100) for _ in range(10)]"])
    preload("shim-leak", [leak, "5", "100"])
    preload("shim-functions", [functions])


# Hand-built record streams (mode RAW unless said), the hostile cases the
# issue names.
def rec(rtype, payload, aux=0, size=None, state=2, magic=0xA5):
    body = payload + b"\0" * (-(8 + len(payload)) % 8)
    size = 8 + len(body) if size is None else size
    return struct.pack("<IBBBB", size, rtype, state, aux, magic) + body


def process():
    exe, argv = b"/bin/victim", b"victim\0"
    return rec(1, struct.pack("<iiQQIIII", 42, 1, 0, 1_000_000, 4096, 64, len(exe), len(argv)) + exe + argv)


def stack(sid, frames, py=(), depth=None, py_depth=None):
    depth = len(frames) if depth is None else depth
    py_depth = len(py) if py_depth is None else py_depth
    return rec(5, struct.pack("<IHH", sid, depth, py_depth) + b"".join(struct.pack("<Q", f) for f in frames)
               + b"".join(struct.pack("<Ii", c, i) for c, i in py))


def alloc(ptr, size, sid=1, t=2_000_000, fn=1, tid=7):
    return rec(6, struct.pack("<QQQII", t, ptr, size, sid, tid), aux=fn)


def free(ptr, t=3_000_000):
    return rec(7, struct.pack("<QQ", t, ptr))


def realloc(old, size, sid=1, t=4_000_000, tid=7):
    return rec(8, struct.pack("<QQQII", t, old, size, sid, tid), aux=3)


def realloc_done(old, new, t=4_000_000, tid=7):
    return rec(12, struct.pack("<QQQII", t, old, new, tid, 0))


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def ext(op, *operands):
    return varint(op << 2 | 3) + b"".join(varint(o) for o in operands)


def events(ops, length=None):
    return rec(17, struct.pack("<II", len(ops) if length is None else length, 0) + ops)


def site(sid, live_bytes, live_count, allocs, allocated, t=5_000_000):
    return rec(16, struct.pack("<QIIQQQQ", t, sid, 0, live_bytes, live_count, allocs, allocated))


def snapshot(label, t=3_500_000, length=None, source=1):
    return rec(13, struct.pack("<QII", t, len(label) if length is None else length, source) + label)


def module(path, segments=((0, 0x1000, 5),), base=0x400000, count=None, build_id=b"\x01\x02", path_len=None):
    segs = b"".join(struct.pack("<QQII", v, m, f, 0) for v, m, f in segments)
    return rec(2, struct.pack("<QQIIII", 1_000_000, base, len(segments) if count is None else count, len(build_id),
                              len(path) if path_len is None else path_len, 0) + segs + build_id + path)


def code(cid, name, file, table, name_len=None, kind=1):
    return rec(14, struct.pack("<QIiIIIBBBB", 0x1000, cid, 10, len(name) if name_len is None else name_len,
                               len(file), len(table), kind, kind, 0, 0) + name + file + table)


def end(t=9_000_000):
    return rec(11, struct.pack("<QIiQQQQ", t, 1, 0, 0, 0, 0, 0))


def sampling(rate):
    return rec(15, struct.pack("<Q", rate))


def rss(b, t=3_000_000):
    return rec(9, struct.pack("<QQ", t, b))


HAND = {
    # a stack id never defined, and one defined after its use
    "undefined-stack": process() + alloc(0x1000, 10, sid=77) + alloc(0x2000, 20, sid=3) + stack(3, [0x401000]) + end(),
    # frees and reallocs of blocks never allocated, a realloc done without its start, records out of order
    "out-of-order": process() + free(0x1000) + realloc_done(0x1000, 0x2000) + realloc(0x3000, 5) + alloc(0x3000, 8)
    + realloc_done(0x3000, 0) + end() + alloc(0x4000, 1) + process(),
    # an address of 0, sizes near 2^64
    "huge-sizes": process() + alloc(0, 1) + alloc(0x10, 2**64 - 1) + alloc(0x20, 2**64 - 1) + realloc(0x10, 2**63)
    + realloc_done(0x10, 0x30) + free(0x20) + end(),
    "sampled-huge": process() + sampling(2**64 - 1) + alloc(0x10, 2**64 - 1) + alloc(0x20, 1) + end(),
    # lengths and counts far past the record
    "huge-lengths": process() + stack(1, [1], depth=0xFFFF, py_depth=0xFFFF) + code(1, b"f", b"x.py", b"", name_len=2**32 - 1)
    + module(b"/lib/x.so", count=2**32 - 1) + module(b"/lib/y.so", path_len=2**32 - 1) + snapshot(b"a", length=2**32 - 1)
    + events(b"\x00", length=2**32 - 1),
    "huge-record-size": process() + rec(6, b"\0" * 32, size=0xFFFFFFF8) + b"\0" * 64,
    "bad-sizes": process() + rec(6, b"\0" * 32, size=12) + rec(6, b"", size=0),
    "bad-header": process() + rec(6, b"\0" * 32, state=1) + rec(6, b"\0" * 32, magic=0),
    "unknown-type": process() + rec(200, b"\xff" * 40) + rec(0, b"") + end(),
    # EVENTS ops: undefined infos, frees before allocs, stack never defined, unknown ops, truncated varints
    "events-hostile": process() + events(varint(5 << 2) + varint(1) + ext(2, 100, 9, 1) + varint(0 << 2) + varint(0 << 2 | 1)
                                         + varint(0 << 2 | 1) + ext(4, 0) + ext(4, 0) + ext(5, 0) + ext(7, 0) + ext(6, 0)
                                         + ext(3, 0) + ext(8) + ext(9) + ext(10, 99) + ext(1, 2**64 - 1)
                                         + ext(2, 2**64 - 1, 2**32 + 5, 300) + varint(2**40) + ext(50))
    + events(b"\xff" * 11) + events(ext(2, 10, 0, 1) + varint(1 << 2)) + end(),
    "events-huge": process() + sampling(2**63) + events(ext(2, 2**64 - 1, 1, 1) + varint(0) * 4 + ext(2, 2**63, 2**31, 1)
                                                       + varint(1 << 2) * 3 + ext(1, 2**64 - 1) + varint(1 << 2)) + end(),
    "events-clock": process() + events(ext(1, 5) + ext(2, 8, 1, 1) + varint(0) + ext(1, 2**64 - 10) + varint(0)
                                       + snapshot(b"mid")[:0] + ext(1, 20) + varint(1)) + snapshot(b"mid", t=2**64 - 1) + end(2**64 - 1),
    # live mode: SITE records that shrink below nothing, for stacks never defined
    "live-sites": process() + site(1, 100, 2, 5, 500) + site(1, 0, 0, 3, 100) + site(2**32 - 1, 2**64 - 1, 2**64 - 1, 1, 1)
    + snapshot(b"a", source=3) + site(1, 2**63, 1, 2**64 - 1, 2**64 - 1) + snapshot(b"b", source=9) + end(),
    # Python frames naming codes never defined, a damaged line table, UCS-4 names out of range
    "python": process() + code(1, b"f\0\0\0\xff\xff\xff\xff", b"x.py", b"\xff" * 9 + b"\x80", kind=4) + code(2, b"g", b"y", b"")
    + stack(1, [0x401000, 0x402000], py=[(1 | 0x80000000, 5), (99, -7), (2 | 0x40000000, 2**31 - 1)])
    + module(b"/usr/bin/python3", segments=((0, 2**64 - 1, 5), (2**64 - 16, 32, 5)), base=2**64 - 4096)
    + rec(3, struct.pack("<QQ", 5, 2**64 - 4096)) + alloc(0x10, 1) + alloc(0x20, 2, sid=2) + end(),
    # one site holding 2^63 bytes: 64 blocks of the largest size the replay accepts
    "site-2-63": process() + stack(1, [0x401000]) + alloc(8, 5, sid=2)
    + b"".join(alloc((i + 1) << 4, 1 << 57, t=2_000_000 + i * 1000) for i in range(64)) + snapshot(b"x", t=3_000_000) + end(),
    "times": process() + alloc(0x10, 5, t=2**64 - 1) + rss(2**64 - 1, t=2**64 - 1) + alloc(0x20, 5, t=0)
    + snapshot(b"x", t=0) + snapshot(b"x", t=2**64 - 1) + end(0),
}


def hand_built(out):
    for name, body in HAND.items():
        write(out, f"hand-{name}", bytes([RAW]) + body)
        if name == "live-sites":
            write(out, f"hand-{name}-live", bytes([RAW | LIVE]) + body)
    # the same streams compressed, and cut inside a record
    write(out, "hand-events-hostile-zstd", bytes([COMPRESS]) + HAND["events-hostile"])
    write(out, "hand-cut", bytes([COMPRESS | 4, 77]) + HAND["python"][:-5])
    # a header-mode seed: version 9, a header size past the file
    hdr = struct.pack("<QIIIIiiQQII", 0x00544649534D454D, 9, 56, 0, 2, 1, 1, 0, 0, 4096, 0)
    write(out, "hand-version", bytes([WHOLE]) + hdr + process())
    hdr = struct.pack("<QIIIIiiQQII", 0x00544649534D454D, 4, 1 << 20, 0, 2, 1, 1, 0, 2**64 - 1, 4096, 0)
    write(out, "hand-header-size", bytes([WHOLE]) + hdr + process())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tools/fuzz/corpus")
    os.makedirs(out, exist_ok=True)
    hand_built(out)
    real_traces(out)


if __name__ == "__main__":
    main()
