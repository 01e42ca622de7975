#!/usr/bin/python3
"""test_adapters.py - rlm behind dspy's CodeInterpreter contract and rllm's CodeToolOutput.

The dspy checks follow what dspy's protocol documents (dspy/primitives/code_interpreter.py)
and the conformance checks the dspy-interpreters suite names: public shape, lazy idempotent
start, python and output, namespace persists, fresh instances, recoverable error taxonomy,
host tool round trip, tool removal revokes authority, typed outputs, SUBMIT terminates the
execution, shutdown is terminal. dspy and rllm are not installed here: the adapter's stand-in
classes carry their names and hierarchy."""
import unittest

from rlmtest import TEST_PLUGIN_DIR, main, rlm

from rlm import adapters
from rlm.adapters import (CodeExecutionError, CodeInterpreter, CodeInterpreterError,
                          FinalOutput)


class DSPyContract(unittest.TestCase):
    def setUp(self):
        self.interp = CodeInterpreter(backend="local")
        self.addCleanup(self.interp.shutdown)

    def test_public_shape(self):
        for name in ("tools", "start", "execute", "shutdown"):
            self.assertTrue(hasattr(self.interp, name), name)
        self.assertIsInstance(self.interp.tools, dict)
        self.assertTrue(issubclass(CodeExecutionError, CodeInterpreterError))
        self.assertTrue(issubclass(CodeInterpreterError, RuntimeError))

    def test_lazy_idempotent_start(self):
        self.assertFalse(self.interp._interp.started)
        self.assertEqual(self.interp.execute("1 + 1"), 2)
        pid = self.interp.execute("import os; os.getpid()")
        self.interp.start()
        self.interp.start()
        self.assertEqual(self.interp.execute("os.getpid()"), pid)

    def test_python_and_output(self):
        self.assertEqual(self.interp.execute("print('total:', 11)"), "total: 11")
        self.assertEqual(self.interp.execute("[1, 'a', None]"), [1, "a", None])
        self.assertIsNone(self.interp.execute("x = 1"))
        self.assertEqual(self.interp.execute("object()")[:8], "<object ")

    def test_namespace_persists_and_variables_are_injected(self):
        self.interp.execute("import math\nkept = math.factorial(5)")
        self.assertEqual(self.interp.execute("kept + n", {"n": 1}), 121)

    def test_fresh_instances_are_isolated(self):
        self.interp.execute("mine = 1")
        other = CodeInterpreter(backend="local")
        self.addCleanup(other.shutdown)
        self.assertFalse(other.execute("'mine' in globals()"))

    def test_recoverable_error_taxonomy(self):
        with self.assertRaises(CodeExecutionError) as cm:
            self.interp.execute("1 / 0")
        self.assertIn("ZeroDivisionError", str(cm.exception))
        with self.assertRaises(SyntaxError):
            self.interp.execute("if :")
        self.assertEqual(self.interp.execute("3 * 3"), 9)  # the session lives on

    def test_host_tool_round_trips_and_removal_revokes_authority(self):
        calls = []
        self.interp.tools["record"] = lambda value=None: calls.append(value) or len(calls)
        self.assertEqual(self.interp.execute("record(value='a')"), 1)
        self.assertEqual(calls, ["a"])
        self.interp.execute("kept = record")
        del self.interp.tools["record"]
        with self.assertRaises(CodeExecutionError):
            self.interp.execute("record(value='b')")
        with self.assertRaises(CodeExecutionError):
            self.interp.execute("kept(value='c')")
        self.assertEqual(calls, ["a"])

    def test_invalid_tool_names_fail_without_killing_the_session(self):
        self.interp.tools["not an identifier"] = len
        with self.assertRaises(CodeInterpreterError) as cm:
            self.interp.execute("1")
        self.assertIn("Invalid tool name", str(cm.exception))
        del self.interp.tools["not an identifier"]
        self.assertEqual(self.interp.execute("6 * 7"), 42)

    def test_submit_returns_final_output_and_terminates_the_execution(self):
        calls = []
        self.interp.tools["record"] = lambda: calls.append(True)
        r = self.interp.execute("value = 13\nSUBMIT(answer=value)\nrecord()")
        self.assertEqual(r, FinalOutput({"answer": 13}))
        self.assertEqual(calls, [])
        self.assertEqual(self.interp.execute("SUBMIT(answer=value + 6)"),
                         FinalOutput({"answer": 19}))

    def test_typed_outputs(self):
        typed = CodeInterpreter(backend="local", output_fields=[{"name": "answer"},
                                                                {"name": "score"}])
        self.addCleanup(typed.shutdown)
        self.assertEqual(typed.execute("SUBMIT('yes', 42)").output,
                         {"answer": "yes", "score": 42})
        with self.assertRaises(CodeExecutionError) as cm:
            typed.execute("SUBMIT(wrong=0)")
        self.assertIn("fields", str(cm.exception))

    def test_shutdown_is_terminal(self):
        self.interp.execute("1")
        self.interp.shutdown()
        with self.assertRaises(CodeInterpreterError):
            self.interp.execute("1")
        with self.assertRaises(CodeInterpreterError):
            self.interp.start()

    def test_lost_state_is_an_interpreter_error_not_a_silent_restart(self):
        dying = CodeInterpreter(backend="mock", config={"plugin_path": [TEST_PLUGIN_DIR]},
                                drop_after_bytes=1)
        self.addCleanup(dying.shutdown)
        with self.assertRaises(CodeInterpreterError) as cm:
            dying.execute("print('x' * 100)")
        self.assertNotIsInstance(cm.exception, CodeExecutionError)
        with self.assertRaises(CodeInterpreterError):
            dying.execute("1")

    def test_a_sandbox_that_cannot_start_is_an_interpreter_error(self):
        broken = CodeInterpreter(backend="mock", config={"plugin_path": [TEST_PLUGIN_DIR]},
                                 fail_start=True)
        with self.assertRaises(CodeInterpreterError) as cm:
            broken.execute("1")
        self.assertIsInstance(cm.exception.__cause__, rlm.BackendError)


class RLLM(unittest.TestCase):
    def test_code_tool_output_fields(self):
        with rlm.LocalInterpreter() as interp:
            t = adapters.code_tool_output(interp.execute("print('hi')\n1 / 0"), "python")
            self.assertEqual((t.name, t.stdout, t.error),
                             ("python", "hi\n", "ZeroDivisionError: division by zero"))
            self.assertEqual(t.metadata["error_type"], "ZeroDivisionError")
            t = adapters.code_tool_output(interp.execute("2 + 3"))
            self.assertEqual((t.output, t.error), ("5", None))
            self.assertEqual(t.metadata["submitted"], False)

    def test_python_interpreter_tool_shape(self):
        tool = adapters.PythonInterpreter(backend="local")
        try:
            self.assertEqual(tool.forward("x = 40").error, None)
            out = tool.forward("x + 2")
            self.assertEqual(out.output, "42")
            out = tool(code="import time; time.sleep(5)", timeout=0.5)
            self.assertIn("TimeoutError", out.error)
        finally:
            tool.close()

    def test_infrastructure_failure_is_a_tool_error(self):
        tool = adapters.PythonInterpreter(backend="mock",
                                          config={"plugin_path": [TEST_PLUGIN_DIR]},
                                          fail_start=True)
        out = tool.forward("1")
        self.assertTrue(out.error.startswith("Sandbox error:"))
        self.assertEqual(out.metadata["rlm_status"], "RLM_EBACKEND")


if __name__ == "__main__":
    main()
