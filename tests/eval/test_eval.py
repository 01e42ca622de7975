#!/usr/bin/env python3
"""test_eval.py - `rlm eval` end to end, driving the built `rlm` binary: runs on the local
backend with the replay LLM (or the OpenAI fake), rows and their fields, bad task lines, resume,
SIGKILL and SIGINT mid-run, retries and failure classes, exit statuses, shards, the report (its
HTML checked in headless chromium when installed) and the generators.

Waits are on conditions (rows in the results file, processes gone) with generous deadlines,
never fixed sleeps used as the oracle.

usage: test_eval.py PATH/TO/rlm [unittest args]
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SOLVER = os.path.join(ROOT, "examples", "eval_solver.jsonl")
FAKES = os.path.join(ROOT, "tests", "fakes")
RLM = None
DEADLINE = 120  # seconds: far beyond what any step takes, even under load
ROW_FIELDS = ["id", "status", "answer", "expected", "score", "iterations", "llm_calls",
              "tokens_in", "tokens_out", "duration_s", "attempt", "error", "trajectory"]

# The model writes code that echoes the context back after a pause: slow enough to stop a run
# in the middle, and its answer is checkable.
SLOW_ECHO = [{"response": "```repl\nimport time\ntime.sleep(0.4)\nSUBMIT(answer=context)\n```"}]
ECHO = [{"response": "```repl\nSUBMIT(answer=context)\n```"}]


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def wait_for(cond, what, deadline=DEADLINE):
    end = time.time() + deadline
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class EvalCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rlm-eval-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.chmod(self.dir, 0o755)  # a sandbox with a uid of its own reaches its work dir
        self.work = os.path.join(self.dir, "work")  # the local sandboxes' work dirs
        os.mkdir(self.work)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write_tasks(self, tasks, name="tasks.jsonl"):
        with open(self.path(name), "w") as f:
            for t in tasks:
                f.write((t if isinstance(t, str) else json.dumps(t)) + "\n")
        return self.path(name)

    def script(self, entries, name="script.json"):
        with open(self.path(name), "w") as f:
            json.dump(entries, f)
        return self.path(name)

    def echo_tasks(self, n, prefix="t"):
        return self.write_tasks([{"id": "%s%02d" % (prefix, i), "query": "Echo the context.",
                                  "context": str(i * 7), "expected": str(i * 7)}
                                 for i in range(n)])

    def eval_args(self, tasks, out, script=None, extra=()):
        args = [RLM, "eval", tasks, "--out", out, "--backend", "local",
                "--set", "backends.local.workdir_root=" + json.dumps(self.work)]
        if script:
            args += ["--script", script]
        return args + list(extra)

    def run_eval(self, tasks, out, script=None, extra=(), env=None):
        return subprocess.run(self.eval_args(tasks, out, script, extra), capture_output=True,
                              text=True, timeout=DEADLINE, env=env, cwd=self.dir)

    def rows(self, out, name="results.jsonl"):
        with open(os.path.join(out, name)) as f:
            return [json.loads(line) for line in f if line.strip()]

    def last_rows(self, out, name="results.jsonl"):
        return {r["id"]: r for r in self.rows(out, name)}

    def sandbox_processes(self):
        """Processes whose working directory is under this test's sandbox work root."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cwd = os.readlink("/proc/%s/cwd" % pid)
            except OSError:
                continue
            if cwd.startswith(self.work + "/"):
                found.append(int(pid))
        return found


