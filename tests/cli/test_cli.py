#!/usr/bin/env python3
"""End-to-end tests of the `rlm` command: exec (cells, --json, --var, exit codes), backends,
smoke. Usage: test_cli.py PATH_TO_RLM"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

RLM = None


def rlm(*args, stdin=None, timeout=120):
    return subprocess.run([RLM, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


class ExecTest(unittest.TestCase):
    def test_cells_share_state_and_json_has_every_field(self):
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write("# %%\nx = 20\n# %% second\nprint(x * 2)\n# %%\nSUBMIT(v=x + 1)\n")
        try:
            p = rlm("exec", "--json", f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(p.returncode, 0, p.stderr)
        cells = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(len(cells), 3)
        for c in cells:
            for key in ("stdout", "stderr", "error", "submit", "value", "timed_out",
                        "state_lost", "duration_ms"):
                self.assertIn(key, c)
        self.assertEqual(cells[1]["stdout"], "40\n")
        self.assertEqual(cells[2]["submit"], {"v": 21})

    def test_var_is_injected(self):
        p = rlm("exec", "-c", "print(name.upper(), n + 1)", "--var", 'name="ab"', "--var",
                "n=41")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "AB 42\n")

    def test_stdin_source(self):
        p = rlm("exec", "-", stdin="print('from stdin')\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "from stdin\n")

    def test_raising_cell_exits_1_with_traceback(self):
        p = rlm("exec", "-c", "x = 1\n1/0")
        self.assertEqual(p.returncode, 1)
        self.assertIn("ZeroDivisionError: division by zero", p.stderr)

    def test_timeout_flag_stops_a_loop(self):
        p = rlm("exec", "--json", "--timeout", "1", "-c", "while True: pass")
        self.assertEqual(p.returncode, 1)
        r = json.loads(p.stdout)
        self.assertTrue(r["timed_out"])

    def test_bad_var_is_usage_error(self):
        p = rlm("exec", "-c", "pass", "--var", "x=not json")
        self.assertEqual(p.returncode, 2)
        self.assertIn("not valid JSON", p.stderr)

    def test_unknown_config_key_suggests(self):
        p = rlm("exec", "-c", "pass", "--set", "limits.max_iteration=3")
        self.assertEqual(p.returncode, 2)
        self.assertIn("max_iterations", p.stderr)

    def test_missing_file_is_usage_error(self):
        p = rlm("exec", "/nonexistent/file.py")
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/file.py", p.stderr)

    def test_unknown_backend_is_usage_error_listing_paths(self):
        p = rlm("exec", "--backend", "nosuch", "-c", "pass")
        self.assertEqual(p.returncode, 2)
        self.assertIn("rlm-backend-nosuch.so", p.stderr)

    def test_backend_failure_exits_3(self):
        p = rlm("exec", "--backend", "mock", "--set",
                'plugin_path=["%s"]' % os.environ["RLM_TEST_PLUGIN_DIR"], "--set",
                "backends.mock.fail_start=true", "-c", "pass")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("injected start failure", p.stderr)

    def test_no_arguments_prints_usage(self):
        p = rlm()
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: rlm", p.stderr)


class BackendsTest(unittest.TestCase):
    def test_list_shows_local_with_abi_and_capabilities(self):
        p = rlm("backends")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("local", p.stdout)
        self.assertIn("ABI 1.0", p.stdout)
        self.assertIn("interrupt", p.stdout)

    def test_describe_lists_options_with_defaults(self):
        p = rlm("backends", "describe", "local")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("memory_mb", p.stdout)
        self.assertIn("default", p.stdout)

    def test_describe_unknown_fails(self):
        p = rlm("backends", "describe", "nosuch")
        self.assertEqual(p.returncode, 2)


class SmokeTest(unittest.TestCase):
    def test_smoke_local_passes_every_step(self):
        p = rlm("smoke", "--backend", "local")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for step in ("start", "vars + SUBMIT", "upload/download", "volume write/read",
                     "shutdown"):
            self.assertIn(step, p.stdout)
        self.assertNotIn("FAIL", p.stdout)

    def test_smoke_fails_on_broken_backend(self):
        p = rlm("smoke", "--backend", "mock", "--set",
                'plugin_path=["%s"]' % os.environ["RLM_TEST_PLUGIN_DIR"], "--set",
                "backends.mock.fail_start=true")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("FAIL", p.stdout)


if __name__ == "__main__":
    RLM = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
