#!/usr/bin/env python3
"""Tests of tools/python-compare.py's reading and comparing, on made-up
documents (no memsift, no workload run): `python3 tools/python-compare-test.py`."""

import contextlib
import importlib.util
import io
import json
import os
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("python_compare", os.path.join(HERE, "python-compare.py"))
pc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pc)

SERVICE = os.path.join(HERE, "examples", "data_service.py")
# tracemalloc's lines: (line, size_diff), largest first, as the workload
# measured them; lines found by their `# @grow:NAME` markers.
LINE = {name: n for n, name in pc.markers(SERVICE).items()}
TM = [(LINE["record"], 31104000), (LINE["result"], 20736000), (LINE["raw"], 9810000),
      (LINE["callback"], 3756832), (LINE["store"], 1747187), (LINE["cell"], 720000),
      (LINE["append"], 156832), (LINE["append"] + 200, -48)]


def tm_doc(lines=TM):
    return {
        "schema": "data_service.tracemalloc/1",
        "excluded": {},
        "total_size_diff": sum(s for _, s in lines),
        "stats": [{"file": SERVICE, "line": n, "size_diff": s, "count_diff": 1, "size": s, "count": 1}
                  for n, s in lines],
    }


def python_frame(line, file=SERVICE, kind="python"):
    frame = {"function": "f", "file": file, "line": line, "module": "python", "address": 0, "inlined": False}
    if kind is not None:
        frame["kind"] = kind
    return frame


def native_frame(name="PyUnicode_New"):
    return {"function": name, "file": "Objects/unicodeobject.c", "line": 1425,
            "module": "/usr/lib/libpython3.11.so", "address": 4096, "inlined": True, "kind": "native"}


def site(bytes_diff, frames):
    return {"bytes_diff": bytes_diff, "count_diff": 1, "old_bytes": 0, "new_bytes": bytes_diff,
            "old_count": 0, "new_count": 1, "frames": frames}


def diff_doc(sites):
    sites = sorted(sites, key=lambda s: -abs(s["bytes_diff"]))
    return {"schema": "memsift.diff/1", "old": {}, "new": {},
            "totals": {"bytes_diff": sum(s["bytes_diff"] for s in sites), "count_diff": len(sites)},
            "sites": sites, "warnings": []}


def agreeing_sites(scale=1.0):
    return [site(int(s * scale), [python_frame(n), native_frame()]) for n, s in TM]


