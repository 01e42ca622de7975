#!/usr/bin/python3
"""test_interpreter.py - rlm.Interpreter on the local backend: every method, the Result, the
keyword options and how they reach the config, tools and the in-process llm, threads."""
import json
import os
import threading
import time
import unittest
import uuid

from rlmtest import main, rlm, scratch, volume_dir, wait_for


class Lifecycle(unittest.TestCase):
    def test_with_statement_starts_and_cleans_up(self):
        with rlm.LocalInterpreter() as interp:
            self.assertTrue(interp.started)
            pid = interp.execute("import os; os.getpid()").value
            self.assertTrue(interp.status()["running"])
        self.assertFalse(interp.started)
        # The driver process is gone once the with-block is left.
        wait_for(lambda: not os.path.exists("/proc/%s" % pid), 30, "the sandbox to exit")

    def test_explicit_start_and_shutdown_are_idempotent(self):
        interp = rlm.LocalInterpreter()
        self.assertFalse(interp.started)
        self.assertIs(interp.start(), interp)
        first = interp.status()["driver"]["pid"]
        interp.start()
        self.assertEqual(interp.status()["driver"]["pid"], first)
        interp.shutdown()
        interp.shutdown()
        self.assertEqual(interp.status()["started"], False)

    def test_execute_starts_lazily(self):
        interp = rlm.LocalInterpreter()
        self.addCleanup(interp.shutdown)
        self.assertEqual(interp.execute("2 + 2").value, "4")
        self.assertTrue(interp.started)

    def test_use_after_shutdown_raises_closed_until_started_again(self):
        interp = rlm.LocalInterpreter()
        interp.execute("x = 1")
        interp.shutdown()
        with self.assertRaises(rlm.ClosedError):
            interp.execute("x")
        with self.assertRaises(rlm.ClosedError):
            interp.download("anything")
        interp.start()
        self.addCleanup(interp.shutdown)
        self.assertEqual(interp.execute("'x' in globals()").value, "False")

    def test_generic_interpreter_takes_the_backend_by_name(self):
        with rlm.Interpreter("local") as interp:
            self.assertEqual(interp.backend, "local")
            self.assertEqual(interp.status()["backend"], "local")
        with self.assertRaises(TypeError):
            rlm.LocalInterpreter(backend="modal")

    def test_library_path_names_the_loaded_file(self):
        path = rlm.library_path()
        self.assertTrue(os.path.exists(path), path)
        self.assertIn("librlm.so", os.path.basename(path))
        if os.environ.get("RLM_LIBRARY"):
            self.assertTrue(os.path.samefile(path, os.environ["RLM_LIBRARY"]))
        self.assertEqual(rlm.library_version(), "0.1.0")
        self.assertIn("local", [b["name"] for b in rlm.backends()])