class RunTest(EvalCase):
    def test_generated_tasks_are_solved_scored_and_written_with_exactly_the_fields(self):
        tasks = self.path("tasks.jsonl")
        with open(tasks, "w") as f:
            for family in ("sniah", "count"):
                subprocess.run([RLM, "eval", "gen", family, "--n", "3", "--length", "3000",
                                "--seed", "4"], stdout=f, check=True, timeout=DEADLINE)
        out = self.path("out")
        p = self.run_eval(tasks, out, SOLVER, ["--set", "llm.match=key", "--concurrency", "3"])
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = self.rows(out)
        self.assertEqual(len(rows), 6)
        for r in rows:
            self.assertEqual(list(r.keys()), ROW_FIELDS)
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(r["score"], 1, r)
            self.assertEqual(r["attempt"], 1)
            self.assertEqual(r["iterations"], 2)
            self.assertGreater(r["tokens_in"], 0)
            self.assertTrue(os.path.isfile(os.path.join(out, r["trajectory"])), r)
        self.assertIn("6 tasks: ok 6", p.stdout)
        self.assertIn("mean 1.000", p.stdout)
        wait_for(lambda: not self.sandbox_processes(), "the sandboxes to go", 10)

    def test_context_files_resolve_against_the_task_file(self):
        gen = subprocess.run([RLM, "eval", "gen", "count", "--n", "3", "--length", "2000",
                              "--context-dir", "ctx"], capture_output=True, text=True,
                             cwd=self.dir, check=True, timeout=DEADLINE)
        tasks = self.write_tasks(gen.stdout.splitlines())
        self.assertIn('"context_file":"ctx/count-0-0000.txt"', gen.stdout)
        out = self.path("out")
        # run from elsewhere: the paths are relative to the task file, not the cwd
        p = subprocess.run(self.eval_args(tasks, out, SOLVER, ["--set", "llm.match=key"]),
                           capture_output=True, text=True, timeout=DEADLINE, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["score"] for r in self.rows(out)], [1, 1, 1])

    def test_limit_runs_the_first_tasks_only(self):
        out = self.path("out")
        p = self.run_eval(self.echo_tasks(5), out, self.script(ECHO), ["--limit", "2"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(self.last_rows(out)), ["t00", "t01"])

    def test_dry_run_checks_and_writes_nothing(self):
        out = self.path("out")
        p = self.run_eval(self.echo_tasks(4), out, self.script(ECHO), ["--dry-run"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("4 to run", p.stdout)
        self.assertFalse(os.path.exists(out))

    def test_task_options_get_their_own_config_and_sandbox(self):
        tasks = self.write_tasks([
            {"id": "env", "query": "q", "expected": "hello",
             "options": {"backends.local.env": {"GREETING": "hello"}}},
            {"id": "plain", "query": "q", "expected": "none",
             "options": {"limits": {"max_iterations": 3}}}])
        script = self.script([{"response": "```repl\nimport os\n"
                                           "SUBMIT(answer=os.environ.get('GREETING', 'none'))\n```"}])
        out = self.path("out")
        p = self.run_eval(tasks, out, script)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = self.last_rows(out)
        self.assertEqual(rows["env"]["answer"], "hello")
        self.assertEqual(rows["plain"]["answer"], "none")

    def test_cmd_scorer_gets_the_task_and_the_answer(self):
        scorer = ("cmd:python3 -c \"import json,sys; d=json.load(sys.stdin); "
                  "print(0.5 if d['answer'] == d['task']['context'] == d['expected'] else 0)\"")
        out = self.path("out")
        p = self.run_eval(self.echo_tasks(2), out, self.script(ECHO), ["--scorer", scorer])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["score"] for r in self.rows(out)], [0.5, 0.5])

    def test_scorer_failure_is_still_a_row(self):
        out = self.path("out")
        p = self.run_eval(self.echo_tasks(1), out, self.script(ECHO), ["--scorer", "cmd:echo x"])
        self.assertEqual(p.returncode, 0, p.stderr)
        (row,) = self.rows(out)
        self.assertEqual(row["status"], "ok")
        self.assertIsNone(row["score"])
        self.assertIn("scorer: cmd:echo x printed", row["error"])

    def test_ids_become_distinct_safe_file_names(self):
        ids = ["a/b", "a_b", "../up", "A_B", "ünï cödé"]
        tasks = self.write_tasks([{"id": i, "query": "q", "context": "c"} for i in ids])
        out = self.path("out")
        p = self.run_eval(tasks, out, self.script(ECHO))
        self.assertEqual(p.returncode, 0, p.stderr)
        names = [r["trajectory"] for r in self.rows(out)]
        self.assertEqual(len(set(n.lower() for n in names)), len(ids))
        for n in names:
            self.assertRegex(n, r"^trajectories/[A-Za-z0-9_-][A-Za-z0-9._-]*\.jsonl$")
            self.assertTrue(os.path.isfile(os.path.join(out, n)))


class BadTaskFileTest(EvalCase):
    CASES = [
        ('{"id": "a", "query": "q"}\n{"id": "b", "query": "q", "contxt": "x"}',
         2, 'unknown field "contxt"'),
        ('{"id": "a", "query": "q"}\n\n{"id": "a", "query": "q"}', 3,
         'duplicate id "a" (first on line 1)'),
        ('{"id": 7, "query": "q"}', 1, '"id" must be a string'),
        ('{"id": "a"}', 1, '"query" must be a non-empty string'),
        ('{"id": "a", "query": "q"', 1, "ends before the object is complete"),
        ('[1, 2]', 1, "must be a JSON object"),
        ('{"id": "a", "query": "q", "context_file": "missing.txt"}', 1, "missing.txt"),
        ('{"id": "a", "query": "q", "context": "x", "context_file": "x"}', 1, "not both"),
        ('{"id": "a", "query": "q", "scorer": "fuzzy"}', 1, "unknown scorer"),
        ('{"id": "a", "query": "q", "scorer": "regex", "expected": "("}', 1, "bad pattern"),
        ('{"id": "a", "query": "q", "scorer": "numeric", "expected": "many"}', 1,
         "must be a number"),
        ('{"id": "a", "query": "q", "options": {"limits.max_iteratons": 3}}', 1,
         'did you mean "limits.max_iterations"'),
    ]

    def test_a_bad_line_is_named_and_nothing_runs(self):
        script = self.script(ECHO)
        for text, line, message in self.CASES:
            with self.subTest(message=message):
                tasks = self.write_tasks([text])
                out = self.path("out")
                p = self.run_eval(tasks, out, script)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("tasks.jsonl:%d: " % line, p.stderr)
                self.assertIn(message, p.stderr)
                self.assertFalse(os.path.exists(out))


class ExitStatusTest(EvalCase):
    def test_usage_and_config_errors_exit_2(self):
        tasks = self.echo_tasks(1)
        out = self.path("out")
        for args in (["eval"], ["eval", tasks], ["eval", tasks, "--out", out, "--bogus"],
                     ["eval", tasks, "--out", out, "--shard", "3/3"],
                     ["eval", tasks, "--out", out, "--set", "limits.nope=1"],
                     ["eval", tasks, "--out", out, "--set", "llm.provider=null"],
                     ["eval", tasks, "--out", out, "--script", self.path("no-such.jsonl")],
                     ["eval", "report"], ["eval", "report", self.path("nothing-here")],
                     ["eval", "gen", "haystack", "--n", "1"]):
            with self.subTest(args=args[1:]):
                p = subprocess.run([RLM] + args, capture_output=True, text=True,
                                   timeout=DEADLINE)
                self.assertEqual(p.returncode, 2, p.stderr)
        self.assertFalse(os.path.exists(out))

    def test_no_answer_is_a_task_error_naming_what_the_last_block_raised(self):
        script = self.script([{"response": "```repl\nraise ValueError('bad input')\n```"},
                              {"response": ""}])
        out = self.path("out")
        p = self.run_eval(self.echo_tasks(1), out, script,
                          ["--set", "limits.max_iterations=1"])
        self.assertEqual(p.returncode, 0, p.stderr)  # task_error is a finished task
        (row,) = self.rows(out)
        self.assertEqual(row["status"], "task_error")
        self.assertEqual(row["score"], 0)
        self.assertIn("no answer after 1 iteration", row["error"])
        self.assertIn("ValueError: bad input", row["error"])

    def test_running_out_of_the_task_time_limit_is_a_task_error(self):
        script = self.script([{"response": "```repl\nimport time\ntime.sleep(30)\n```"}])
        out = self.path("out")
        p = self.run_eval(self.echo_tasks(1), out, script, ["--task-timeout", "1"])
        self.assertEqual(p.returncode, 0, p.stderr)
        (row,) = self.rows(out)
        self.assertEqual(row["status"], "task_error")
        self.assertEqual(row["attempt"], 1)  # not retried
        self.assertIn("time limit (1 s) ran out", row["error"])


class FakeOpenAI:
    """tests/fakes/openai_server.py on a loopback port; faults over its stdin."""

    def __init__(self, case, key=None):
        args = [sys.executable, os.path.join(FAKES, "openai_server.py")]
        if key:
            args += ["--key", key]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        case.addCleanup(self.p.wait, 10)
        case.addCleanup(self.p.stdin.close)
        case.addCleanup(self.p.stdout.close)
        self.port = int(self.p.stdout.readline())

    def control(self, cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def args(self):
        # The fake echoes the last user message: no code, so each attempt is one turn and the
        # last call for an answer (2 calls), whose echo is the answer.
        return ["--llm", "openai", "--model", "fake-model",
                "--set", "llm.base_url=http://127.0.0.1:%d/v1" % self.port,
                "--set", "llm.max_retries=0", "--set", "limits.max_iterations=1"]


class InfraErrorTest(EvalCase):
    def test_infra_errors_are_retried_classified_and_redone_on_resume(self):
        fake = FakeOpenAI(self)
        # t0: attempt 1 and 2 fail; t1: attempt 1 fails, attempt 2 answers.
        fake.control({"fail_next": [500, 500, 500]})
        tasks = self.write_tasks([{"id": "t0", "query": "q"}, {"id": "t1", "query": "q"}])
        out = self.path("out")
        p = self.run_eval(tasks, out, None,
                          fake.args() + ["--concurrency", "1", "--retries", "1"])
        self.assertEqual(p.returncode, 1, p.stderr)
        rows = self.rows(out)
        self.assertEqual([(r["id"], r["status"], r["attempt"]) for r in rows],
                         [("t0", "infra_error", 2), ("t1", "ok", 2)])  # final rows only
        self.assertIn("HTTP 500", rows[0]["error"])
        self.assertIn("RLM_ETRANSIENT", rows[0]["error"])
        self.assertTrue(rows[1]["answer"].startswith("echo: "))
        self.assertTrue(os.path.isfile(os.path.join(out, "trajectories", "t0.jsonl.attempt-1")))
        # resume: only the infra_error task runs again
        p = self.run_eval(tasks, out, None, fake.args() + ["--concurrency", "1"])
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = self.rows(out)
        self.assertEqual([(r["id"], r["status"]) for r in rows],
                         [("t0", "infra_error"), ("t1", "ok"), ("t0", "ok")])
        self.assertIn("1 kept from an earlier run", p.stdout)

    def test_refused_credentials_stop_the_eval_with_exit_3(self):
        fake = FakeOpenAI(self, key="sk-the-right-key-0123456789")
        env = dict(os.environ, OPENAI_API_KEY="sk-a-wrong-key-000000000000")
        out = self.path("out")
        p = self.run_eval(self.echo_tasks(3), out, None, fake.args() + ["--concurrency", "1"],
                          env=env)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("RLM_EAUTH", p.stderr)
        self.assertNotIn("sk-a-wrong-key-000000000000", p.stderr + p.stdout)
        rows = self.rows(out)
        self.assertEqual(len(rows), 1)  # the others never started
        self.assertEqual(rows[0]["status"], "infra_error")

    def test_an_unreachable_llm_stops_the_eval_with_exit_3(self):
        args = ["--llm", "openai", "--model", "m",
                "--set", "llm.base_url=http://127.0.0.1:%d/v1" % free_port(),
                "--set", "llm.max_retries=0", "--retries", "0", "--concurrency", "1"]
        out = self.path("out")
        p = self.run_eval(self.echo_tasks(8), out, None, args)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("the first 3 tasks all failed", p.stderr)
        self.assertEqual(len(self.rows(out)), 3)


class ResumeTest(EvalCase):
    def test_resume_keeps_ok_and_task_error_and_redoes_infra_error_and_missing(self):
        tasks = self.echo_tasks(4)
        out = self.path("out")
        os.mkdir(out)
        seeded = [
            {"id": "t00", "status": "infra_error", "answer": None},
            {"id": "t00", "status": "ok", "answer": "kept"},  # the last row of an id wins
            {"id": "t01", "status": "task_error", "answer": None},
            {"id": "t02", "status": "infra_error", "answer": None},
        ]
        with open(os.path.join(out, "results.jsonl"), "w") as f:
            for r in seeded:
                f.write(json.dumps(r) + "\n")
            f.write('{"id": "t03", "status": "o')  # a torn line someone else left
        p = self.run_eval(tasks, out, self.script(ECHO))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, "results.jsonl")) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[4], '{"id": "t03", "status": "o')  # left alone, then a newline
        new = [json.loads(line) for line in lines[5:]]
        self.assertEqual(sorted(r["id"] for r in new), ["t02", "t03"])
        self.assertTrue(all(r["status"] == "ok" for r in new))
        self.assertIn("2 kept from an earlier run", p.stdout)
        self.assertIn("4 tasks: ok 3, task_error 1", p.stdout)

    def test_resume_after_sigkill_loses_no_finished_task_and_duplicates_none(self):
        tasks = self.echo_tasks(12)
        out = self.path("out")
        results = os.path.join(out, "results.jsonl")
        script = self.script(SLOW_ECHO)
        p = subprocess.Popen(self.eval_args(tasks, out, script, ["--concurrency", "3"]),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(results) and len(self.rows(out)) >= 3, "3 rows")
        p.kill()
        p.wait(DEADLINE)
        with open(results, "rb") as f:
            before = f.read()
        self.assertTrue(before.endswith(b"\n"))
        finished = [json.loads(line) for line in before.splitlines()]  # each line whole
        self.assertTrue(all(r["status"] == "ok" for r in finished))
        # the sandboxes die with the killed process (parent-death signal)
        wait_for(lambda: not self.sandbox_processes(), "the sandboxes to go")
        q = self.run_eval(tasks, out, script, ["--concurrency", "4"])
        self.assertEqual(q.returncode, 0, q.stderr)
        with open(results, "rb") as f:
            after = f.read()
        self.assertTrue(after.startswith(before))  # appended, nothing rewritten
        ids = [r["id"] for r in self.rows(out)]
        self.assertEqual(sorted(ids), ["t%02d" % i for i in range(12)])  # once each
        self.assertIn("%d kept from an earlier run" % len(finished), q.stdout)

    def test_sigint_stops_cleanly_and_a_resume_finishes(self):
        tasks = self.echo_tasks(12)
        out = self.path("out")
        results = os.path.join(out, "results.jsonl")
        script = self.script(SLOW_ECHO)
        p = subprocess.Popen(self.eval_args(tasks, out, script, ["--concurrency", "2"]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: os.path.exists(results) and len(self.rows(out)) >= 2, "2 rows")
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=DEADLINE)
        self.assertEqual(p.returncode, 1, stderr)
        self.assertIn("run the same command again to resume", stderr)
        rows = self.rows(out)
        self.assertLess(len(rows), 12)
        # tasks in flight were cancelled without a row: every row is a finished task
        self.assertTrue(all(r["status"] == "ok" for r in rows), rows)
        wait_for(lambda: not self.sandbox_processes(), "the sandboxes to go", 10)
        q = self.run_eval(tasks, out, script, ["--concurrency", "4"])
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(sorted(r["id"] for r in self.rows(out)),
                         ["t%02d" % i for i in range(12)])


