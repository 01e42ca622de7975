#!/usr/bin/python3
"""test_daytona.py - the Python package on the Daytona backend, against the fake Daytona
(run under tests/daytona/with_fake.py, which sets DAYTONA_API_URL / DAYTONA_API_KEY and fails
the test when a sandbox is left behind).

The first tests are fleet-rlm's own usage, in our words, with only the import changed:
a volume mounted at /home/daytona/memory, repo staging, buffers across cells, result.field
access. Then tools and the in-process llm, rlm.run and rlm.aio on Daytona, and the provider
errors with their HTTP status and request id."""
import asyncio
import json
import os
import subprocess
import unittest
import urllib.request
import uuid

from rlmtest import main, rlm, scratch

from rlm import DaytonaInterpreter  # fleet-rlm: from fleet_rlm... import DaytonaInterpreter

FAKE = os.environ.get("DAYTONA_FAKE_URL")


def fake(path, doc=None):
    req = urllib.request.Request(FAKE + path, method="POST" if doc is not None else "GET",
                                 data=json.dumps(doc).encode() if doc is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


@unittest.skipUnless(FAKE, "run under tests/daytona/with_fake.py")
class FleetExamples(unittest.TestCase):
    def tearDown(self):
        fake("/_fake/faults", [])
        self.assertEqual(fake("/_fake/sandboxes"), [], "a sandbox was left behind")

    def test_the_readmes_python_example_runs_as_written(self):
        import contextlib
        import io
        from rlmtest import ROOT
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            text = f.read()
        section = text[text.index("\n## Python\n"):]
        block = section[section.index("```python\n") + 10:section.index("\n```\n")]
        self.assertTrue(block.startswith("from rlm import DaytonaInterpreter\n"), block[:60])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
        self.assertEqual(out.getvalue(), "2\n")
        with DaytonaInterpreter(volume_name="research-memory") as again:
            self.assertEqual(again.download("/home/daytona/memory/findings.txt"),
                             b"rate limits are per organisation\nretries honour Retry-After")

    def test_volume_at_home_daytona_memory_and_result_fields(self):
        volume = "research-" + uuid.uuid4().hex[:6]
        interp = DaytonaInterpreter(volume_name=volume, timeout=600)
        interp.start()
        try:
            self.assertTrue(interp.execute("VOLUME").value.endswith("/memory'"))
            interp.upload(b"rate limits are per organisation\n",
                          "/home/daytona/memory/notes/findings.txt")
            result = interp.execute(
                "import os\n"
                "notes = open(os.path.join(VOLUME, 'notes', 'findings.txt')).read()\n"
                "open(os.path.join(VOLUME, 'notes', 'summary.txt'), 'w').write(notes.upper())\n"
                "SUBMIT(answer=notes.strip(), words=len(notes.split()))")
            self.assertEqual(result.answer, "rate limits are per organisation")
            self.assertEqual(result.words, 5)
            self.assertEqual(interp.download("/home/daytona/memory/notes/summary.txt"),
                             b"RATE LIMITS ARE PER ORGANISATION\n")
        finally:
            interp.shutdown()
        # The volume outlives the sandbox: a new interpreter reads what the last one wrote.
        with DaytonaInterpreter(volume_name=volume, timeout=600) as again:
            r = again.execute("SUBMIT(answer=open(VOLUME + '/notes/summary.txt').read())")
            self.assertEqual(r.answer, "RATE LIMITS ARE PER ORGANISATION\n")

    def test_repo_staging_and_context_paths(self):
        tmp = scratch(self)
        repo = os.path.join(tmp, "repo-src")
        subprocess.run(["git", "init", "-q", repo], check=True)
        with open(os.path.join(repo, "README.md"), "w") as f:
            f.write("# staged at v1\n")
        git = ["git", "-C", repo, "-c", "user.email=t@t", "-c", "user.name=t"]
        subprocess.run(git + ["add", "README.md"], check=True)
        subprocess.run(git + ["commit", "-qm", "one"], check=True)
        subprocess.run(git + ["tag", "v1"], check=True)
        doc = os.path.join(tmp, "brief.txt")
        with open(doc, "w") as f:
            f.write("the context document\n")
        subprocess.run(["chmod", "-R", "a+rX", tmp], check=True)
        with DaytonaInterpreter(repo_url="file://" + repo, repo_ref="v1", context_paths=[doc],
                                timeout=600, execute_timeout=120) as interp:
            r = interp.execute("import os\nSUBMIT(readme=open('repo/README.md').read(), "
                               "context=sorted(os.listdir('context')), "
                               "doc=open('context/brief.txt').read())")
            self.assertEqual(r.readme, "# staged at v1\n")
            self.assertEqual(r.context, ["brief.txt"])
            self.assertEqual(r.doc, "the context document\n")

    def test_buffers_and_state_across_cells(self):
        with DaytonaInterpreter(timeout=600) as interp:
            interp.execute("add_buffer('findings', {'file': 'a.py', 'issue': 'todo'})")
            interp.execute("add_buffer('findings', {'file': 'b.py', 'issue': 'bug'})\n"
                           "seen = len(get_buffer('findings'))")
            r = interp.execute("SUBMIT(answer=[f['file'] for f in get_buffer('findings')], "
                               "seen=seen)")
            self.assertEqual((r.answer, r.seen), (["a.py", "b.py"], 2))
            self.assertEqual(r.submit, {"answer": ["a.py", "b.py"], "seen": 2})
            with self.assertRaises(AttributeError) as cm:
                r.missing
            self.assertIn("answer, seen", str(cm.exception))

    def test_with_statement_deletes_the_sandbox(self):
        with DaytonaInterpreter(timeout=600) as interp:
            interp.execute("x = 1")
            self.assertEqual(len(fake("/_fake/sandboxes")), 1)
        self.assertEqual(fake("/_fake/sandboxes"), [])


@unittest.skipUnless(FAKE, "run under tests/daytona/with_fake.py")
class ToolsRunsAsync(unittest.TestCase):
    def tearDown(self):
        self.assertEqual(fake("/_fake/sandboxes"), [], "a sandbox was left behind")

    def test_tools_and_llm_on_daytona(self):
        def search(term, limit=2):
            return ["%s-%d" % (term, i) for i in range(limit)]
        with DaytonaInterpreter(tools={"search": search}, llm=lambda p: p[::-1],
                                timeout=600) as interp:
            r = interp.execute("SUBMIT(hits=search('x', limit=3), rev=llm_query('abc'), "
                               "many=llm_query_batched(['ab', 'cd']))")
            self.assertEqual(r.submit, {"hits": ["x-0", "x-1", "x-2"], "rev": "cba",
                                        "many": ["ba", "dc"]})
            self.assertEqual(r.host_calls, 3)

    def test_run_on_daytona_with_an_in_process_llm(self):
        def llm(request):
            if isinstance(request, str):
                return "sub:" + request
            return "```repl\nSUBMIT(answer=llm_query(context[:4]) + '/' + lookup())\n```"
        r = rlm.run("q", "data here", backend="daytona", llm=llm, timeout=600,
                    tools={"lookup": lambda: "tool"})
        self.assertEqual(r.answer, "sub:data/tool")

    def test_async_on_daytona(self):
        import rlm.aio

        async def go():
            async with rlm.aio.DaytonaInterpreter(timeout=600) as interp:
                await interp.upload(b"\x00bin\xff", "f.bin")
                r = await interp.execute("SUBMIT(n=len(open('f.bin', 'rb').read()))")
                return r.n, await interp.download("f.bin")
        self.assertEqual(asyncio.run(go()), (5, b"\x00bin\xff"))

    def test_run_command_and_status(self):
        with DaytonaInterpreter(timeout=600) as interp:
            c = interp.run_command(["sh", "-c", "echo $((2 + 3))"])
            self.assertEqual((c.exit_code, c.stdout), (0, "5\n"))
            s = interp.status()
            self.assertEqual(s["backend"], "daytona")
            self.assertIn("remote", s["capabilities"])


@unittest.skipUnless(FAKE, "run under tests/daytona/with_fake.py")
class ProviderErrors(unittest.TestCase):
    def tearDown(self):
        fake("/_fake/faults", [])
        self.assertEqual(fake("/_fake/sandboxes"), [], "a sandbox was left behind")

    def test_wrong_key_is_auth_error_with_http_status_and_request_id(self):
        os.environ["RLM_PY_WRONG_KEY"] = "dtn_wrong"
        with self.assertRaises(rlm.AuthError) as cm:
            DaytonaInterpreter(api_key_env="RLM_PY_WRONG_KEY").start()
        e = cm.exception
        self.assertEqual(e.http_status, 401)
        self.assertTrue(e.request_id)
        self.assertIn("Invalid credentials", e.message)
        self.assertNotIn("dtn_wrong", str(e))

    def test_quota(self):
        fake("/_fake/faults", [{"match": "^POST /api/sandbox$", "action": "quota"}])
        with self.assertRaises(rlm.QuotaError) as cm:
            DaytonaInterpreter().start()
        self.assertIn("Total CPU limit exceeded", str(cm.exception))

    def test_transient_after_retries(self):
        fake("/_fake/faults", [{"match": "^POST /api/sandbox$", "action": "500",
                                "times": 100}])
        with self.assertRaises(rlm.TransientError) as cm:
            DaytonaInterpreter(max_retries=1).start()
        self.assertEqual(cm.exception.http_status, 500)

    def test_sandbox_in_error_state_is_a_backend_error(self):
        fake("/_fake/faults", [{"match": "^POST /api/sandbox$", "action": "error_state",
                                "reason": "no runner available"}])
        with self.assertRaises(rlm.BackendError) as cm:
            DaytonaInterpreter().start()
        self.assertIn("no runner available", str(cm.exception))


if __name__ == "__main__":
    main()
