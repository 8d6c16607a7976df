"""Reading memsift traces without memsift: record counts and the leaks, for the benchmark's count checks.

The layout is cshim/include/memsift/trace_format.h; load_format() refreshes the
constants below from that header, so a renumbering or a new magic there does
not silently break the check.
"""
from __future__ import annotations

import mmap
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

# Defaults; load_format() refreshes the constants from the header itself, so a
# renumbering or a new magic there does not silently break the count check.
MS_TRACE_MAGIC = 0x00544649534D454D  # "MEMSIFT\0" little-endian
MS_RECORD_MAGIC = 0xA5
MS_FILE_ZSTD = 0x1
FILE_HEADER = struct.Struct("<QIIIIiiQQII")  # 56 bytes
REC_HEADER = struct.Struct("<IBBBB")
ALLOC_BODY = struct.Struct("<QQQII")  # time, ptr, size, stack, tid
FREE_BODY = struct.Struct("<QQ")  # time, ptr
# realloc, two layouts under the same MEMSIFT_FORMAT_VERSION 1, told apart by the record size:
#   before commit 9fd2f87: one 48-byte REALLOC record (time, old, new, size, stack, tid), written after the call;
#   since: a 40-byte REALLOC before the call (time, old, size, stack, tid) and a 40-byte REALLOC_DONE after it
#   (time, old, new, tid, reserved), paired by tid.
REALLOC_BODY_V1A = struct.Struct("<QQQQII")  # time, old, new, size, stack, tid
REALLOC_BODY = struct.Struct("<QQQII")  # time, old, size, stack, tid
REALLOC_DONE_BODY = struct.Struct("<QQQII")  # time, old, new, tid, reserved
END_BODY = struct.Struct("<QIiQQQQ")
REC = {"ALLOC": 6, "FREE": 7, "REALLOC": 8, "STACK": 5, "END": 11, "REALLOC_DONE": 12, "EVENTS": 17}
EVENTS_BODY = struct.Struct("<II")  # len, reserved; then the ops (trace_format.h, MS_REC_EVENTS)
FN_NAMES = {1: "malloc", 2: "calloc", 3: "realloc", 4: "reallocarray", 5: "posix_memalign",
            6: "aligned_alloc", 7: "memalign", 8: "valloc", 9: "pvalloc"}
EXPECTED_SIZES = {"ms_file_header_t": FILE_HEADER.size, "ms_record_header_t": 8,
                  "ms_alloc_record_t": 8 + ALLOC_BODY.size, "ms_free_record_t": 8 + FREE_BODY.size,
                  "ms_realloc_record_t": (8 + REALLOC_BODY.size, 8 + REALLOC_BODY_V1A.size),
                  "ms_realloc_done_record_t": 8 + REALLOC_DONE_BODY.size, "ms_end_record_t": 8 + END_BODY.size}
FORMAT_WARNINGS: list[str] = []


def load_format(header: Path) -> None:
    """Reads the magics and enums from trace_format.h; notes layout drift."""
    global MS_TRACE_MAGIC, MS_RECORD_MAGIC, MS_FILE_ZSTD
    try:
        text = header.read_text()
    except OSError as e:
        FORMAT_WARNINGS.append(f"cannot read {header}: {e}; using built-in constants")
        return
    m = re.search(r"#define\s+MEMSIFT_TRACE_MAGIC\s+(0x[0-9A-Fa-f]+)", text)
    if m:
        MS_TRACE_MAGIC = int(m.group(1), 16)
    m = re.search(r"#define\s+MS_RECORD_MAGIC\s+(0x[0-9A-Fa-f]+)", text)
    if m:
        MS_RECORD_MAGIC = int(m.group(1), 16)
    m = re.search(r"#define\s+MS_FILE_ZSTD\s+(0x[0-9A-Fa-f]+)", text)
    if m:
        MS_FILE_ZSTD = int(m.group(1), 16)
    for name in list(REC):
        m = re.search(rf"\bMS_REC_{name}\s*=\s*(\d+)", text)
        if m:
            REC[name] = int(m.group(1))
    fns = dict(re.findall(r"\bMS_FN_([A-Z_]+)\s*=\s*(\d+)", text))
    if fns:
        FN_NAMES.clear()
        FN_NAMES.update({int(v): k.lower() for k, v in fns.items()})
    for typ, size in re.findall(r"_Static_assert\(sizeof\((\w+)\)\s*==\s*(\d+)", text):
        known = EXPECTED_SIZES.get(typ)
        if known is not None and int(size) not in (known if isinstance(known, tuple) else (known,)):
            FORMAT_WARNINGS.append(f"{typ} is {size} bytes in the header but {known} in bench.py: "
                                   "the count check may be wrong until bench.py is updated")