class ShardTest(EvalCase):
    def test_shards_partition_the_tasks_and_merge_to_the_report_of_one_run(self):
        tasks = self.path("tasks.jsonl")
        with open(tasks, "w") as f:
            for family in ("sniah", "count"):
                subprocess.run([RLM, "eval", "gen", family, "--n", "5", "--length", "2000"],
                               stdout=f, check=True, timeout=DEADLINE)
        solver = ["--set", "llm.match=key"]
        sharded, single = self.path("sharded"), self.path("single")
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith("SLURM_") and k != "JOB_COMPLETION_INDEX"}
        runs = [(["--shard", "0/3"], {}),
                ([], {"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_MIN": "7",
                      "SLURM_ARRAY_TASK_COUNT": "3"}),
                (["--shards", "3"], {"JOB_COMPLETION_INDEX": "2"})]
        for args, env in runs:
            p = self.run_eval(tasks, sharded, SOLVER, solver + args, env=dict(clean, **env))
            self.assertEqual(p.returncode, 0, p.stderr)
        p = self.run_eval(tasks, single, SOLVER, solver, env=clean)
        self.assertEqual(p.returncode, 0, p.stderr)
        all_ids = set(self.last_rows(single))
        seen = set()
        for k in range(3):
            ids = set(self.last_rows(sharded, "results.shard-%d-of-3.jsonl" % k))
            self.assertEqual({i for i in ids if fnv1a64(i.encode()) % 3 != k}, set())
            self.assertFalse(ids & seen)
            seen |= ids
        self.assertEqual(seen, all_ids)

        def report(d):
            r = subprocess.run([RLM, "eval", "report", d, "--json"], capture_output=True,
                               text=True, timeout=DEADLINE, check=True)
            j = json.loads(r.stdout)
            for k in ("sources", "p50_s", "p95_s", "max_s"):
                del j[k]
            rows = {}
            for row in j.pop("rows"):
                del row["duration_s"], row["trajectory"]
                rows[row["id"]] = row
            return j, rows

        self.assertEqual(report(sharded), report(single))


