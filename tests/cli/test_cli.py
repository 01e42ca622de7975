#!/usr/bin/env python3
"""End-to-end tests of the `rlm` command: exec (cells, --json, --var, exit codes), backends,
smoke. Usage: test_cli.py PATH_TO_RLM"""
import json
import os
import subprocess
import sys
import tempfile
import time
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
        self.assertRegex(p.stdout, r"ABI 1\.\d+")
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


def exec_json(*args, env=None, code):
    p = subprocess.run([RLM, "exec", "--json", *args, "-c", code], capture_output=True,
                       text=True, timeout=120, env=env)
    return p, [json.loads(line) for line in p.stdout.splitlines()]


class LocalIsolationTest(unittest.TestCase):
    """What the local backend promises about the process it runs the code in."""

    def test_host_secrets_do_not_reach_the_sandbox(self):
        env = dict(os.environ, FAKE_PROVIDER_API_KEY="sk-should-not-leak-123456")
        p, cells = exec_json(env=env, code="import os\nprint(sorted(os.environ))")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("FAKE_PROVIDER_API_KEY", cells[0]["stdout"])
        self.assertNotIn("sk-should-not-leak", p.stdout + p.stderr)

    def test_pass_env_names_the_only_variables_passed(self):
        env = dict(os.environ, FAKE_PROVIDER_API_KEY="passed-on-purpose")
        p, cells = exec_json("--set", 'backends.local.pass_env=["FAKE_PROVIDER_API_KEY"]',
                             env=env, code="import os\nprint(os.environ['FAKE_PROVIDER_API_KEY'])")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(cells[0]["stdout"], "passed-on-purpose\n")

    def test_root_runs_the_code_as_another_uid(self):
        if os.geteuid() != 0:
            self.skipTest("only as root")
        p, cells = exec_json(code="import os\nprint(os.getuid(), os.getgid())")
        self.assertEqual(p.returncode, 0, p.stderr)
        uid, gid = map(int, cells[0]["stdout"].split())
        self.assertNotEqual(uid, 0)
        self.assertNotEqual(gid, 0)

    def test_process_limit_stops_forks(self):
        code = ("import os\nkids = []\ntry:\n    for _ in range(100):\n"
                "        pid = os.fork()\n        if pid == 0:\n            import time\n"
                "            time.sleep(5)\n            os._exit(0)\n        kids.append(pid)\n"
                "except OSError as e:\n    print('stopped', type(e).__name__)\n"
                "for k in kids:\n    os.kill(k, 9)\n    os.waitpid(k, 0)\nprint(len(kids))")
        p, cells = exec_json("--set", "backends.local.max_processes=20", code=code)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = cells[0]["stdout"].split()
        self.assertEqual(out[0], "stopped")
        self.assertLess(int(out[-1]), 20)

    def test_stdin_is_devnull_and_only_stdio_fds_are_open_to_user_code(self):
        code = ("import os\nprint(os.readlink('/proc/self/fd/0'))\n"
                "print(sorted(int(f) for f in os.listdir('/proc/self/fd') if int(f) < 10))")
        p, cells = exec_json(code=code)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = cells[0]["stdout"].splitlines()
        self.assertEqual(lines[0], "/dev/null")
        # 0-2, plus the fd listdir itself opens; the channel lives at fds >= 10.
        self.assertLessEqual(set(json.loads(lines[1])), {0, 1, 2, 3})

    def test_no_network_by_default_when_namespaces_work(self):
        import socket
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        self.addCleanup(srv.close)
        status = subprocess.run([RLM, "smoke", "--backend", "local"], capture_output=True,
                                text=True, timeout=120).stdout
        if '"isolation":"namespaces' not in status:
            self.skipTest("no network namespace here")
        code = ("import socket\ns = socket.socket()\ns.settimeout(2)\ntry:\n"
                "    s.connect(('127.0.0.1', %d))\n    print('connected')\n"
                "except OSError as e:\n    print('refused')" % port)
        p, cells = exec_json(code=code)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(cells[0]["stdout"], "refused\n")

    def test_workdir_and_processes_are_gone_after_exit(self):
        code = "import os, subprocess\nprint(os.getcwd())\nsubprocess.Popen(['sleep', '60'])"
        p, cells = exec_json(code=code)
        self.assertEqual(p.returncode, 0, p.stderr)
        workdir = cells[0]["stdout"].strip()
        self.assertFalse(os.path.exists(workdir), workdir)
        # SIGKILL is sent to the sandbox's process group before rlm exits; the kernel ends the
        # process when it next runs, which on a loaded machine may be a moment later.
        for _ in range(40):
            ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            if "sleep 60" not in ps:
                break
            time.sleep(0.05)
        self.assertNotIn("sleep 60", ps)


FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes")


class RunAgainstFakeProvidersTest(unittest.TestCase):
    """`rlm run` against the fake OpenAI and Anthropic servers, exactly as against the real
    ones: only the base URL differs. The fakes check the request shape and the key."""

    KEY = "sk-test-fake-provider-key-0123456789"

    def start_fake(self, name, answers):
        script = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
        for a in answers:
            script.write(json.dumps({"content": a}) + "\n")
        script.close()
        self.addCleanup(os.unlink, script.name)
        p = subprocess.Popen([sys.executable, os.path.join(FAKES, name), "--key", self.KEY,
                              "--script", script.name], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        self.addCleanup(p.stdout.close)
        self.addCleanup(p.wait, 10)
        self.addCleanup(p.stdin.close)
        return int(p.stdout.readline())

    def run_loop(self, provider, env_name, base_url):
        with tempfile.TemporaryDirectory() as d:
            keep = os.environ.get("RLM_TEST_TRAJECTORIES")  # trajectory_schema checks them
            if keep:
                d = os.path.join(keep, "cli")
                os.makedirs(d, exist_ok=True)
            traj = os.path.join(d, provider + ".jsonl")
            env = dict(os.environ, **{env_name: self.KEY})
            p = subprocess.run([RLM, "run", "-q", "What is 6 * 7?", "--llm", provider,
                                "--model", "fake-model", "--set", "llm.base_url=" + base_url,
                                "--trajectory", traj, "--json"],
                               capture_output=True, text=True, timeout=120, env=env)
            with open(traj) as f:
                trajectory = f.read()
        return p, trajectory

    ANSWERS = ["Let me look.\n```python\nx = 6 * 7\nprint(x)\n```",
               "```repl\nSUBMIT(answer=str(x))\n```"]

    def check(self, p, trajectory):
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["answer"], "42")
        self.assertEqual(out["iterations"], 2)
        self.assertNotIn(self.KEY, trajectory)
        self.assertNotIn(self.KEY, p.stdout + p.stderr)

    def test_openai_compatible_server(self):
        port = self.start_fake("openai_server.py", self.ANSWERS)
        self.check(*self.run_loop("openai", "OPENAI_API_KEY", "http://127.0.0.1:%d/v1" % port))

    def test_anthropic_server(self):
        port = self.start_fake("anthropic_server.py", self.ANSWERS)
        self.check(*self.run_loop("anthropic", "ANTHROPIC_API_KEY",
                                  "http://127.0.0.1:%d" % port))

    def test_wrong_key_fails_fast_with_exit_3(self):
        port = self.start_fake("openai_server.py", self.ANSWERS)
        env = dict(os.environ, OPENAI_API_KEY="sk-wrong-key-000000000000")
        p = subprocess.run([RLM, "run", "-q", "hi", "--llm", "openai", "--model", "m", "--set",
                            "llm.base_url=http://127.0.0.1:%d/v1" % port],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("OPENAI_API_KEY", p.stderr)
        self.assertNotIn("sk-wrong-key-000000000000", p.stderr)


if __name__ == "__main__":
    RLM = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