def varints(buf, off: int, end: int):
    """Yields the unsigned LEB128 values of buf[off:end]."""
    value = shift = 0
    while off < end:
        b = buf[off]
        off += 1
        value |= (b & 0x7F) << shift
        if b & 0x80:
            shift += 7
        else:
            yield value
            value = shift = 0


class EventOps:
    """Replays the collector's EVENTS ops (format 4): blocks are named by their allocation info, not address."""

    def __init__(self):
        self.infos: list[tuple[int, int]] = []  # (size, function)
        self.live: dict[int, int] = {}  # info -> live blocks

    def apply(self, buf, off: int, end: int, counts: dict) -> None:
        values = varints(buf, off, end)
        for v in values:
            op, operand = v & 3, v >> 2
            if op == 0:  # ALLOC
                fn = FN_NAMES.get(self.infos[operand][1], "other")
                counts[fn] = counts.get(fn, 0) + 1
                self.live[operand] = self.live.get(operand, 0) + 1
            elif op in (1, 2):  # FREE, FREE_TEMP
                counts["free"] += 1
                self.live[operand] -= 1
            elif operand == 0:  # TIME
                next(values)
            elif operand == 1:  # INFO size stack function
                size, _stack, fn = next(values), next(values), next(values)
                self.infos.append((size, fn))
            elif operand in (2, 4):  # ALLOC_NOCALL, RESTORE
                i = next(values)
                self.live[i] = self.live.get(i, 0) + 1
            elif operand in (3, 7):  # DETACH, STALE
                self.live[next(values)] -= 1
            elif operand in (5, 6):  # RELEASE, RELEASE_TEMP
                next(values)
            elif operand == 8:  # FREE_UNMATCHED
                counts["free"] += 1
            elif operand == 10:  # CALL
                fn = FN_NAMES.get(next(values), "other")
                counts[fn] = counts.get(fn, 0) + 1

    def leaks(self) -> tuple[int, int]:
        return (sum(self.live.values()), sum(n * self.infos[i][0] for i, n in self.live.items()))