class ReportTest(EvalCase):
    def test_report_merges_dirs_last_row_wins(self):
        a, b = self.path("a"), self.path("b")
        for d, status in ((a, "infra_error"), (b, "ok")):
            os.mkdir(d)
            with open(os.path.join(d, "results.jsonl"), "w") as f:
                f.write(json.dumps({"id": "x", "status": status, "score": None,
                                    "duration_s": 1.0, "trajectory": "trajectories/x.jsonl"})
                        + "\n")
        p = subprocess.run([RLM, "eval", "report", a, b, "--json"], capture_output=True,
                           text=True, timeout=DEADLINE)
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual(j["status"], {"ok": 1, "task_error": 0, "infra_error": 0})
        self.assertEqual(j["rows"][0]["trajectory"], b + "/trajectories/x.jsonl")

    def test_html_report_renders_every_row_with_task_text_escaped(self):
        ids = ["<b>bold</b>", "plain", "a/b", "quote\"'&"]
        tasks = self.write_tasks([{"id": i, "query": "q", "context": "<script>x()</script>" + i,
                                   "expected": "<i>no</i>"} for i in ids])
        out = self.path("out")
        p = self.run_eval(tasks, out, self.script(ECHO))
        self.assertEqual(p.returncode, 0, p.stderr)
        html = os.path.join(out, "report.html")
        p = subprocess.run([RLM, "eval", "report", out, "--html", html], capture_output=True,
                           text=True, timeout=DEADLINE)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(html) as f:
            page = f.read()
        self.assertNotIn("<script", page)
        self.assertNotIn("<b>bold", page)
        self.assertNotRegex(page, r"(src|href)=\"(https?:)?//")  # nothing fetched
        self.assertEqual(page.count("<svg"), 2)
        for href in re.findall(r'href="([^"]+)"', page):
            self.assertTrue(os.path.isfile(os.path.join(out, href)), href)
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if not browser:
            self.skipTest("chromium is not installed: the page was checked as text only")
        profile = tempfile.mkdtemp(prefix="rlm-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        d = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                            "--no-first-run", "--disable-background-networking",
                            "--user-data-dir=" + profile, "--dump-dom", "file://" + html],
                           capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(d.returncode, 0, d.stderr[-2000:])
        body = d.stdout.split('<table class="tasks"', 1)[1].split("</table>", 1)[0]
        self.assertEqual(body.count('<tr class="ok">'), len(ids))
        self.assertIn("&lt;b&gt;bold&lt;/b&gt;", body)  # the id as text, not markup
        self.assertNotIn("<b>bold", d.stdout)
        self.assertNotIn("<script>x()", d.stdout)
        self.assertEqual(d.stdout.count("<rect"), 10 + 12)  # the two histograms' bars


class GenTest(EvalCase):
    def test_gen_is_deterministic_and_seeded(self):
        def gen(*extra):
            return subprocess.run([RLM, "eval", "gen", "sniah", "--n", "3", "--length", "1000"]
                                  + list(extra), capture_output=True, check=True,
                                  timeout=DEADLINE).stdout

        self.assertEqual(gen("--seed", "9"), gen("--seed", "9"))
        self.assertNotEqual(gen("--seed", "9"), gen("--seed", "10"))
        lines = gen().decode().splitlines()
        self.assertEqual(len(lines), 3)
        for line in lines:
            t = json.loads(line)
            self.assertIn("is: %s." % t["expected"], t["context"])


if __name__ == "__main__":
    RLM = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
