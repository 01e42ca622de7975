#!/usr/bin/python3
"""test_run.py - rlm.run (the RLM loop) with an in-process llm and with the replay plugin,
tools in a run, the pool (rlm.Pool) and rlm.eval on the local backend."""
import json
import os
import re
import threading
import unittest
from pathlib import Path

from rlmtest import main, rlm, scratch, wait_for


def policy(turns):
    """An llm callable that answers the model's turns from a list and llm_query prompts by
    upper-casing them; it records what it was asked."""
    asked = {"turns": [], "prompts": []}
    answers = list(turns)

    def llm(request, model=None):
        if isinstance(request, str):
            asked["prompts"].append((request, model))
            return request.upper()
        asked["turns"].append((request, model))
        return answers.pop(0) if answers else "```repl\nSUBMIT(answer='out of script')\n```"
    return llm, asked


class Run(unittest.TestCase):
    def test_callable_llm_drives_the_loop_and_answers_sub_calls(self):
        llm, asked = policy([
            "Let me look.\n```repl\nprint(len(context))\n```",
            "```repl\nword = llm_query('shout ' + context[:5])\n"
            "SUBMIT(answer=word, length=len(context))\n```"])
        r = rlm.run("Shout the first word.", context="hello world", llm=llm, model="pol-1")
        self.assertEqual(json.loads(r.answer), r.submit)  # several fields: the answer is all
        self.assertEqual(r.submit, {"answer": "SHOUT HELLO", "length": 11})
        self.assertEqual(r.length, 11)
        self.assertEqual(r.iterations, 2)
        self.assertFalse(r.fallback)
        self.assertEqual(r.usage["llm_calls"], 3)
        self.assertEqual(r.usage["calls_by_depth"], [2, 1])
        first, model = asked["turns"][0]
        self.assertEqual(model, "pol-1")
        self.assertEqual([m["role"] for m in first], ["system", "user"])
        self.assertIn("Shout the first word.", first[1]["content"])
        second, _ = asked["turns"][1]
        self.assertIn("11", second[-1]["content"])  # the model saw what its code printed
        self.assertEqual(asked["prompts"], [("shout hello", "pol-1")])  # llm.model for all
        llm, asked = policy(["```repl\nSUBMIT(answer=llm_query('x'))\n```"])
        rlm.run("q", llm=llm, model="big", sub_model="small")
        self.assertEqual((asked["turns"][0][1], asked["prompts"]), ("big", [("x", "small")]))
        with self.assertRaises(AttributeError) as cm:
            r.answr
        self.assertIn("answer, length", str(cm.exception))

    def test_replay_provider_and_trajectory(self):
        d = scratch(self)
        script = [{"response": "```repl\nSUBMIT(answer=str(6 * 7))\n```"}]
        r = rlm.run("What is 6 * 7?", llm="replay", config={"llm": {"script": script}},
                    trajectory=os.path.join(d, "run.jsonl"))
        self.assertEqual(r.answer, "42")
        self.assertEqual(r.trajectory, os.path.join(d, "run.jsonl"))
        with open(r.trajectory) as f:
            lines = [json.loads(x) for x in f]
        self.assertEqual(lines[0]["type"], "metadata")
        self.assertTrue(os.path.exists(r.summary))

    def test_context_from_a_file_and_bytes(self):
        d = scratch(self)
        path = Path(d) / "ctx.txt"
        path.write_text("a\nb\nc\n")
        llm, _ = policy(["```repl\nSUBMIT(answer=str(context.count('\\n')))\n```"] * 2)
        self.assertEqual(rlm.run("count lines", path, llm=llm).answer, "3")
        self.assertEqual(rlm.run("count lines", b"x\ny\n", llm=llm).answer, "2")
        with self.assertRaises(TypeError):
            rlm.run("q", {"not": "text"}, llm=llm)

    def test_tools_in_a_run_are_announced_and_called(self):
        seen = []

        def lookup(key):
            """Look a key up in the host's table."""
            seen.append(key)
            return {"color": "blue"}.get(key)
        llm, asked = policy(["```repl\nSUBMIT(answer=lookup('color'))\n```"])
        r = rlm.run("What color?", llm=llm, tools={"lookup": lookup})
        self.assertEqual(r.answer, "blue")
        self.assertEqual(seen, ["color"])
        system = asked["turns"][0][0][0]["content"]
        self.assertIn("`lookup`: lookup(key): Look a key up in the host's table.", system)

    def test_run_in_an_interpreter_keeps_its_state_and_tools(self):
        with rlm.LocalInterpreter(tools={"twice": lambda x: 2 * x},
                                  llm=lambda p: "sub") as interp:
            interp.execute("base = 20")
            llm, _ = policy(["```repl\nSUBMIT(answer=str(twice(base) + 2))\n```"])
            r = rlm.run("add up", llm=llm, interpreter=interp)
            self.assertEqual(r.answer, "42")
            # The interpreter's own llm answers llm_query again after the run.
            self.assertEqual(interp.execute("llm_query('x')").value, "'sub'")
        with self.assertRaises(TypeError):
            rlm.run("q", llm=llm, interpreter=interp, backend="local")

    def test_llm_failure_raises_with_the_python_exception_as_cause(self):
        def llm(request):
            raise ConnectionError("policy server down")
        with self.assertRaises(rlm.BackendError) as cm:
            rlm.run("q", llm=llm)
        self.assertIn("policy server down", str(cm.exception))
        self.assertIsInstance(cm.exception.__cause__, ConnectionError)

        def auth(request):
            raise rlm.AuthError("no key", -8, 401)
        with self.assertRaises(rlm.AuthError):
            rlm.run("q", llm=auth)

    def test_on_iteration_and_limits(self):
        its = []
        llm, _ = policy(["no code here", "still none", "none"])
        r = rlm.run("q", llm=llm, max_iterations=2, on_iteration=its.append)
        self.assertTrue(r.fallback)
        self.assertIsNone(r.submit)
        self.assertEqual([i["iteration"] for i in its if not i["fallback"]], [1, 2])
        self.assertEqual(its[0]["max_iterations"], 2)

    def test_cancel_flag_stops_a_run_from_another_thread(self):
        flag = rlm.CancelFlag()
        started = threading.Event()

        def llm(request):
            started.set()
            return "```repl\nimport time\ntime.sleep(120)\n```"
        t = threading.Thread(target=lambda: (started.wait(60), flag.cancel()))
        t.start()
        with self.assertRaises(rlm.CancelledError):
            rlm.run("q", llm=llm, cancel=flag)
        t.join()
        self.assertTrue(flag.cancelled)

    def test_unknown_keyword(self):
        with self.assertRaises(TypeError) as cm:
            rlm.run("q", llm="replay", max_iteration=3)
        self.assertIn("did you mean 'max_iterations'", str(cm.exception))


