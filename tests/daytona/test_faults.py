#!/usr/bin/env python3
"""test_faults.py - each fault the fake Daytona injects gives its documented outcome, and no
sandbox is left behind.

    test_faults.py RLM_BINARY PLUGIN_DIR CANCEL_PROBE [Faults.test_name]...

Drives `rlm exec --backend daytona` (and cancel_probe, which cancels an interpreter from
another thread) against one fake server; every test sets its fault rules through the fake's
control endpoint, then checks the exit status, the message, the fake's request log and the
list of live sandboxes. Time bounds are far from both the fixed and the broken behaviour, so
load moves neither across them.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "fakes", "daytona_server.py")
TOKEN = "dtn_fake_faults"
RLM = PLUGINS = PROBE = None


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
        shutil.rmtree(cls.tmp, ignore_errors=True)

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

    def rlm(self, code, *sets, key=TOKEN, cells_json=True, timeout=120, env=None):
        env = dict(os.environ, DAYTONA_API_KEY=key, DAYTONA_API_URL=self.base + "/api",
                   **(env or {}))
        argv = [RLM, "exec", "--backend", "daytona", "--set",
                'plugin_path=["%s"]' % PLUGINS, "--set", "backends.daytona.max_retries=3"]
        for s in sets:
            argv += ["--set", s]
        if cells_json:
            argv.append("--json")
        argv.append("-")
        t0 = time.time()
        p = subprocess.run(argv, input=code.encode(), env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
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

    def create_labelled(self, labels):
        req = urllib.request.Request(
            self.base + "/api/sandbox", data=json.dumps({"labels": labels}).encode(),
            method="POST", headers={"Content-Type": "application/json",
                                    "Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["id"]

    def test_gc_by_run_deletes_that_run_only(self):
        # Two runs left sandboxes on one account: gc --run spares the other run's.
        run_a = [self.create_labelled({"rlm": "1", "rlm-run": "run-a"}) for _ in range(2)]
        run_b = self.create_labelled({"rlm": "1", "rlm-run": "run-b"})
        self.assertEqual(self.rlm_cli("backends", "gc", "daytona", "--run", "run-a"), 0,
                         self.err)
        self.assertIn("2 sandboxes deleted", self.out)
        left = [sb["id"] for sb in get(self.base + "/_fake/sandboxes")]
        self.assertEqual(left, [run_b], run_a)
        self.assertEqual(self.rlm_cli("backends", "gc", "daytona", "--run", "run-b"), 0,
                         self.err)
        self.assertEqual(get(self.base + "/_fake/sandboxes"), [])

    def test_eval_labels_its_sandboxes_with_its_run_id(self):
        # The pool under `rlm eval` puts rlm-run=<id> on every sandbox it creates.
        tmp = tempfile.mkdtemp(prefix="dtrun-")
        try:
            tasks = os.path.join(tmp, "tasks.jsonl")
            with open(tasks, "w") as f:
                f.write(json.dumps({"id": "t1", "query": "q", "context": "abc"}) + "\n")
            script = os.path.join(tmp, "llm.jsonl")
            with open(script, "w") as f:
                f.write(json.dumps({"response": "```repl\nSUBMIT(answer='x')\n```"}) + "\n")
            rc = self.rlm_cli("eval", tasks, "--out", os.path.join(tmp, "out"), "--backend",
                              "daytona", "--script", script, "--run-id", "labelled-run",
                              "--set", "backends.daytona.api_url=" + self.base + "/api")
            self.assertEqual(rc, 0, self.err)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        creates = [r for r in get(self.base + "/_fake/requests")
                   if r.get("method") == "POST" and r.get("path") == "/api/sandbox"]
        self.assertTrue(creates)
        for r in creates:
            self.assertEqual(r["body"]["labels"].get("rlm-run"), "labelled-run", r)

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

    def tag_repo(self):
        """A repository whose tag v1 is behind its default branch: README says which."""
        repo = os.path.join(self.tmp, "repo-src")
        if not os.path.isdir(repo):
            git = ["git", "-C", repo, "-c", "user.email=t@t", "-c", "user.name=t"]
            subprocess.run(["git", "init", "-q", repo], check=True)
            for text in ("at v1", "after v1"):
                with open(os.path.join(repo, "README"), "w") as f:
                    f.write(text + "\n")
                subprocess.run(git + ["add", "README"], check=True)
                subprocess.run(git + ["commit", "-qm", text], check=True)
                if text == "at v1":
                    subprocess.run(git + ["tag", "v1"], check=True)
            subprocess.run(["chmod", "-R", "a+rX", self.tmp], check=True)
        return "file://" + repo

    def clones(self):
        return [r for r in self.requests("POST", "/toolbox/") if r["path"].endswith("/git/clone")]

    def test_smoke_stages_a_repo_at_a_tag(self):
        rc = self.rlm_cli("smoke", "--backend", "daytona", "--repo", self.tag_repo(),
                          "--ref", "v1")
        self.assertEqual(rc, 0, self.out + self.err)
        self.assertIn("repo staged", self.out)
        self.assertTrue(self.clones(), "no git clone request")

    def test_tag_is_refused_as_branch_then_checked_out(self):
        # go-git takes only a branch as `branch`: the tag's 404 drives clone-then-checkout.
        self.assertEqual(self.rlm("print(open('repo/README').read(), end='')",
                                  "backends.daytona.repo_url=" + self.tag_repo(),
                                  "backends.daytona.repo_ref=v1"), 0, self.err)
        self.assertEqual(self.cells()[0]["stdout"], "at v1\n")
        clones = self.clones()
        self.assertEqual([c["status"] for c in clones], [404, 200])
        self.assertEqual(clones[0]["body"].get("branch"), "v1")
        self.assertNotIn("branch", clones[1]["body"])

    def test_branch_is_cloned_directly(self):
        branch = subprocess.run(["git", "-C", self.tag_repo()[len("file://"):], "symbolic-ref",
                                 "--short", "HEAD"], stdout=subprocess.PIPE, check=True)
        self.assertEqual(self.rlm("print(open('repo/README').read(), end='')",
                                  "backends.daytona.repo_url=" + self.tag_repo(),
                                  "backends.daytona.repo_ref=" + branch.stdout.decode().strip()),
                         0, self.err)
        self.assertEqual(self.cells()[0]["stdout"], "after v1\n")
        self.assertEqual([c["status"] for c in self.clones()], [200])

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
        self.assertEqual(create["body"]["autoDeleteInterval"], 0)
        self.assertTrue(any(r["path"].endswith("/process/execute") for r in log))
        self.assertTrue(any(r["path"].endswith("/files/bulk-upload") for r in log))
        execs = [r for r in log if r["path"].endswith("/process/session") and
                 r["method"] == "POST"]
        self.assertEqual(len(execs), 1)
        self.assertTrue(all(r["status"] < 400 for r in log), log)

    # ---- the fake's session input behaves as the daemon's ----------------------------------
    def api(self, method, path, doc=None):
        req = urllib.request.Request(
            self.base + path, method=method,
            data=json.dumps(doc).encode() if doc is not None else None,
            headers={"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN,
                     "X-Daytona-SDK-Version": "0.190.0"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")

    def test_fake_session_input_is_echoed_unless_suppressed(self):
        _, sb = self.api("POST", "/api/sandbox", {"labels": {"rlm": "1"}})
        try:
            while self.api("GET", "/api/sandbox/" + sb["id"])[1]["state"] != "started":
                time.sleep(0.1)
            tb = "/toolbox/" + sb["id"] + "/process/session/s"
            self.api("POST", "/toolbox/" + sb["id"] + "/process/session", {"sessionId": "s"})
            for suppress, want in ((False, "ping\nping\n"), (True, "ping\n")):
                _, c = self.api("POST", tb + "/exec", {"command": "head -n 1",
                                                       "runAsync": True,
                                                       "suppressInputEcho": suppress})
                st, _ = self.api("POST", tb + "/command/%s/input" % c["cmdId"], {"data": "ping"})
                self.assertEqual(st, 204)
                for _ in range(600):  # until head has exited
                    if "exitCode" in self.api("GET", tb + "/command/" + c["cmdId"])[1]:
                        break
                    time.sleep(0.05)
                logs = self.api("GET", tb + "/command/%s/logs" % c["cmdId"])[1]
                self.assertEqual(logs["stdout"], want, "suppressInputEcho=%s" % suppress)
                with self.assertRaises(urllib.error.HTTPError) as gone:
                    self.api("POST", tb + "/command/%s/input" % c["cmdId"], {"data": "late"})
                self.assertEqual(gone.exception.code, 410)
        finally:
            self.api("DELETE", "/api/sandbox/" + sb["id"])

    def test_session_transport_reads_no_echo_of_its_input(self):
        # The fake echoes input into the driver's stdout as the daemon does, unless asked not
        # to; the host would then read its own exec frames back (and drop them, at debug).
        self.assertEqual(self.rlm("x = 20\n# %%\nprint(x + 1)",
                                  "backends.daytona.transport=session",
                                  env={"RLM_LOG_LEVEL": "debug"}), 0, self.err)
        self.assertEqual(self.cells()[-1]["stdout"], "21\n")
        self.assertNotIn("dropping unexpected", self.err)
        execs = [r for r in self.requests("POST", "/toolbox/") if r["path"].endswith("/exec")]
        self.assertEqual([r["body"].get("suppressInputEcho") for r in execs], [True])

    # ---- what create asks for ----------------------------------------------------------------
    def test_auto_delete_interval_is_sent(self):
        self.assertEqual(self.rlm("print(1)"), 0, self.err)
        self.assertEqual(self.requests("POST", "/api/sandbox")[0]["body"]["autoDeleteInterval"], 0)
        post(self.base + "/_fake/reset", {})
        self.assertEqual(self.rlm("print(1)", "backends.daytona.auto_delete_minutes=90"), 0,
                         self.err)
        self.assertEqual(self.requests("POST", "/api/sandbox")[0]["body"]["autoDeleteInterval"],
                         90)

    def test_driver_volume_is_the_mount_path(self):
        self.assertEqual(self.rlm("print(VOLUME is not None)\n# %%\n"
                                  "open(VOLUME + '/mounted.txt', 'w').write('yes')",
                                  "backends.daytona.volume_name=faults-mount"), 0, self.err)
        self.assertEqual(self.cells()[0]["stdout"], "True\n")
        mount = self.requests("POST", "/api/sandbox")[0]["body"]["volumes"][0]["mountPath"]
        self.assertEqual(mount, "/home/daytona/memory")
        launch = [r for r in self.requests("POST", "/toolbox/") if r["path"].endswith("/exec")]
        self.assertIn("--volume '%s'" % mount, launch[0]["body"]["command"])
        # What the driver wrote under VOLUME is in the volume: a new sandbox reads it.
        self.assertEqual(self.rlm("print(open(VOLUME + '/mounted.txt').read())",
                                  "backends.daytona.volume_name=faults-mount"), 0, self.err)
        self.assertEqual(self.cells()[0]["stdout"], "yes\n")

    # ---- waits end at once on states they cannot leave ----------------------------------------
    def test_sandbox_leaving_for_a_dead_state_fails_fast(self):
        for state in ("stopped", "archived", "destroying"):
            with self.subTest(state=state):
                self.faults({"match": "^POST /api/sandbox$", "action": "goes_to_state",
                             "state": state})
                # Kept visible once stopped (auto-delete off), so the state is what is seen.
                self.assertEqual(self.rlm("print(1)", "backends.daytona.create_timeout_s=60",
                                          "backends.daytona.auto_delete_minutes=-1"), 3)
                self.assertIn("went to state " + state, self.err)
                self.assertLess(self.elapsed, 30)  # not the 60 s create timeout

    def test_volume_being_deleted_fails_fast(self):
        self.api("POST", "/api/volumes", {"name": "faults-dying"})
        try:
            for state in ("pending_delete", "deleting"):
                with self.subTest(state=state):
                    post(self.base + "/_fake/volumes/faults-dying/state", {"state": state})
                    self.assertEqual(self.rlm("print(1)", "backends.daytona.create_timeout_s=60",
                                              "backends.daytona.volume_name=faults-dying"), 3)
                    self.assertIn("volume faults-dying is in state " + state, self.err)
                    self.assertLess(self.elapsed, 30)
                    self.assertEqual(self.requests("POST", "/api/sandbox"), [])
        finally:
            vol = post(self.base + "/_fake/volumes/faults-dying/state", {"state": "ready"})
            self.api("DELETE", "/api/volumes/" + vol["id"])

    # ---- every wait has a deadline ----------------------------------------------------------
    def test_stuck_toolbox_request_ends_at_the_cells_deadline(self):
        # The step that carries the cell to the driver never gets an answer.
        self.faults({"match": "process/execute$", "body": "base64 -d [|]", "action": "hang"})
        self.assertEqual(self.rlm("x = 1", "limits.execute_timeout_s=5"), 1, self.err)
        cell = self.cells()[0]
        self.assertEqual(cell["error"]["type"], "DeadlineExceeded", cell)
        self.assertTrue(cell["state_lost"], cell)
        # 5 s + 5 s grace, an interrupt, 5 s more, a restart: not the step's old 55 s timeout.
        self.assertLess(self.elapsed, 40, self.err)

    def test_frozen_server_at_shutdown_leaves_the_sandbox_to_gc(self):
        # The cell freezes the whole fake; what follows (the driver's shutdown frame, the
        # delete) gets no answer.
        freeze = ("import urllib.request\n"
                  "urllib.request.urlopen(urllib.request.Request(%r, method='POST', "
                  "data=b'[{\"match\": \".\", \"action\": \"hang\", \"times\": 1000000}]'), "
                  "timeout=10).read()\nprint('frozen')" % (self.base + "/_fake/faults"))
        self.assertEqual(self.rlm(freeze, "backends.daytona.shutdown_timeout_s=4"), 0,
                         self.err)
        self.assertEqual(self.cells()[0]["stdout"], "frozen\n")
        self.assertIn("left to `rlm backends gc daytona`", self.err)
        self.assertLess(self.elapsed, 30, self.err)  # not minutes of retried deletes
        self.faults()  # thaw: the held requests are dropped, never carried out
        self.assertEqual(len(get(self.base + "/_fake/sandboxes")), 1)
        self.assertEqual(self.rlm_cli("backends", "gc", "daytona"), 0, self.err)
        self.assertIn("1 sandbox deleted", self.out)

    # ---- cancel flags (ABI 1.2) -------------------------------------------------------------
    def cancel_probe(self, mode, *sets):
        env = dict(os.environ, DAYTONA_API_KEY=TOKEN, DAYTONA_API_URL=self.base + "/api")
        argv = [PROBE, mode, "--set", "backend=daytona", "--set", 'plugin_path=["%s"]' % PLUGINS,
                "--set", "backends.daytona.api_url=" + self.base + "/api"]
        for s in sets:
            argv += ["--set", s]
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        try:
            self.assertEqual(p.stdout.readline(), b"started\n")
            # Cancel once the cell's or command's request (or, for a start, a look at the new
            # sandbox's state) has been waiting a while.
            waited = "/process/execute" if mode != "start" else "/api/sandbox/"
            for _ in range(1200):
                if any(waited in r["path"] and r["age_s"] > 1
                       for r in get(self.base + "/_fake/inflight")):
                    break
                time.sleep(0.05)
            else:
                self.fail("the work never started")
            p.stdin.write(b"go\n")
            p.stdin.flush()
            out, _ = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        return json.loads(out)

    def test_cancel_ends_a_running_cell(self):
        res = self.cancel_probe("exec")
        self.assertEqual(res["status"], "RLM_ECANCELLED", res)
        self.assertLess(res["after_cancel_s"], 3, res)  # not the relay step's 20 s wait
        self.assertLess(res["close_s"], 30, res)  # and the sandbox is still deleted

    def test_cancel_ends_a_start_and_the_sandbox_is_still_deleted(self):
        # Cancelled while the wait for `started` has a state request held for 20 s: the start
        # gives up (the pool closes at once, not after that request and a whole start), and
        # the sandbox is deleted all the same (tearDown: nothing leaked).
        self.faults({"match": "^GET /api/sandbox/", "action": "slow", "delay": 20})
        res = self.cancel_probe("start", "backends.daytona.create_timeout_s=60")
        self.assertEqual(res["status"], "RLM_ECANCELLED", res)
        self.assertLess(res["after_cancel_s"], 3, res)
        self.assertLess(res["close_s"], 10, res)
        self.assertEqual(self.requests("DELETE", "/api/sandbox/")[-1]["status"], 200)

    def test_cancel_ends_a_running_command(self):
        res = self.cancel_probe("command")
        self.assertEqual(res["status"], "RLM_ECANCELLED", res)
        self.assertLess(res["after_cancel_s"], 3, res)  # not the command's 60 s


if __name__ == "__main__":
    RLM, PLUGINS, PROBE = sys.argv[1], sys.argv[2], sys.argv[3]
    unittest.main(argv=sys.argv[:1] + sys.argv[4:], verbosity=2)  # then test names, if any
