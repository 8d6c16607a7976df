"""Small helpers shared by the benchmark's modules: logging, medians, number formatting."""
from __future__ import annotations

import statistics
import sys


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def median(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec: str = ".2f", none: str = "n/a") -> str:
    return none if x is None else format(x, spec)


def ratio(a, b) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def mib(kb) -> float | None:
    return None if kb is None else kb / 1024