class Compare(unittest.TestCase):
    def run_compare(self, sites, tm_lines=TM):
        with tempfile.TemporaryDirectory() as d:
            tm_path = os.path.join(d, "tm.json")
            diff_path = os.path.join(d, "diff.json")
            with open(tm_path, "w") as f:
                json.dump(tm_doc(tm_lines), f)
            with open(diff_path, "w") as f:
                json.dump(diff_doc(sites), f)
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                rc = pc.main(["--tracemalloc-json", tm_path, "--diff-json", diff_path])
            return rc, out.getvalue()

    def test_identical(self):
        rc, out = self.run_compare(agreeing_sites())
        self.assertEqual(rc, 0, out)
        self.assertIn("AGREE", out)
        self.assertRegex(out, rf"\n  1  tools/examples/data_service.py:{LINE['record']} +record ")  # its @grow marker

    def test_within_tolerance(self):
        rc, out = self.run_compare(agreeing_sites(1.09))
        self.assertEqual(rc, 0, out)

    def test_size_off(self):
        sites = agreeing_sites()
        sites[2] = site(int(9810000 * 1.2), [python_frame(LINE["raw"])])
        rc, out = self.run_compare(sites)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"size: tools/examples/data_service.py:{LINE['raw']}", out)

    def test_one_line_split_into_sites_is_summed(self):
        sites = agreeing_sites()
        sites[0] = site(31104000 - 1000000, [python_frame(LINE["record"]), native_frame("PyUnicode_New")])
        sites.append(site(1000000, [python_frame(LINE["record"]), native_frame("new_keys_object")]))
        rc, out = self.run_compare(sites)
        self.assertEqual(rc, 0, out)
        self.assertIn("the sum of 2 sites", out)

    def test_native_sites_left_out(self):
        sites = agreeing_sites() + [site(50000000, [native_frame("gc_alloc")]),
                                    site(40000000, [python_frame(12, kind=None)])]  # no kind: native
        rc, out = self.run_compare(sites)
        self.assertEqual(rc, 0, out)
        self.assertIn("2 of them larger than memsift's #5 line", out)

    def test_no_python_frames(self):
        rc, out = self.run_compare([site(s, [native_frame()]) for _, s in TM])
        self.assertEqual(rc, 1, out)
        self.assertIn("names no Python line", out)

    def test_swapped_order(self):
        sites = agreeing_sites()
        sites[3] = site(1747187, [python_frame(LINE["callback"])])
        sites[4] = site(3756832, [python_frame(LINE["store"])])
        rc, out = self.run_compare(sites)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"order: memsift puts tools/examples/data_service.py:{LINE['store']} before", out)

    def test_near_tie_may_swap(self):
        tm = [(139, 1000), (135, 950), (140, 500), (145, 300), (117, 200), (119, 100)]
        sites = [site(950, [python_frame(139)]), site(1000, [python_frame(135)]),
                 site(500, [python_frame(140)]), site(300, [python_frame(145)]), site(200, [python_frame(117)])]
        # 139 and 135 are 5% apart: memsift may put them the other way round,
        # but each must still be within 10% of its own tracemalloc size.
        rc, out = self.run_compare(sites, tm)
        self.assertEqual(rc, 0, out)

    def test_near_tie_at_the_boundary(self):
        tm = [(139, 1000), (135, 800), (140, 600), (145, 400), (117, 200), (119, 195), (118, 50)]
        sites = [site(n_s[1], [python_frame(n_s[0])]) for n_s in tm]
        sites[4] = site(190, [python_frame(117)])  # memsift's 6th
        sites[5] = site(199, [python_frame(119)])  # memsift's 5th: tracemalloc's 6th, 2.5% below its 5th
        rc, out = self.run_compare(sites, tm)
        self.assertEqual(rc, 0, out)

    def test_wrong_line_in_top(self):
        sites = agreeing_sites()
        sites[4] = site(1747187, [python_frame(LINE["append"] + 100)])  # a line tracemalloc does not list
        rc, out = self.run_compare(sites)
        self.assertEqual(rc, 1, out)
        self.assertIn("not among tracemalloc's", out)
        self.assertIn(f"tracemalloc's #5 tools/examples/data_service.py:{LINE['store']}", out)

    def test_sixth_far_below_cannot_replace_fifth(self):
        sites = agreeing_sites()
        sites[4] = site(100, [python_frame(LINE["store"])])
        sites[5] = site(720000, [python_frame(LINE["cell"])])
        rc, out = self.run_compare(sites)
        self.assertEqual(rc, 1, out)
        self.assertIn("is tracemalloc's #6", out)

    def test_frozen_importlib_left_out(self):
        sites = agreeing_sites() + [site(90000000, [python_frame(241, file="<frozen importlib._bootstrap>")])]
        rc, out = self.run_compare(sites)
        self.assertEqual(rc, 0, out)
        self.assertIn("import machinery", out)

    def test_not_a_diff(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "x.json")
            with open(path, "w") as f:
                json.dump({"schema": "memsift.report/1"}, f)
            tm_path = os.path.join(d, "tm.json")
            with open(tm_path, "w") as f:
                json.dump(tm_doc(), f)
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                rc = pc.main(["--tracemalloc-json", tm_path, "--diff-json", path])
            self.assertEqual(rc, 2, out.getvalue())
            self.assertIn("not a memsift.diff/1 document", out.getvalue())


if __name__ == "__main__":
    unittest.main()
