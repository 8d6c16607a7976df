#!/usr/bin/env python3
"""Tests of cpython_tests.py's judgement, without running any suite: the
JUnit outcomes, the comparison, and what a rerun untraced and EXPECTED may
and may not excuse. `python3 tools/realprogs/test_cpython_tests.py`."""

import os
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpython_tests as ct  # noqa: E402

JUNIT = """<testsuites><testsuite tests="6">
<testcase name="m.T.test_pass" status="run" result="completed"/>
<testcase name="m.T.test_fail" status="run" result="completed"><failure type="AssertionError">Traceback: boom</failure></testcase>
<testcase name="m.T.test_error" status="run" result="completed"><error type="OSError">Traceback: oops</error></testcase>
<testcase name="m.T.test_skip" status="run" result="completed"><skipped>no resource</skipped></testcase>
<testcase name="m.T.test_xfail" status="run" result="completed"><output>expected</output></testcase>
<testcase name="m.T.test_xpass" status="run" result="completed"><outcome>UNEXPECTED_SUCCESS</outcome></testcase>
</testsuite></testsuites>"""


def run(outcomes, returncode=0, timed_out=False):
    return ct.Run(1.0, returncode, timed_out, outcomes, {}, "")


class JunitTests(unittest.TestCase):
    def test_every_outcome(self):
        with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
            f.write(JUNIT)
        try:
            outcomes, messages = ct.outcomes_from_junit(f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(outcomes, {"m.T.test_pass": "pass", "m.T.test_fail": "fail", "m.T.test_error": "error",
                                    "m.T.test_skip": "skip", "m.T.test_xfail": "xfail", "m.T.test_xpass": "xpass"})
        self.assertEqual(messages, {"m.T.test_fail": "Traceback: boom", "m.T.test_error": "Traceback: oops"})

    def test_missing_or_broken_file_gives_nothing(self):
        self.assertEqual(ct.outcomes_from_junit("/nonexistent/junit.xml"), ({}, {}))
        with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
            f.write("<testsuites><testcase")
        try:
            self.assertEqual(ct.outcomes_from_junit(f.name), ({}, {}))
        finally:
            os.unlink(f.name)


class CompareTests(unittest.TestCase):
    def test_same_outcomes_same_exit(self):
        self.assertEqual(ct.compare(run({"a": "pass", "b": "skip"}), run({"a": "pass", "b": "skip"})), [])

    def test_a_test_that_fails_or_vanishes_traced(self):
        diffs = ct.compare(run({"a": "pass", "b": "pass"}), run({"a": "fail"}, returncode=2))
        self.assertEqual(diffs, [("a", "pass", "fail"), ("b", "pass", "missing"), ("(module)", "exit 0", "exit 2")])

    def test_a_timeout_on_one_side(self):
        self.assertEqual(ct.compare(run({}), run({}, returncode=-9, timed_out=True)),
                         [("(module)", "finished", "timeout")])


class JudgementTests(unittest.TestCase):
    """test_module with the runs replaced: untraced, traced, untraced again."""

    def judge(self, untraced, traced, rerun):
        runs = iter([untraced, traced, rerun])
        saved = ct.run_module
        ct.run_module = lambda args, module, scratch, traced: (tempfile.mkdtemp(), None, next(runs))
        try:
            args = types.SimpleNamespace(check_traces="none")
            return ct.test_module(args, "m", None, lambda msg: None)
        finally:
            ct.run_module = saved

    def test_a_traced_only_failure_counts(self):
        r = self.judge(run({"a": "pass"}), run({"a": "fail"}, 2), run({"a": "pass"}))
        self.assertEqual(r.differences, [("a", "pass", "fail"), ("(module)", "exit 0", "exit 2")])
        self.assertFalse(r.ok)

    def test_a_failure_that_recurs_untraced_is_flaky_not_hidden(self):
        r = self.judge(run({"a": "pass"}), run({"a": "fail"}, 2), run({"a": "fail"}, 2))
        self.assertEqual(r.differences, [])
        self.assertEqual([f[0] for f in r.flaky], ["a", "(module)"])
        self.assertTrue(r.ok)

    def test_the_rerun_excuses_only_the_tests_it_repeats(self):
        r = self.judge(run({"a": "pass", "b": "pass"}), run({"a": "fail", "b": "fail"}, 2),
                       run({"a": "fail", "b": "pass"}, 2))
        self.assertEqual(r.differences, [("b", "pass", "fail")])

    def test_expected_differences_are_listed_apart(self):
        test = next(iter(ct.EXPECTED))
        r = self.judge(run({test: "pass"}), run({test: "fail"}, 2), run({test: "pass"}))
        self.assertEqual(r.differences, [])
        self.assertEqual(r.expected, [(test, "pass", "fail"), ("(module)", "exit 0", "exit 2")])
        self.assertTrue(r.ok)

    def test_an_expected_difference_excuses_no_other(self):
        test = next(iter(ct.EXPECTED))
        r = self.judge(run({test: "pass", "a": "pass"}), run({test: "fail", "a": "fail"}, 2),
                       run({test: "pass", "a": "pass"}))
        self.assertEqual(r.differences, [("a", "pass", "fail"), ("(module)", "exit 0", "exit 2")])
        self.assertFalse(r.ok)

    def test_a_module_that_ran_no_tests_is_not_equal_to_itself(self):
        r = self.judge(run({}, 2), run({}, 2), run({}, 2))
        self.assertEqual(r.differences, [])
        self.assertFalse(r.ok)


if __name__ == "__main__":
    unittest.main()
