"""Tests of the driver's `locals` exec field (core/driver/PROTOCOL.md, Semantics): the result's
{name: capped repr} of the user variables after a cell, which trajectories record.

Run from the repository root:  python3 tests/driver/test_driver_locals.py"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_driver import DriverTestCase  # noqa: E402


class TestLocals(DriverTestCase):
    def test_a_plain_exec_reports_no_locals(self):
        res = self.run_ok("x = 1")
        self.assertNotIn("locals", res)
        res = self.run_ok("y = 2", locals=False)
        self.assertNotIn("locals", res)

    def test_user_variables_in_definition_order_as_repr(self):
        res = self.run_ok("import os\nb = 'two'\na = [1, 2]\n_private = 3\ndef f():\n    pass",
                          locals=True)
        got = res["locals"]
        self.assertEqual(list(got), ["os", "b", "a", "f"])
        self.assertEqual(got["b"], "'two'")
        self.assertEqual(got["a"], "[1, 2]")
        self.assertTrue(got["os"].startswith("<module 'os'"))
        self.assertTrue(got["f"].startswith("<function f at"))

    def test_scaffold_names_are_not_reported_even_when_rebound(self):
        res = self.run_ok("SUBMIT = 1\nllm_query = 2\nVOLUME = 3\nmine = 4", locals=True)
        self.assertEqual(res["locals"], {"mine": "4"})

    def test_variables_made_by_earlier_cells_are_reported(self):
        self.run_ok("early = 'set before'")
        res = self.run_ok("late = 1", locals=True)
        self.assertEqual(res["locals"], {"early": "'set before'", "late": "1"})

    def test_reprs_and_names_are_capped(self):
        res = self.run_ok("big = 'x' * 10**6\nnested = [[list(range(50))] * 50]\n"
                          "for i in range(150):\n    globals()['v%03d' % i] = i", locals=True)
        got = res["locals"]
        self.assertEqual(len(got), 100)
        self.assertTrue(all(len(v) <= 200 for v in got.values()))
        self.assertIn("...", got["big"])
        self.assertIn("...", got["nested"])

    def test_big_containers_cost_little(self):
        res = self.run_ok("d = {i: i for i in range(2 * 10**6)}\ns = set(range(2 * 10**6))\n"
                          "b = bytes(50 * 10**6)", locals=True)
        self.assertLess(res["duration_ms"], 5000)
        got = res["locals"]
        self.assertTrue(got["d"].startswith("{0: 0, 1: 1, 2: 2"), got["d"])
        self.assertTrue(got["d"].endswith(", ...}"), got["d"])
        self.assertIn("...", got["s"])
        self.assertTrue(got["b"].startswith("b'\\x00\\x00"), got["b"])
        self.assertTrue(got["b"].endswith("..."), got["b"])
        # Well inside the time for variables: nothing was cut off for time.
        self.assertFalse(any("not shown" in v for v in got.values()), got)

    def test_a_repr_that_raises_gets_a_placeholder(self):
        res = self.run_ok("class Bad:\n    def __repr__(self):\n        raise ValueError('no')\n"
                          "class Worse:\n    def __repr__(self):\n        raise SystemExit(3)\n"
                          "bad = Bad()\nworse = Worse()\nok = 1", locals=True)
        self.assertTrue(res["locals"]["bad"].startswith("<Bad instance at "))  # reprlib's
        self.assertEqual(res["locals"]["worse"], "<not shown: repr failed>")
        self.assertEqual(res["locals"]["ok"], "1")
        self.assertAlive()

    def test_a_repr_that_hangs_is_cut_off_and_the_driver_goes_on(self):
        t0 = time.monotonic()
        res = self.run_ok("class Hang:\n    def __repr__(self):\n        while True:\n"
                          "            pass\nh = Hang()\nlater = 2", locals=True)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(res["locals"]["h"], "<not shown: repr took too long>")
        self.assertIn("not shown", res["locals"]["later"])
        # The cell's own timer still works after the locals' timer was used.
        res = self.d.exec("while True:\n    pass", timeout_s=0.5)
        self.assertTrue(res["timed_out"])
        self.assertEqual(res["error"]["type"], "TimeoutError")

    def test_a_repr_cannot_call_the_host(self):
        # exec() fails the test on any call frame; the call waits for the cell's lock until
        # the locals' time runs out.
        res = self.run_ok("class Calls:\n    def __repr__(self):\n"
                          "        return llm_query('from repr')\nc = Calls()", locals=True)
        self.assertEqual(res["locals"]["c"], "<not shown: repr took too long>")
        self.assertAlive()

    def test_locals_of_a_failed_cell_are_what_it_left(self):
        res = self.d.exec("before = 1\n1 / 0\nafter = 2", locals=True)
        self.assertEqual(res["error"]["type"], "ZeroDivisionError")
        self.assertEqual(res["locals"], {"before": "1"})

    def test_a_scope_reports_its_own_namespace(self):
        self.run_ok("parent_var = 1")
        res = self.run_ok("child_var = 2", scope="child-1", locals=True)
        self.assertEqual(res["locals"], {"child_var": "2"})

    def test_bad_locals_field_is_a_protocol_error(self):
        res = self.d.exec("x = 1", locals="yes")
        self.assertEqual(res["error"]["type"], "ProtocolError")
        self.assertIn("locals", res["error"]["message"])
        self.assertAlive()


if __name__ == "__main__":
    unittest.main()
