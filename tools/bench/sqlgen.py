#!/usr/bin/env python3
"""Writes the SQL script of the sqlite3 workload of the memsift benchmark.

    sqlgen.py OUT.sql [--rows 200000]

Deterministic: a fixed-seed 64-bit LCG (not `random`, whose algorithms may
change between Python versions) draws every value, so the same --rows always
gives the same bytes. The script, run as `sqlite3 :memory: ".read OUT.sql"`:

  - creates a table of orders and inserts --rows rows, one INSERT statement
    each (so sqlite3 parses and prepares every statement), in one transaction;
  - creates two indexes (one on a text column: the index build sorts);
  - runs aggregate queries (GROUP BY on text and integer columns, HAVING,
    DISTINCT, ORDER BY on an aggregate, a self-join through an index) whose
    output, rounded, is the same in every run.
"""
from __future__ import annotations

import argparse
from pathlib import Path

REGIONS = ("north", "south", "east", "west", "central", "overseas")
WORDS = ("express", "gift", "fragile", "bulk", "return", "priority", "sample", "backorder")
CUSTOMERS = 5000
PRODUCTS = 400

QUERIES = """\
CREATE INDEX orders_customer ON orders(customer, product);
CREATE INDEX orders_region_day ON orders(region, day);
SELECT region, count(*), sum(quantity), round(sum(quantity * price), 2) FROM orders GROUP BY region ORDER BY region;
SELECT customer, count(*) AS n, round(avg(price), 3) FROM orders GROUP BY customer HAVING n > 50 ORDER BY n DESC, customer LIMIT 20;
SELECT product, round(sum(quantity * price), 2) AS revenue FROM orders GROUP BY product ORDER BY revenue DESC, product LIMIT 10;
SELECT count(DISTINCT customer), count(DISTINCT note) FROM orders;
SELECT day, region, count(*) FROM orders WHERE region IN ('north', 'west') GROUP BY day, region ORDER BY 3 DESC, 1, 2 LIMIT 10;
SELECT a.customer, count(*) FROM orders AS a JOIN orders AS b ON a.customer = b.customer AND a.product = b.product
  WHERE a.id < b.id AND a.customer < 'customer-00200' GROUP BY a.customer ORDER BY 2 DESC, 1 LIMIT 10;
SELECT substr(note, 1, instr(note || ' ', ' ') - 1) AS tag, count(*), round(avg(length(note)), 2) FROM orders
  GROUP BY tag ORDER BY tag;
"""


class Lcg:
    """Knuth's MMIX LCG; the high bits are the output."""

    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def below(self, n: int) -> int:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return (self.state >> 33) % n


def write_script(out: Path, rows: int, seed: int = 0x5EED) -> None:
    rng = Lcg(seed)
    lines = ["CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT NOT NULL, region TEXT NOT NULL,",
             "  product INTEGER NOT NULL, quantity INTEGER NOT NULL, price REAL NOT NULL, day INTEGER NOT NULL,",
             "  note TEXT);",
             "BEGIN;"]
    for i in range(1, rows + 1):
        customer = f"customer-{rng.below(CUSTOMERS):05d}"
        region = REGIONS[rng.below(len(REGIONS))]
        price = rng.below(100000) / 100
        note = " ".join(WORDS[rng.below(len(WORDS))] for _ in range(1 + rng.below(6)))
        lines.append(f"INSERT INTO orders VALUES({i}, '{customer}', '{region}', {rng.below(PRODUCTS)}, "
                     f"{1 + rng.below(20)}, {price}, {rng.below(365)}, '{note}');")
    lines.append("COMMIT;")
    out.write_text("\n".join(lines) + "\n" + QUERIES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--rows", type=int, default=200000)
    a = ap.parse_args()
    write_script(a.out, a.rows)


if __name__ == "__main__":
    main()
