"""Line-table fixture for PythonLineTableTests.

Usage: PYTHON linetables.py OUT.json

Compiles a fixed set of sources (some stdlib modules and an embedded file of
edge cases), walks every nested code object, and writes for each its
co_firstlineno, co_linetable (hex) and co_lines() triples, so the Swift
decoder can be checked against the interpreter's own reading of the table.
"""

import json
import os
import sys
import sysconfig

if sys.version_info < (3, 11):
    sys.exit(f"linetables.py: needs Python 3.11+ (PEP 626/657 co_linetable), this is {sys.version.split()[0]}")

STDLIB_MODULES = [
    "ast.py",
    "argparse.py",
    "collections/__init__.py",
    "json/decoder.py",
    "dataclasses.py",
    "typing.py",
]


def edge_source():
    """A file built to exercise every entry form: long functions, big positive
    and negative line jumps (multi-byte varints), columns too wide for the
    short forms, lines past 10000 and 150000, and code without locations."""
    parts = []
    parts.append(
        '''\
import functools


def deco(*args):
    def wrap(f):
        return f
    return wrap


@deco(
    1,
    2,
)
@functools.lru_cache(
    maxsize=None,
)
def decorated(x):
    return (
        x
        +
        1
    )


lam = lambda a, b=2: (a
                      + b)
squares = [i * i for i in range(10) if i % 2]
table = {k: [v for v in range(k)] for k in range(5)}
gen = (x for x in range(3))


def generator(n):
    for i in range(n):
        try:
            yield i
        except ValueError as e:
            print(e)
        finally:
            pass


async def coroutine(items):
    async with items as it:
        async for x in it:
            await x
    return [y async for y in items]


class Klass:
    attr = 1

    def method(self, other):
        try:
            return self.attr / other
        except ZeroDivisionError:
            return None
        except (TypeError, ValueError) as exc:
            raise RuntimeError("bad") from exc

    @property
    def prop(self):
        with open(__file__) as f, open(__file__) as g:
            return f.read() + g.read()


def matcher(v):
    match v:
        case [a, b, *rest] if a > b:
            return rest
        case {"k": x}:
            return x
        case Klass(attr=1):
            return 1
        case _:
            return None


def closures():
    x = 1
    def inner():
        nonlocal x
        x += 1
        return x
    return inner
'''
    )
    # A long function: many statements, with gaps of 70 and 1000 blank lines
    # (line deltas beyond the one-line form and beyond one varint byte).
    body = ["def long_function(a):", "    total = 0"]
    for i in range(400):
        body.append(f"    total += a * {i}")
        if i % 50 == 0:
            body.extend([""] * 70)
        if i % 150 == 0:
            body.extend([""] * 1000)
    body.append("    return total")
    parts.append("\n".join(body) + "\n")
    # A long loop body: the backward jump returns to the `for` line (large
    # negative delta).
    loop = ["def long_loop(xs):", "    s = 0", "    for x in xs:"]
    loop += [f"        s += x * {i}" for i in range(300)]
    loop.append("    return s")
    parts.append("\n".join(loop) + "\n")
    # A call whose arguments sit 500 lines below it: the CALL goes back up.
    parts.append("def far_args(f):\n    return f(\n" + "\n" * 500 + "        1,\n    )\n")
    # Columns past 127 (long form only): a wide line (not too many terms: the
    # compiler recurses on nested BinOps) and a deep indent.
    parts.append("def wide(a):\n    return " + " + ".join(["a"] * 150) + "\n")
    parts.append("def indented(a):\n    return (" + " " * 300 + "a + 1)\n")
    # Past line 10000, then a jump of more than 131071 lines (a 4-byte varint).
    parts.append("\n" * 12000)
    parts.append("def late(a):\n    b = a\n" + "\n" * 150000 + "    return b + 1\n")
    parts.append("late_value = late(\n" + "\n" * 140000 + "    1)\n")
    return "".join(parts)


def sources():
    stdlib = sysconfig.get_paths()["stdlib"]
    for rel in STDLIB_MODULES:
        path = os.path.join(stdlib, rel)
        with open(path, encoding="utf-8") as f:
            yield rel, f.read()
    yield "<edge cases>", edge_source()


def forms(table):
    """Counts entry forms by the code in each entry's first byte (bit 7 set)."""
    counts = {"short": 0, "one-line": 0, "no-column": 0, "long": 0, "none": 0}
    for b in table:
        if b & 0x80:
            code = (b >> 3) & 15
            key = "short" if code < 10 else "one-line" if code < 13 else ["no-column", "long", "none"][code - 13]
            counts[key] += 1
    return counts


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: linetables.py OUT.json")
    codes = []
    totals = {}
    for name, text in sources():
        stack = [compile(text, name, "exec", dont_inherit=True)]
        while stack:
            co = stack.pop()
            stack.extend(c for c in reversed(co.co_consts) if hasattr(c, "co_lines"))
            for k, v in forms(co.co_linetable).items():
                totals[k] = totals.get(k, 0) + v
            codes.append(
                {
                    "file": name,
                    "qualname": co.co_qualname,
                    "firstlineno": co.co_firstlineno,
                    "linetable": co.co_linetable.hex(),
                    "codebytes": len(co.co_code),
                    "lines": [[s, e, l] for s, e, l in co.co_lines()],
                }
            )
    out = {"version": sys.version.split()[0], "forms": totals, "codes": codes}
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(out, f)


main()
