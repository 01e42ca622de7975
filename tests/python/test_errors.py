#!/usr/bin/python3
"""test_errors.py - every exception class of the package: one per rlm_status, what each
carries, and the real failures that raise them on the local and mock backends (the Daytona
ones, with HTTP status and request id, are in test_daytona.py)."""
import os
import pickle
import stat
import threading
import unittest

from rlmtest import TEST_PLUGIN_DIR, main, rlm, scratch

EXPECTED = {
    -1: (rlm.InvalidArgumentError, "RLM_EINVAL", ValueError),
    -2: (rlm.NoMemoryError, "RLM_ENOMEM", MemoryError),
    -3: (rlm.NotFoundError, "RLM_ENOTFOUND", LookupError),
    -4: (rlm.NotSupportedError, "RLM_ENOTSUP", NotImplementedError),
    -5: (rlm.ConfigError, "RLM_ECONFIG", None),
    -6: (rlm.PluginError, "RLM_EPLUGIN", None),
    -7: (rlm.RLMTimeoutError, "RLM_ETIMEOUT", TimeoutError),
    -8: (rlm.AuthError, "RLM_EAUTH", None),
    -9: (rlm.QuotaError, "RLM_EQUOTA", None),
    -10: (rlm.TransientError, "RLM_ETRANSIENT", None),
    -11: (rlm.BackendError, "RLM_EBACKEND", None),
    -12: (rlm.ProtocolError, "RLM_EPROTO", None),
    -13: (rlm.StateLostError, "RLM_ESTATE_LOST", None),
    -14: (rlm.BudgetError, "RLM_EBUDGET", None),
    -15: (rlm.LocalIOError, "RLM_EIO", OSError),
    -16: (rlm.CancelledError, "RLM_ECANCELLED", None),
}


def mock(**options):
    return rlm.Interpreter("mock", config={"plugin_path": [TEST_PLUGIN_DIR]}, **options)


class Classes(unittest.TestCase):
    def test_every_status_has_its_class_and_the_librarys_name(self):
        from rlm import errors
        lib = rlm._lib.load()
        for code, (cls, name, builtin) in EXPECTED.items():
            e = errors.from_code(code, "went wrong", 503, "req-1", "/x/librlm.so.0")
            self.assertIs(type(e), cls)
            self.assertIsInstance(e, rlm.Error)
            if builtin is not None:
                self.assertIsInstance(e, builtin)
            self.assertEqual(e.code, code)
            self.assertEqual(e.status, name)
            self.assertEqual(lib.rlm_status_name(code).decode(), name)
            self.assertEqual((e.message, e.http_status, e.request_id), ("went wrong", 503,
                                                                         "req-1"))
            self.assertEqual(str(e), "went wrong (%s, HTTP 503, request id req-1)" % name)
            copy = pickle.loads(pickle.dumps(e))
            self.assertEqual((type(copy), copy.message, copy.http_status), (cls, "went wrong",
                                                                            503))
        self.assertEqual(set(errors.BY_CODE), set(EXPECTED))
        e = errors.from_code(-99, "new code")
        self.assertIs(type(e), rlm.Error)

    def test_no_http_status_or_request_id_reads_none(self):
        e = rlm.ConfigError("bad key", -5)
        self.assertIsNone(e.http_status)
        self.assertIsNone(e.request_id)
        self.assertEqual(str(e), "bad key (RLM_ECONFIG)")

    def test_package_errors(self):
        self.assertTrue(issubclass(rlm.ClosedError, rlm.Error))
        self.assertTrue(issubclass(rlm.LibraryError, OSError))


