#!/usr/bin/env python3
"""test_faults.py - each fault the fake Daytona injects gives its documented outcome, and no
sandbox is left behind.

    test_faults.py RLM_BINARY PLUGIN_DIR

Drives `rlm exec --backend daytona` against one fake server; every test sets its fault rules
through the fake's control endpoint, then checks the exit status, the message, the fake's
request log and the list of live sandboxes.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "fakes", "daytona_server.py")
TOKEN = "dtn_fake_faults"
RLM = PLUGINS = None


def post(url, doc):
    req = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dtfaults-")
        port_file = os.path.join(cls.tmp, "port")
        cls.fake = subprocess.Popen([sys.executable, FAKE, "--port-file", port_file,
                                     "--token", TOKEN], stdout=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        with open(port_file) as f:
            cls.base = "http://127.0.0.1:%s" % f.read().strip()

    @classmethod
    def tearDownClass(cls):
        cls.fake.terminate()
        cls.fake.wait(timeout=10)

    def setUp(self):
        post(self.base + "/_fake/reset", {})

    def tearDown(self):
        post(self.base + "/_fake/faults", [])
        left = get(self.base + "/_fake/sandboxes")
        self.assertEqual(left, [], "sandboxes leaked")

    def faults(self, *rules):
        post(self.base + "/_fake/faults", list(rules))

    def requests(self, method, path_prefix):
        return [r for r in get(self.base + "/_fake/requests")
                if r["method"] == method and r["path"].startswith(path_prefix)]

    def rlm(self, code, *sets, key=TOKEN, cells_json=True):
        env = dict(os.environ, DAYTONA_API_KEY=key, DAYTONA_API_URL=self.base + "/api")
        argv = [RLM, "exec", "--backend", "daytona", "--set",
                'plugin_path=["%s"]' % PLUGINS, "--set", "backends.daytona.max_retries=3"]
        for s in sets:
            argv += ["--set", s]
        if cells_json:
            argv.append("--json")
        argv.append("-")
        t0 = time.time()
        p = subprocess.run(argv, input=code.encode(), env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        self.elapsed = time.time() - t0
        self.out = p.stdout.decode()
        self.err = p.stderr.decode()
        return p.returncode

    def cells(self):
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]

    # ---- transient faults are retried ------------------------------------------------------
    def test_500_on_create_is_retried(self):
        self.faults({"match": "^POST /api/sandbox$", "action": "500"})
        self.assertEqual(self.rlm("print('ok')"), 0, self.err)
        self.assertEqual(self.cells()[0]["stdout"], "ok\n")
        self.assertEqual(len(self.requests("POST", "/api/sandbox")), 2)

    def test_empty_502_on_execute_is_retried(self):
        self.faults({"match": "process/execute", "action": "502", "nth": 2, "times": 2})
        self.assertEqual(self.rlm("x = 5\n# %%\nprint(x * 2)"), 0, self.err)
        self.assertEqual(self.cells()[-1]["stdout"], "10\n")

    def test_dropped_connection_is_retried(self):
        self.faults({"match": "process/execute", "action": "drop", "nth": 3})
        self.assertEqual(self.rlm("print('survived')"), 0, self.err)
        self.assertEqual(self.cells()[0]["stdout"], "survived\n")

    def test_lost_create_answer_leaves_no_duplicate_sandbox(self):
        # The first create is carried out but its answer is lost; the retry makes a second
        # sandbox. The plugin must find the first by its instance label and delete it.
        self.faults({"match": "^POST /api/sandbox$", "action": "lose_reply"})
        self.assertEqual(self.rlm("print('one')"), 0, self.err)
        self.assertEqual(self.cells()[0]["stdout"], "one\n")
        self.assertEqual(len(self.requests("POST", "/api/sandbox")), 2)
        self.assertEqual(len(self.requests("DELETE", "/api/sandbox/")), 2)

    # ---- the CLI around the backend -------------------------------------------------------
    def rlm_cli(self, *args):
        env = dict(os.environ, DAYTONA_API_KEY=TOKEN, DAYTONA_API_URL=self.base + "/api")
        p = subprocess.run([RLM, *args, "--set", 'plugin_path=["%s"]' % PLUGINS],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=180)
        self.out, self.err = p.stdout.decode(), p.stderr.decode()
        return p.returncode

    def test_gc_deletes_leftover_sandboxes_only(self):
        # Two sandboxes an earlier run left behind (labelled rlm=1) and one that is not ours.
        def create(labels):
            req = urllib.request.Request(
                self.base + "/api/sandbox", data=json.dumps({"labels": labels}).encode(),
                method="POST", headers={"Content-Type": "application/json",
                                        "Authorization": "Bearer " + TOKEN})
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())["id"]
        ours = [create({"rlm": "1", "rlm-instance": "old-%d" % i}) for i in range(2)]
        theirs = create({"team": "other"})
        self.assertEqual(self.rlm_cli("backends", "gc", "daytona", "--dry-run"), 0, self.err)
        self.assertIn("2 sandboxes found", self.out)
        self.assertEqual(self.rlm_cli("backends", "gc", "daytona"), 0, self.err)
        self.assertIn("2 sandboxes deleted", self.out)
        left = [sb["id"] for sb in get(self.base + "/_fake/sandboxes")]
        self.assertEqual(sorted(left), [theirs], ours)
        req = urllib.request.Request(self.base + "/api/sandbox/" + theirs, method="DELETE",
                                     headers={"Authorization": "Bearer " + TOKEN})
        urllib.request.urlopen(req, timeout=30).close()

    def test_smoke_passes_every_step(self):
        self.assertEqual(self.rlm_cli("smoke", "--backend", "daytona"), 0, self.out + self.err)
        for step in ("start", "vars + SUBMIT", "upload/download", "volume write/read"):
            self.assertIn(step, self.out)
        self.assertNotIn("FAIL", self.out)

    def test_smoke_stages_a_repo_at_a_tag(self):
        repo = os.path.join(self.tmp, "repo-src")
        if not os.path.isdir(repo):
            subprocess.run(["git", "init", "-q", repo], check=True)
            with open(os.path.join(repo, "README"), "w") as f:
                f.write("staged\n")
            git = ["git", "-C", repo, "-c", "user.email=t@t", "-c", "user.name=t"]
            subprocess.run(git + ["add", "README"], check=True)
            subprocess.run(git + ["commit", "-qm", "one"], check=True)
            subprocess.run(git + ["tag", "v1"], check=True)
            subprocess.run(["chmod", "-R", "a+rX", self.tmp], check=True)
        rc = self.rlm_cli("smoke", "--backend", "daytona", "--repo", "file://" + repo,
                          "--ref", "v1")
        self.assertEqual(rc, 0, self.out + self.err)
        self.assertIn("repo staged", self.out)
        clones = [r for r in self.requests("POST", "/toolbox/") if r["path"].endswith("/git/clone")]
        self.assertTrue(clones, "no git clone request")

    def test_429_honours_retry_after(self):
        self.faults({"match": "^POST /api/sandbox$", "action": "429", "retry_after": 2})
        self.assertEqual(self.rlm("print('later')"), 0, self.err)
        creates = self.requests("POST", "/api/sandbox")
        self.assertEqual(len(creates), 2)
        self.assertGreaterEqual(creates[1]["t"] - creates[0]["t"], 1.9)

    def test_slow_answers_still_work(self):
        self.faults({"match": "^GET /api/sandbox/", "action": "slow", "delay": 1.5})
        self.assertEqual(self.rlm("print('slow')"), 0, self.err)

    # ---- permanent faults fail fast with the right code --------------------------------------
    def test_401_fails_fast_as_auth_error(self):
        self.assertEqual(self.rlm("print(1)", key="dtn_wrong"), 3)
        self.assertIn("RLM_EAUTH", self.err)
        self.assertIn("Invalid credentials", self.err)
        self.assertNotIn("dtn_wrong", self.err)  # the key is never echoed
        self.assertEqual(len(self.requests("POST", "/api/sandbox")), 1)  # no retry

    def test_injected_401_on_toolbox_is_auth_error_and_cleans_up(self):
        self.faults({"match": "files/bulk-upload", "action": "401"})
        self.assertEqual(self.rlm("print(1)"), 3)
        self.assertIn("RLM_EAUTH", self.err)
        self.assertEqual(len(self.requests("DELETE", "/api/sandbox/")), 1)

    def test_quota_is_equota(self):
        self.faults({"match": "^POST /api/sandbox$", "action": "quota"})
        self.assertEqual(self.rlm("print(1)"), 3)
        self.assertIn("RLM_EQUOTA", self.err)
        self.assertIn("Total CPU limit exceeded", self.err)

    def test_stuck_in_creating_times_out_and_is_deleted(self):
        self.faults({"match": "^POST /api/sandbox$", "action": "stuck_creating", "seconds": 2})
        self.assertEqual(self.rlm("print(1)", "backends.daytona.create_timeout_s=1"), 3)
        self.assertIn("still creating", self.err)
        self.assertEqual(self.requests("DELETE", "/api/sandbox/")[-1]["status"], 200)

    def test_error_state_fails_with_server_reason(self):
        self.faults({"match": "^POST /api/sandbox$", "action": "error_state",
                     "reason": "no runner available"})
        self.assertEqual(self.rlm("print(1)"), 3)
        self.assertIn("no runner available", self.err)

    # ---- a sandbox lost under a running interpreter ----------------------------------------
    def test_sandbox_stopping_by_itself_is_replaced_with_state_lost(self):
        self.faults({"match": "^POST /api/sandbox$", "action": "stop_after", "seconds": 1.5})
        code = "x = 1\n# %%\nimport time\ntime.sleep(3)"
        self.assertEqual(self.rlm(code, "limits.execute_timeout_s=30"), 1)  # a cell failed
        cells = self.cells()
        self.assertEqual(len(cells), 2, self.out + self.err)
        self.assertTrue(cells[1]["state_lost"], cells[1])
        self.assertIn("found stopped or gone", cells[1]["error"]["message"])
        # The replacement was created (and deleted at close: tearDown checks no leak).
        self.assertEqual(len(self.requests("POST", "/api/sandbox")), 2)
        self.assertEqual(len(self.requests("DELETE", "/api/sandbox/")), 2)

    def test_requests_match_the_reference(self):
        self.assertEqual(self.rlm("print(1)"), 0, self.err)
        log = get(self.base + "/_fake/requests")
        create = [r for r in log if r["method"] == "POST" and r["path"] == "/api/sandbox"][0]
        self.assertEqual(create["headers"].get("X-Daytona-SDK-Version"), "0.190.0")
        self.assertEqual(create["headers"].get("Authorization"), "Bearer ***")
        self.assertEqual(create["body"]["labels"]["rlm"], "1")
        self.assertIn("rlm-instance", create["body"]["labels"])
        self.assertEqual(create["body"]["autoStopInterval"], 15)
        self.assertTrue(any(r["path"].endswith("/process/execute") for r in log))
        self.assertTrue(any(r["path"].endswith("/files/bulk-upload") for r in log))
        execs = [r for r in log if r["path"].endswith("/process/session") and
                 r["method"] == "POST"]
        self.assertEqual(len(execs), 1)
        self.assertTrue(all(r["status"] < 400 for r in log), log)


if __name__ == "__main__":
    RLM, PLUGINS = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