def parse_memsift_trace(path: Path, scratch: Path) -> dict:
    """Counts the records of a memsift trace and replays the heap to find leaks."""
    with open(path, "rb") as f:
        head = f.read(FILE_HEADER.size)
    if len(head) < FILE_HEADER.size:
        return {"error": "file shorter than its header"}
    magic, version, header_size, flags, writer, *_ = FILE_HEADER.unpack(head)
    if magic != MS_TRACE_MAGIC:
        return {"error": f"bad magic {magic:#x} (trace_format.h says {MS_TRACE_MAGIC:#x})"}
    raw_path, tmp = path, None
    if flags & MS_FILE_ZSTD:
        if not shutil.which("zstd"):
            return {"error": "trace is zstd-compressed and no zstd CLI was found"}
        tmp = scratch / (path.name + ".decompressed")
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            src.seek(header_size)
            subprocess.run(["zstd", "-dcq"], stdin=src, stdout=dst, check=True)
        raw_path, start = tmp, 0
    else:
        start = header_size
    counts = {name: 0 for name in FN_NAMES.values()}
    counts.update(free=0, stacks=0, records=0, realloc_null_old=0, realloc_done=0, realloc_unpaired=0,
                  realloc_layout="none seen")
    in_flight: dict[int, tuple[int, int]] = {}  # tid -> (old, size), REALLOC waiting for its DONE
    live: dict[int, int] = {}
    ops = None
    end = None
    truncated = False
    with open(raw_path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > start:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                off = start
                unpack_h = REC_HEADER.unpack_from
                unpack_a = ALLOC_BODY.unpack_from
                unpack_f = FREE_BODY.unpack_from
                unpack_r = REALLOC_BODY.unpack_from
                unpack_r1a = REALLOC_BODY_V1A.unpack_from
                unpack_rd = REALLOC_DONE_BODY.unpack_from
                old_realloc_size = 8 + REALLOC_BODY_V1A.size
                rec_magic = MS_RECORD_MAGIC
                r_alloc, r_free, r_realloc, r_stack, r_end, r_done, r_events = (
                    REC[k] for k in ('ALLOC', 'FREE', 'REALLOC', 'STACK', 'END', 'REALLOC_DONE', 'EVENTS'))
                while off + 8 <= size:
                    rsize, rtype, _state, aux, rmagic = unpack_h(m, off)
                    if rsize < 8 or rsize & 7 or off + rsize > size or rmagic != rec_magic:
                        truncated = True
                        break
                    counts["records"] += 1
                    if rtype == r_alloc:
                        _t, ptr, sz, _s, _tid = unpack_a(m, off + 8)
                        counts[FN_NAMES.get(aux, "other")] = counts.get(FN_NAMES.get(aux, "other"), 0) + 1
                        live[ptr] = sz
                    elif rtype == r_free:
                        counts["free"] += 1
                        live.pop(unpack_f(m, off + 8)[1], None)
                    elif rtype == r_realloc:
                        name = FN_NAMES.get(aux, "other")
                        counts[name] = counts.get(name, 0) + 1
                        if rsize == old_realloc_size:  # one record, after the call
                            counts["realloc_layout"] = "one record"
                            _t, old, new, sz, _s, _tid = unpack_r1a(m, off + 8)
                            if new:
                                if old:
                                    live.pop(old, None)
                                live[new] = sz
                            elif sz == 0 and old:
                                live.pop(old, None)
                        else:  # REALLOC before the call, REALLOC_DONE after it
                            counts["realloc_layout"] = "REALLOC + REALLOC_DONE"
                            _t, old, sz, _s, tid = unpack_r(m, off + 8)
                            if tid in in_flight:
                                counts["realloc_unpaired"] += 1
                            in_flight[tid] = (old, sz)
                        if old == 0:
                            counts["realloc_null_old"] += 1
                    elif rtype == r_done:
                        counts["realloc_done"] += 1
                        _t, old, new, tid, _r = unpack_rd(m, off + 8)
                        begun = in_flight.pop(tid, None)
                        if begun is None or begun[0] != old:
                            counts["realloc_unpaired"] += 1
                        else:
                            sz = begun[1]
                            if new or sz == 0:  # else failed: the old block is untouched
                                if old:
                                    live.pop(old, None)
                                if new:
                                    live[new] = sz
                    elif rtype == r_events:
                        counts["realloc_layout"] = "EVENTS ops"
                        if ops is None:
                            ops = EventOps()
                        ops.apply(m, off + 16, off + 16 + EVENTS_BODY.unpack_from(m, off + 8)[0], counts)
                    elif rtype == r_stack:
                        counts["stacks"] += 1
                    elif rtype == r_end:
                        _t, kind, status, bp_ns, bp_waits, lost, table_full = END_BODY.unpack_from(m, off + 8)
                        end = {"kind": kind, "status": status, "backpressure_ns": bp_ns,
                               "backpressure_waits": bp_waits, "lost_bytes": lost, "stack_table_full": table_full}
                    off += rsize
    if tmp:
        tmp.unlink(missing_ok=True)
    counts["realloc_unpaired"] += len(in_flight)
    counts["leaked_allocations"] = len(live)
    counts["leaked_bytes"] = sum(live.values())
    if ops is not None:
        counts["realloc_null_old"] = None  # the ops name infos, not addresses
        n, b = ops.leaks()
        counts["leaked_allocations"] += n
        counts["leaked_bytes"] += b
    counts["compressed"] = bool(flags & MS_FILE_ZSTD)
    counts["writer"] = writer
    counts["format_version"] = version
    counts["end"] = end
    counts["truncated"] = truncated
    return counts



def alloc_calls(counts: dict) -> int:
    """Allocation calls of every allocation function in a parse_memsift_trace() result."""
    return sum(counts.get(n, 0) for n in FN_NAMES.values())