class RealFailures(unittest.TestCase):
    def test_config_error_names_the_key_and_the_library(self):
        with self.assertRaises(rlm.ConfigError) as cm:
            rlm.LocalInterpreter(config={"limits": {"max_iteratons": 3}})
        self.assertIn("max_iterations", str(cm.exception))
        self.assertEqual(cm.exception.library, rlm.library_path())
        with self.assertRaises(rlm.ConfigError) as cm:
            rlm.LocalInterpreter(memory_mb="lots").start()
        with self.assertRaises(rlm.ConfigError) as cm:
            rlm.Interpreter("daytonna")
        self.assertIn("did you mean 'daytona'", str(cm.exception))

    def test_plugin_error_for_a_plugin_that_crashes(self):
        with self.assertRaises(rlm.PluginError) as cm:
            rlm.Interpreter("crash", config={"plugin_path": [TEST_PLUGIN_DIR]})
        self.assertIn("crash", str(cm.exception))

    def test_not_found_for_a_missing_file(self):
        with rlm.LocalInterpreter() as interp:
            with self.assertRaises(rlm.NotFoundError):
                interp.download("does/not/exist")

    def test_invalid_argument(self):
        with rlm.LocalInterpreter() as interp:
            with self.assertRaises(rlm.InvalidArgumentError):
                interp.upload(b"x", "")
            with self.assertRaises(rlm.InvalidArgumentError) as cm:
                interp.execute("x = 1\nprint('\udcff')")
            self.assertIn("line 2", str(cm.exception))

    def test_not_supported_when_the_backend_lacks_an_operation(self):
        with rlm.Interpreter("short", config={"plugin_path": [TEST_PLUGIN_DIR]}) as interp:
            with self.assertRaises(rlm.NotSupportedError):
                interp.run_command(["true"])

    def test_backend_error_when_the_sandbox_cannot_start(self):
        with self.assertRaises(rlm.BackendError):
            mock(fail_start=True).start()

    def test_timeout_when_the_driver_never_says_ready(self):
        d = scratch(self)
        sleeper = os.path.join(d, "python3")
        with open(sleeper, "w") as f:
            # A python that compiles (the local backend byte-compiles the driver with it
            # first) but, run as the driver, never says ready.
            f.write("#!/bin/sh\n[ \"$1\" = -I ] && exec /usr/bin/python3 \"$@\"\n"
                    "exec sleep 60\n")
        os.chmod(sleeper, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH |
                 stat.S_IXOTH)
        os.chmod(d, 0o755)
        interp = rlm.LocalInterpreter(python=sleeper, start_timeout_s=1, sandbox_uid=0)
        with self.assertRaises(rlm.RLMTimeoutError) as cm:
            interp.start()
        self.assertIsInstance(cm.exception, TimeoutError)

    def test_state_lost_is_a_result_when_the_driver_dies(self):
        with mock(drop_after_bytes=1) as interp:
            r = interp.execute("print('x' * 100)")
            self.assertTrue(r.state_lost)
            self.assertIsNotNone(r.error)

    def test_cancelled(self):
        interp = rlm.LocalInterpreter()
        interp.start()
        self.addCleanup(interp.shutdown)
        interp.cancel()
        with self.assertRaises(rlm.CancelledError):
            interp.execute("1")

    def test_budget_error_when_a_replay_script_runs_out(self):
        with self.assertRaises(rlm.BudgetError):
            rlm.run("anything", llm="replay", config={"llm": {"script": []}})

    def test_io_error_for_an_unreadable_context_file(self):
        from pathlib import Path
        with self.assertRaises((rlm.LocalIOError, rlm.NotFoundError)) as cm:
            rlm.run("x", Path(scratch(self)) / "missing.txt",
                    llm=lambda m: "```repl\nSUBMIT(answer=1)\n```")
        self.assertIn("missing.txt", str(cm.exception))

    def test_library_error_names_what_was_tried(self):
        import subprocess
        import sys
        code = ("import sys; sys.path.insert(0, %r)\nimport rlm\ntry:\n    rlm.library_path()\n"
                "except rlm.LibraryError as e:\n    print('LibraryError', e)\n" %
                os.path.join(os.path.dirname(rlm.__file__), ".."))
        env = dict(os.environ, RLM_LIBRARY="/nonexistent/librlm.so.0")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertIn("LibraryError", out.stdout)
        self.assertIn("/nonexistent/librlm.so.0 (RLM_LIBRARY): no such file", out.stdout)

    def test_user_code_failures_never_raise(self):
        with rlm.LocalInterpreter() as interp:
            for code in ("raise SystemExit(3)", "raise KeyboardInterrupt", "import os; "
                         "os.close(1)", "exec('x ==')", "raise MemoryError"):
                r = interp.execute(code)
                self.assertIsInstance(r, rlm.Result)
            self.assertEqual(interp.execute("6 * 7").value, "42")

    def test_errors_cross_threads_intact(self):
        caught = []

        def worker():
            try:
                rlm.LocalInterpreter(config={"limits": {"nope": 1}})
            except rlm.ConfigError as e:
                caught.append(e)
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(caught), 8)
        self.assertTrue(all("nope" in str(e) for e in caught))


if __name__ == "__main__":
    main()
