"""Two phases with a quiet pause between them: `phases.py [FIRST SECOND PAUSE]`.

  first phase   FIRST bytearrays of 10,000 bytes, kept (default 20)
  label "mid"   (memsift_snapshot, looked up with ctypes)
  pause         PAUSE seconds of time.sleep (default 0.3): no heap event
  second phase  SECOND more bytearrays of 10,000 bytes, kept (default 30)
  label "after"   (not "end": TRACE@end is the end of the trace)

Between the "mid" label and the first allocation of the second phase the
interpreter touches no heap: the label is a bytes constant (no temporary to
free after the call), the function's restype is None (no int result object),
and time.sleep(0.3) takes a float constant. So a time point inside the pause
(`TRACE@Xs`) must show the same heap as `TRACE@mid`. Run it with
`python3 -S` (less startup allocation, a smaller trace to symbolize).
"""

import ctypes
import sys
import time

BLOCK = 10_000

_snapshot = getattr(ctypes.CDLL(None), "memsift_snapshot", None)
if _snapshot is None:
    sys.exit("memsift_snapshot not found: run under memsift")
_snapshot.restype = None


def main(first, second, pause):
    kept = [bytearray(BLOCK) for _ in range(first)]
    snapshot = _snapshot
    snapshot(b"mid")
    time.sleep(pause)
    kept.extend(bytearray(BLOCK) for _ in range(second))
    snapshot(b"after")
    return len(kept)


if __name__ == "__main__":
    args = sys.argv[1:]
    first = int(args[0]) if len(args) > 0 else 20
    second = int(args[1]) if len(args) > 1 else 30
    pause = float(args[2]) if len(args) > 2 else 0.3
    kept = main(first, second, pause)
    print('{"first": %d, "second": %d, "kept": %d}' % (first, second, kept))