class PoolTests(unittest.TestCase):
    def test_pool_leases_fresh_sandboxes_and_caps_them(self):
        with rlm.Pool("local", max_live=2, warm=1) as pool:
            wait_for(lambda: pool.stats()["idle"] >= 1, 60, "a warm sandbox")
            with pool.interpreter() as a:
                a.execute("secret = 1")
                self.assertEqual(pool.stats()["busy"], 1)
            with pool.interpreter(timeout=60) as b:
                self.assertEqual(b.execute("'secret' in globals()").value, "False")
            results, errors = [], []

            def task(i):
                try:
                    with pool.interpreter(timeout=120) as interp:
                        results.append(interp.execute("SUBMIT(i=i)", {"i": i}).i)
                except Exception as e:
                    errors.append(e)
            threads = [threading.Thread(target=task, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertEqual(sorted(results), list(range(8)))
            s = pool.stats()
            self.assertLessEqual(s["peak_live"], 2)
            self.assertEqual(s["backend"], "local")
            self.assertTrue(pool.run_id)

    def test_reuse_keeps_the_sandbox_with_a_fresh_namespace(self):
        with rlm.Pool("local", max_live=1) as pool:
            with pool.interpreter(reuse=True, tools={"f": lambda: 1}) as a:
                a.execute("import os\nopen('kept.txt', 'w').write('x')\nv = 1")
                self.assertEqual(a.execute("f()").value, "1")
            with pool.interpreter() as b:
                r = b.execute("SUBMIT(file=os.path.exists('kept.txt') if 'os' in globals() "
                              "else __import__('os').path.exists('kept.txt'), "
                              "v='v' in globals(), f='f' in globals())")
                self.assertEqual(r.submit, {"file": True, "v": False, "f": False})

    def test_given_back_interpreter_is_closed_and_pool_close_is_final(self):
        pool = rlm.Pool("local", max_live=1)
        interp = pool.acquire(60)
        interp.shutdown()
        with self.assertRaises(rlm.ClosedError):
            interp.execute("1")
        leased = pool.acquire(60)
        pool.close()  # gives back what is still leased
        with self.assertRaises(rlm.ClosedError):
            leased.execute("1")
        with self.assertRaises(rlm.ClosedError):
            pool.acquire(1)

    def test_cancel_wakes_a_waiting_acquire(self):
        with rlm.Pool("local", max_live=1) as pool:
            held = pool.acquire(60)
            errors = []

            def waiter():
                try:
                    pool.acquire(300)
                except rlm.Error as e:
                    errors.append(e)
            t = threading.Thread(target=waiter)
            t.start()
            wait_for(lambda: pool.stats()["waiting"] == 1, 60, "the acquire to wait")
            pool.cancel()
            t.join(120)
            self.assertEqual([type(e) for e in errors], [rlm.CancelledError])
            held.shutdown()


class Eval(unittest.TestCase):
    def test_eval_runs_tasks_scores_and_resumes(self):
        d = scratch(self)
        tasks = [{"id": "t%d" % i, "query": "What is %d + %d?" % (i, i), "expected": str(2 * i)}
                 for i in range(4)]
        script = [{"match": "%d + %d" % (i, i),
                   "response": "```repl\nSUBMIT(answer='%d')\n```" % (2 * i if i else 5)}
                  for i in range(4)]
        progress = []
        s = rlm.eval(tasks, out=d, llm="replay", concurrency=2,
                     config={"llm": {"script": script, "match": "key"}},
                     on_progress=progress.append)
        self.assertEqual((s.total, s.ok, s.infra_error, s.missing), (4, 4, 0, 0))
        self.assertAlmostEqual(s.mean_score, 0.75)
        self.assertTrue(s.run_id)
        rows = {r["id"]: r for r in s.results()}
        self.assertEqual(rows["t1"]["answer"], "2")
        self.assertEqual(rows["t0"]["score"], 0)
        self.assertEqual(len(progress), 4)
        self.assertEqual(progress[-1]["done"], 4)
        again = rlm.eval(os.path.join(d, "tasks.jsonl"), out=d, llm="replay",
                         config={"llm": {"script": script, "match": "key"}})
        self.assertEqual((again.kept, again.finished), (4, 0))
        report = rlm.eval_report(d, "json")
        self.assertEqual(report["tasks"], 4)

    def test_eval_with_an_llm_callable(self):
        d = scratch(self)
        tasks = [{"id": "t%d" % i, "query": "What is %d + %d?" % (i, i), "expected": str(2 * i)}
                 for i in range(6)]
        lock = threading.Lock()
        asked = []

        def model(messages):
            text = json.dumps(messages)
            m = re.search(r"What is (\d+) \+ (\d+)\?", text)
            with lock:
                asked.append(m.group(0) if m else None)
            return "```repl\nSUBMIT(answer='%d')\n```" % (int(m.group(1)) * 2)

        s = rlm.eval(tasks, out=d, llm=model, concurrency=3)
        self.assertEqual((s.total, s.ok, s.infra_error, s.missing), (6, 6, 0, 0))
        self.assertEqual(s.mean_score, 1.0)
        self.assertEqual(sorted(a for a in asked if a),
                         sorted("What is %d + %d?" % (i, i) for i in range(6)))

        def broken(messages):
            raise RuntimeError("the model is down")

        s = rlm.eval(tasks[:2], out=os.path.join(d, "broken"), llm=broken, retries=0)
        self.assertEqual(s.ok, 0)
        rows = list(s.results())
        self.assertTrue(all("the model is down" in (r.get("error") or "") for r in rows), rows)

    def test_score_and_bad_task_files(self):
        self.assertEqual(rlm.eval_score("exact", " Paris ", "paris"), 1.0)
        self.assertEqual(rlm.eval_score("contains", "it is 42.", ["41", "42"]), 1.0)
        d = scratch(self)
        bad = os.path.join(d, "bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"id": "a", "query": "q"}\nnot json\n')
        with self.assertRaises(rlm.InvalidArgumentError) as cm:
            rlm.eval(bad, out=os.path.join(d, "out"), llm="replay")
        self.assertIn("2", str(cm.exception))


if __name__ == "__main__":
    main()