class Results(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.interp = rlm.LocalInterpreter()
        cls.interp.start()

    @classmethod
    def tearDownClass(cls):
        cls.interp.shutdown()

    def test_submit_fields_are_attributes_and_a_mapping(self):
        r = self.interp.execute("print('working')\nSUBMIT(answer=42, notes=['a', 'b'])")
        self.assertEqual(r.answer, 42)
        self.assertEqual(r.notes, ["a", "b"])
        self.assertEqual(r.submit, {"answer": 42, "notes": ["a", "b"]})
        self.assertTrue(r.submitted)
        self.assertTrue(r.ok)
        self.assertEqual(r.stdout, "working\n")
        self.assertEqual(r.fields, ["answer", "notes"])
        self.assertIn("answer", dir(r))

    def test_own_attributes_win_over_submit_fields(self):
        r = self.interp.execute("print('real')\nSUBMIT(stdout='field', error='e', value=1)")
        self.assertEqual(r.stdout, "real\n")
        self.assertIsNone(r.error)
        self.assertIsNone(r.value)
        self.assertEqual(r.submit["stdout"], "field")
        self.assertEqual(r.submit["error"], "e")

    def test_missing_field_lists_the_fields_there_are(self):
        r = self.interp.execute("SUBMIT(answer=1, confidence=0.5)")
        with self.assertRaises(AttributeError) as cm:
            r.answr
        self.assertIn("'answr'", str(cm.exception))
        self.assertIn("answer, confidence", str(cm.exception))
        r = self.interp.execute("x = 1")
        with self.assertRaises(AttributeError) as cm:
            r.answer
        self.assertIn("did not call SUBMIT", str(cm.exception))
        self.assertFalse(r.submitted)
        self.assertIsNone(r.submit)

    def test_user_error_is_a_result_not_an_exception(self):
        r = self.interp.execute("def f():\n    return 1 / 0\nf()")
        self.assertFalse(r.ok)
        self.assertEqual(r.error.type, "ZeroDivisionError")
        self.assertEqual(r.error.message, "division by zero")
        self.assertEqual(r.error.line, "ZeroDivisionError: division by zero")
        self.assertIn("in f", r.error.traceback)
        self.assertEqual(str(r.error), "ZeroDivisionError: division by zero")
        r = self.interp.execute("if :")
        self.assertEqual(r.error.type, "SyntaxError")

    def test_value_stderr_duration_and_counts(self):
        r = self.interp.execute("import sys\nsys.stderr.write('warn\\n')\n[1, 2]")
        self.assertEqual(r.value, "[1, 2]")
        self.assertEqual(r.stderr, "warn\n")
        self.assertGreater(r.duration_ms, 0)
        self.assertFalse(r.timed_out)
        self.assertFalse(r.state_lost)
        self.assertEqual(r.stdout_chars, 0)
        self.assertEqual(r.stderr_chars, 5)

    def test_nul_and_unicode_survive(self):
        r = self.interp.execute("print('a\\x00b é 😀')")
        self.assertEqual(r.stdout, "a\x00b é 😀\n")

    def test_variables_are_injected(self):
        r = self.interp.execute("SUBMIT(total=sum(nums), who=name, nothing=none)",
                                {"nums": [1, 2, 3], "name": "ada", "none": None})
        self.assertEqual(r.submit, {"total": 6, "who": "ada", "nothing": None})
        # What json cannot encode goes as its str().
        r = self.interp.execute("SUBMIT(v=v)", {"v": {1, 2} and object.__name__})
        self.assertEqual(r.v, "object")
        r = self.interp.execute("1", {"class": 1})
        self.assertEqual(r.error.type, "ValueError")

    def test_state_persists_across_cells(self):
        self.interp.execute("counter = 10")
        self.interp.execute("counter += 5")
        self.assertEqual(self.interp.execute("counter").value, "15")

    def test_buffers_persist_across_cells_and_reset(self):
        self.interp.execute("add_buffer('log', 'one')")
        self.interp.execute("add_buffer('log', 'two')")
        self.interp.execute("gone = 1")
        self.interp.reset()
        r = self.interp.execute("SUBMIT(log=get_buffer('log'), gone='gone' in globals())")
        self.assertEqual(r.log, ["one", "two"])
        self.assertFalse(r.gone)
        self.interp.execute("clear_buffer('log')")

    def test_timeout_is_a_result(self):
        r = self.interp.execute("import time\nx = 'kept'\ntime.sleep(30)", timeout=0.5)
        self.assertTrue(r.timed_out)
        self.assertEqual(r.error.type, "TimeoutError")
        self.assertEqual(self.interp.execute("x").value, "'kept'")

    def test_positional_submit_maps_onto_output_names(self):
        r = self.interp.execute("SUBMIT(1, 'b')", output_names=["first", "second"])
        self.assertEqual(r.submit, {"first": 1, "second": "b"})

    def test_max_output_chars_caps_stdout(self):
        r = self.interp.execute("print('x' * 1000)", max_output_chars=100)
        self.assertTrue(r.truncated)
        self.assertEqual(r.stdout_chars, 1001)
        self.assertLess(len(r.stdout), 200)

    def test_result_outlives_the_interpreter_and_pickles(self):
        import pickle
        with rlm.LocalInterpreter() as other:
            r = other.execute("print('out')\nSUBMIT(answer=[1, 2])")
        self.assertEqual((r.stdout, r.answer), ("out\n", [1, 2]))
        copy = pickle.loads(pickle.dumps(self.interp.execute("1 / 0")))
        self.assertEqual(copy.error.type, "ZeroDivisionError")
        self.assertIsNone(copy.submit)
        copy = pickle.loads(pickle.dumps(r))
        self.assertEqual((copy.stdout, copy.answer, copy.to_dict()), (r.stdout, r.answer,
                                                                      r.to_dict()))

    def test_execute_needs_a_str(self):
        with self.assertRaises(TypeError):
            self.interp.execute(b"1")

    def test_tool_output_has_rllms_fields(self):
        t = self.interp.execute("print('hi')\n1 / 0").tool_output("code")
        self.assertEqual(t.name, "code")
        self.assertEqual(t.error, "ZeroDivisionError: division by zero")
        self.assertEqual(t.stdout, "hi\n")
        self.assertEqual(t.metadata["error_type"], "ZeroDivisionError")
        self.assertEqual(t.to_string(), "hi\n[error] ZeroDivisionError: division by zero")
        t = rlm.tool_output(self.interp.execute("SUBMIT(answer=3)"))
        self.assertEqual(json.loads(t.output), {"answer": 3})
        self.assertIsNone(t.error)


class FilesAndCommands(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.interp = rlm.LocalInterpreter()
        cls.interp.start()

    @classmethod
    def tearDownClass(cls):
        cls.interp.shutdown()

    def test_upload_bytes_and_download_round_trip_binary(self):
        data = bytes(range(256)) * 100
        self.interp.upload(data, "sub/dir/blob.bin")
        self.assertEqual(self.interp.download("sub/dir/blob.bin"), data)
        r = self.interp.execute("len(open('sub/dir/blob.bin', 'rb').read())")
        self.assertEqual(r.value, "25600")

    def test_upload_a_local_file_and_a_directory(self):
        d = scratch(self)
        with open(os.path.join(d, "a.txt"), "w") as f:
            f.write("alpha")
        os.makedirs(os.path.join(d, "tree", "deep"))
        with open(os.path.join(d, "tree", "deep", "b.txt"), "w") as f:
            f.write("beta")
        self.interp.upload(os.path.join(d, "a.txt"), "up/a.txt")
        from pathlib import Path
        self.interp.upload(Path(d) / "tree", "up/tree")
        r = self.interp.execute("SUBMIT(a=open('up/a.txt').read(), "
                                "b=open('up/tree/deep/b.txt').read())")
        self.assertEqual((r.a, r.b), ("alpha", "beta"))
        with self.assertRaises(TypeError):
            self.interp.upload(12, "x")
        with self.assertRaises(FileNotFoundError):
            self.interp.upload(os.path.join(d, "missing"), "x")

    def test_download_of_a_missing_file_raises(self):
        with self.assertRaises(rlm.Error) as cm:
            self.interp.download("no/such/file")
        self.assertIn("no/such/file", str(cm.exception))

    def test_run_command_outside_the_repl(self):
        c = self.interp.run_command(["sh", "-c", "echo out; echo err >&2; exit 3"])
        self.assertEqual((c.exit_code, c.stdout, c.stderr), (3, "out\n", "err\n"))
        self.assertFalse(c.ok)
        c = self.interp.run_command("printf '%s' $((6 * 7))")
        self.assertEqual(c.stdout, "42")
        self.assertTrue(c.ok)
        c = self.interp.run_command(["sleep", "30"], timeout=0.5)
        self.assertTrue(c.timed_out)

    def test_a_local_file_executed(self):
        d = scratch(self)
        path = os.path.join(d, "analysis.py")
        with open(path, "w") as f:
            f.write("words = text.split()\nprint(len(words))\nSUBMIT(count=len(words))\n")
        r = self.interp.execute_file(path, {"text": "one two three"})
        self.assertEqual((r.stdout, r.count), ("3\n", 3))
        with open(path) as f:
            r = self.interp.execute(f.read(), {"text": "a b"})
        self.assertEqual(r.count, 2)


class Control(unittest.TestCase):
    def started_cell(self):
        """(interpreter options, code that marks the cell started, the host path it marks)."""
        name = "py-ctl-" + uuid.uuid4().hex[:8]
        code = "import os, time\nopen(os.path.join(VOLUME, 'started'), 'w').close()\n"
        return {"volume_name": name}, code, os.path.join(volume_dir(name), "started")

    def test_interrupt_from_another_thread_stops_the_cell(self):
        opts, code, flag = self.started_cell()
        with rlm.LocalInterpreter(**opts) as interp:
            t = threading.Thread(target=lambda: (
                wait_for(lambda: os.path.exists(flag), 60, "the cell to start"),
                interp.interrupt()))
            t.start()
            r = interp.execute(code + "while True:\n    time.sleep(0.05)", timeout=120)
            t.join()
            self.assertEqual(r.error.type, "KeyboardInterrupt")
            self.assertEqual(interp.execute("1 + 1").value, "2")

    def test_cancel_from_another_thread_ends_the_call(self):
        opts, code, flag = self.started_cell()
        interp = rlm.LocalInterpreter(**opts)
        self.addCleanup(interp.shutdown)
        interp.start()
        t = threading.Thread(target=lambda: (
            wait_for(lambda: os.path.exists(flag), 60, "the cell to start"), interp.cancel()))
        t.start()
        t0 = time.monotonic()
        with self.assertRaises(rlm.CancelledError):
            interp.execute(code + "time.sleep(600)", timeout=900)
        t.join()
        self.assertLess(time.monotonic() - t0, 300)
        with self.assertRaises(rlm.CancelledError):
            interp.execute("1")

    def test_status_says_what_runs(self):
        with rlm.LocalInterpreter() as interp:
            s = interp.status()
            self.assertEqual(s["backend"], "local")
            self.assertIn("interrupt", s["capabilities"])
            self.assertIn("python_version", s["driver"])
            self.assertTrue(s["library"].endswith(os.path.basename(rlm.library_path())))


class Options(unittest.TestCase):
    def cfg(self, interp, key):
        return interp._cfg.get(key)

    def test_unknown_keyword_is_a_type_error_naming_the_nearest(self):
        with self.assertRaises(TypeError) as cm:
            rlm.LocalInterpreter(memory_mbb=100)
        self.assertIn("'memory_mbb'", str(cm.exception))
        self.assertIn("did you mean 'memory_mb'", str(cm.exception))
        with self.assertRaises(TypeError) as cm:
            rlm.DaytonaInterpreter(repo_rul="x")
        self.assertIn("did you mean 'repo_url'", str(cm.exception))

    def test_backend_options_limits_and_aliases_reach_the_config(self):
        interp = rlm.LocalInterpreter(memory_mb=1024, max_output_chars=500, timeout=42)
        self.assertEqual(self.cfg(interp, "backends.local.memory_mb"), 1024)
        self.assertEqual(self.cfg(interp, "limits.max_output_chars"), 500)
        # timeout: the per-cell timeout too (local has no sandbox lifetime option).
        self.assertEqual(self.cfg(interp, "limits.execute_timeout_s"), 42)
        d = rlm.DaytonaInterpreter(timeout=600, volume_name="mem", context_paths=["a", "b"])
        self.assertEqual(self.cfg(d, "backends.daytona.timeout_s"), 600)
        self.assertEqual(self.cfg(d, "limits.execute_timeout_s"), 600)
        self.assertEqual(self.cfg(d, "backends.daytona.context_paths"), ["a", "b"])
        d = rlm.DaytonaInterpreter(timeout=600, execute_timeout=30)
        self.assertEqual(self.cfg(d, "limits.execute_timeout_s"), 30)
        m = rlm.ModalInterpreter(timeout=900, volume_name=None)
        self.assertEqual(self.cfg(m, "backends.modal.timeout_s"), 900)
        self.assertIsNone(self.cfg(m, "backends.modal.volume_name"))

    def test_timeout_applies_to_cells(self):
        with rlm.LocalInterpreter(execute_timeout=0.5) as interp:
            r = interp.execute("import time; time.sleep(30)")
            self.assertTrue(r.timed_out)

    def test_config_files_and_environment_still_apply(self):
        d = scratch(self)
        path = os.path.join(d, "rlm.json")
        with open(path, "w") as f:
            json.dump({"limits": {"max_output_chars": 321}}, f)
        old = dict(os.environ)
        self.addCleanup(lambda: (os.environ.clear(), os.environ.update(old)))
        os.environ["RLM_CONFIG"] = path
        os.environ["RLM_EXECUTE_TIMEOUT_S"] = "17"
        interp = rlm.LocalInterpreter()
        self.assertEqual(self.cfg(interp, "limits.max_output_chars"), 321)
        self.assertEqual(self.cfg(interp, "limits.execute_timeout_s"), 17)
        # Keywords go over both.
        interp = rlm.LocalInterpreter(max_output_chars=99, execute_timeout=3)
        self.assertEqual(self.cfg(interp, "limits.max_output_chars"), 99)
        self.assertEqual(self.cfg(interp, "limits.execute_timeout_s"), 3)
        # config= too: a dict, or a file.
        interp = rlm.LocalInterpreter(config={"limits": {"max_iterations": 3}})
        self.assertEqual(self.cfg(interp, "limits.max_iterations"), 3)
        interp = rlm.LocalInterpreter(config=path)
        self.assertEqual(self.cfg(interp, "limits.max_output_chars"), 321)

    def test_local_volume_option_is_visible_in_the_sandbox(self):
        name = "py-" + uuid.uuid4().hex[:8]
        with rlm.LocalInterpreter(volume_name=name) as a:
            a.execute("open(VOLUME + '/note', 'w').write('kept')")
        with rlm.LocalInterpreter(volume_name=name) as b:
            self.assertEqual(b.execute("open(VOLUME + '/note').read()").value, "'kept'")


class ToolsAndLLM(unittest.TestCase):
    def test_tools_are_callable_from_sandbox_code(self):
        seen = []

        def search(query, limit=3):
            """Search the notes."""
            seen.append((query, limit))
            return [{"hit": query, "n": i} for i in range(limit)]
        with rlm.LocalInterpreter(tools={"search": search}) as interp:
            r = interp.execute("hits = search('cats', limit=2)\nSUBMIT(n=len(hits), "
                               "first=hits[0]['hit'])")
            self.assertEqual((r.n, r.first), (2, "cats"))
            self.assertEqual(seen, [("cats", 2)])
            self.assertEqual(r.host_calls, 1)

    def test_tool_exception_is_a_runtime_error_in_the_sandbox(self):
        def broken():
            raise KeyError("no such table")
        with rlm.LocalInterpreter(tools={"broken": broken}) as interp:
            r = interp.execute("try:\n    broken()\nexcept RuntimeError as e:\n"
                               "    SUBMIT(msg=str(e))")
            self.assertEqual(r.msg, "KeyError: 'no such table'")
            r = interp.execute("broken()")
            self.assertEqual(r.error.type, "RuntimeError")

    def test_tool_result_json_cannot_encode_goes_as_str(self):
        with rlm.LocalInterpreter(tools={"now": lambda: object}) as interp:
            self.assertEqual(interp.execute("now()").value, "\"<class 'object'>\"")

    def test_tools_added_and_removed_between_cells(self):
        with rlm.LocalInterpreter() as interp:
            interp.tools["double"] = lambda x: 2 * x
            self.assertEqual(interp.execute("double(21)").value, "42")
            del interp.tools["double"]
            self.assertEqual(interp.execute("double(1)").error.type, "NameError")

    def test_bad_tool_names_are_refused(self):
        for name in ("class", "SUBMIT", "llm_query", "not valid", "__x__"):
            with self.assertRaises(rlm.InvalidArgumentError):
                rlm.LocalInterpreter(tools={name: len})
        with self.assertRaises(TypeError):
            rlm.LocalInterpreter(tools={"x": 3})

    def test_llm_callable_answers_llm_query_and_batched(self):
        prompts = []

        def llm(prompt):
            prompts.append(prompt)
            return prompt.upper()
        with rlm.LocalInterpreter(llm=llm) as interp:
            r = interp.execute("SUBMIT(one=llm_query('hi'), many=llm_query_batched(['a', 'b']))")
            self.assertEqual((r.one, r.many), ("HI", ["A", "B"]))
            self.assertEqual(sorted(prompts), ["a", "b", "hi"])

    def test_llm_gets_the_model_when_it_takes_one_and_lists_count(self):
        def llm(prompt, model=None):
            return ["%s via %s" % (prompt, model), "ignored"]  # dspy.LM returns a list
        with rlm.LocalInterpreter(sub_lm=llm) as interp:
            self.assertEqual(interp.execute("llm_query('q', model='small')").value,
                             "'q via small'")

    def test_llm_budget_and_failures(self):
        def llm(prompt):
            if prompt == "bad":
                raise ValueError("refused")
            return "ok"
        with rlm.LocalInterpreter(llm=llm, max_llm_calls=3) as interp:
            r = interp.execute("SUBMIT(r=llm_query_batched(['bad', 'x']))")
            self.assertEqual(r.r, ["[ERROR] ValueError: refused", "ok"])
            r = interp.execute("llm_query('bad')")
            self.assertEqual(r.error.line, "RuntimeError: ValueError: refused")
            r = interp.execute("llm_query('x')")
            self.assertIn("budget exhausted", r.error.message)

    def test_without_llm_llm_query_says_so(self):
        with rlm.LocalInterpreter() as interp:
            r = interp.execute("llm_query('x')")
            self.assertEqual(r.error.type, "RuntimeError")
            self.assertIn("llm=", r.error.message)

    def test_coroutine_tool_outside_aio_is_refused_clearly(self):
        async def later():
            return 1
        with rlm.LocalInterpreter(tools={"later": later}) as interp:
            r = interp.execute("later()")
            self.assertIn("rlm.aio", r.error.message)


class Threads(unittest.TestCase):
    def test_32_threads_run_32_sandboxes_at_once(self):
        """Each cell waits until all 32 have written their mark in a shared volume: it can
        only finish if the 32 execute() calls run at the same time (the GIL released)."""
        n = 32
        name = "py-barrier-" + uuid.uuid4().hex[:8]
        code = ("import os, time\nopen(os.path.join(VOLUME, str(me)), 'w').close()\n"
                "deadline = time.time() + 240\n"
                "while len(os.listdir(VOLUME)) < %d and time.time() < deadline:\n"
                "    time.sleep(0.05)\nSUBMIT(seen=len(os.listdir(VOLUME)))" % n)
        results, errors = [None] * n, []

        def worker(i):
            try:
                with rlm.LocalInterpreter(volume_name=name, memory_mb=512) as interp:
                    results[i] = interp.execute(code, {"me": i}, timeout=300)
            except Exception as e:  # reported below
                errors.append(e)
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for r in results:
            self.assertIsNone(r.error, r.error)
            self.assertEqual(r.seen, n)
        print("32 sandboxes, all waiting on each other: %.1f s" % (time.monotonic() - t0))

    def test_one_interpreter_shared_by_threads_serialises_calls(self):
        with rlm.LocalInterpreter() as interp:
            interp.execute("total = 0")

            def add():
                for _ in range(10):
                    interp.execute("total += 1")
            threads = [threading.Thread(target=add) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(interp.execute("total").value, "40")


if __name__ == "__main__":
    main()
