#!/usr/bin/env python3
"""End-to-end tests of the `rlm` command: exec (cells, --json, --var, exit codes), backends,
smoke. Usage: test_cli.py PATH_TO_RLM"""
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unittest

RLM = None
PLUGIN_DIR_SET = None  # --set plugin_path=[the test plugins' directory]


def rlm(*args, stdin=None, timeout=120, env=None):
    return subprocess.run([RLM, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


def rlm_bytes(*args, stdin=None, timeout=120):
    """rlm with bytes in and out (for output that is not text)."""
    return subprocess.run([RLM, *args], input=stdin, capture_output=True, timeout=timeout)


def processes_with(argv_tail):
    """The pids whose command line ends with argv_tail (a list of strings)."""
    want = ("\0".join(argv_tail) + "\0").encode()
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if f.read().endswith(want):
                        pids.append(int(pid))
            except OSError:
                pass
    return pids


def wait_until(cond, deadline_s=60):
    """Polls cond until it holds or deadline_s passes; returns its last value."""
    end = time.monotonic() + deadline_s
    while True:
        v = cond()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.1)


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="rlm-cli-test-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, data):
        path = self.path(name)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return path

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()


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

    def test_in_tree_plugins_leave_ranges_and_choices_to_the_core(self):
        # Their option_defs carry the bounds and choices: describe shows them, and the core
        # refuses a value outside them, in one wording, before the plugin is created.
        plugins = 'plugin_path=["%s"]' % os.environ["RLM_TEST_PLUGIN_DIR"]
        p = rlm("backends", "describe", "local")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("one of auto, none, namespaces", p.stdout)
        self.assertIn("min 0 max 2147483647", p.stdout)
        for args, words in (
                (["--set", "backends.local.isolation=strict"],
                 'backends.local.isolation must be one of auto, none, namespaces, got "strict"'),
                (["--set", "backends.local.cpu_seconds=-1"],
                 "backends.local.cpu_seconds must be an integer from 0 to 2147483647"),
                (["--backend", "mock", "--set", plugins, "--set",
                  "backends.mock.slow_reply_ms=-5"],
                 "backends.mock.slow_reply_ms must be an integer from 0 to 600000")):
            p = rlm("exec", "-c", "pass", *args)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(words, p.stderr)

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
        mark = str(random.randrange(1000000, 9999999))  # unique: other tests may run sleeps
        code = ("import os, subprocess\nprint(os.getcwd())\nsubprocess.Popen(['sleep', '%s'])"
                % mark)
        p, cells = exec_json(code=code)
        self.assertEqual(p.returncode, 0, p.stderr)
        workdir = cells[0]["stdout"].strip()
        self.assertFalse(os.path.exists(workdir), workdir)
        # SIGKILL is sent to the sandbox's processes before rlm exits; the kernel ends a
        # process when it next runs, which on a loaded machine may be seconds later: wait for
        # the condition, with a deadline no load reaches.
        self.assertTrue(wait_until(lambda: not processes_with(["sleep", mark])),
                        "a sandbox process outlived rlm")


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


# ---- issue 9: nothing lost, clear errors -----------------------------------------------------

def replay_script(*responses):
    return "".join(json.dumps({"response": r}) + "\n" for r in responses)


SUBMIT_CONTEXT = "```python\nSUBMIT(answer=context)\n```"


class TrajectoryNeverOverwritesAnInputTest(TempDirTest):
    def run_loop(self, *args, stdin=None):
        return rlm("run", "-q", "echo the context", *args, stdin=stdin)

    def test_trajectory_that_is_the_context_file_is_refused(self):
        ctx = self.write("ctx.txt", "precious context\n")
        script = self.write("s.jsonl", replay_script(SUBMIT_CONTEXT))
        p = self.run_loop("--script", script, "--context", ctx, "--trajectory", ctx)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--context file", p.stderr)
        self.assertEqual(self.read("ctx.txt"), b"precious context\n")

    def test_trajectory_that_is_the_replay_script_is_refused(self):
        script = self.write("s.jsonl", replay_script(SUBMIT_CONTEXT))
        before = self.read("s.jsonl")
        p = self.run_loop("--script", script, "--trajectory", script)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("replay script", p.stderr)
        self.assertEqual(self.read("s.jsonl"), before)

    def test_a_hard_link_or_symlink_to_an_input_is_the_same_file(self):
        ctx = self.write("ctx.txt", "precious\n")
        script = self.write("s.jsonl", replay_script(SUBMIT_CONTEXT))
        os.link(ctx, self.path("hard.jsonl"))
        os.symlink(ctx, self.path("soft.jsonl"))
        for out in ("hard.jsonl", "soft.jsonl"):
            p = self.run_loop("--script", script, "--context", ctx, "--trajectory",
                              self.path(out))
            self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(self.read("ctx.txt"), b"precious\n")

    def test_trajectory_that_is_the_stdin_context_is_refused(self):
        ctx = self.write("ctx.txt", "precious\n")
        script = self.write("s.jsonl", replay_script(SUBMIT_CONTEXT))
        with open(ctx, "rb") as f:
            p = subprocess.run([RLM, "run", "-q", "x", "--script", script, "--context", "-",
                                "--trajectory", ctx], stdin=f, capture_output=True,
                               text=True, timeout=120)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(self.read("ctx.txt"), b"precious\n")

    def test_new_trajectory_beside_the_inputs_is_written(self):
        ctx = self.write("ctx.txt", "kept\n")
        script = self.write("s.jsonl", replay_script(SUBMIT_CONTEXT))
        p = self.run_loop("--script", script, "--context", ctx, "--trajectory",
                          self.path("t.jsonl"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "kept\n\n")
        self.assertTrue(os.path.getsize(self.path("t.jsonl")) > 0)
        self.assertEqual(self.read("ctx.txt"), b"kept\n")


class CodeIsTextTest(TempDirTest):
    def test_nul_byte_in_a_code_file_is_refused_naming_its_offset(self):
        f = self.write("nul.py", b"print('before')\nx = 1\x00\nprint('after')\n")
        p = rlm("exec", f)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("NUL byte at offset 21", p.stderr)
        self.assertIn("nul.py:2:6", p.stderr)
        self.assertEqual(p.stdout, "")  # nothing ran

    def test_bytes_that_are_not_utf8_are_refused_naming_line_and_column(self):
        f = self.write("latin1.py", b"x = 1\ns = 'caf\xe9'\nprint(s)\n")
        p = rlm("exec", f)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("latin1.py:2:9", p.stderr)
        self.assertIn("0xe9 at offset 14", p.stderr)

    def test_code_from_stdin_is_checked_too(self):
        p = rlm_bytes("exec", "-", stdin=b"print(1)\n\xff\n")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"<stdin>:2:1", p.stderr)

    def test_var_value_that_is_not_utf8_is_refused(self):
        p = subprocess.run([RLM.encode(), b"exec", b"-c", b"print(x)", b"--var",
                            b'x="caf\xe9"'], capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"--var x: the value is not UTF-8 (byte 0xe9 at offset 4)", p.stderr)

    def test_utf8_bom_at_the_start_is_dropped(self):
        f = self.write("bom.py", b"\xef\xbb\xbfprint('caf\xc3\xa9')\n")
        p = rlm("exec", f)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "caf\u00e9\n")

    def test_nul_characters_in_output_are_printed(self):
        code = "import sys\nsys.stdout.write('a\\0b\\n')\nn = sys.stderr.write('c\\0d\\n')"
        p = rlm_bytes("exec", "-c", code)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"a\0b\n")
        self.assertTrue(p.stderr.endswith(b"\nc\0d\n") or p.stderr == b"c\0d\n", p.stderr)


class NumbersAndValuesTest(TempDirTest):
    def test_var_value_must_be_one_json_value(self):
        for value in ("1 2", "{} {}", '"a" b', "[1] x"):
            p = rlm("exec", "-c", "print(x)", "--var", "x=" + value)
            self.assertEqual(p.returncode, 2, value + ": " + p.stderr)
            self.assertIn("more than one JSON value", p.stderr)

    def test_var_value_that_json_cannot_carry_is_refused(self):
        for value in ("NaN", "Infinity", "[1e999]"):
            p = rlm("exec", "-c", "print(x)", "--var", "x=" + value)
            self.assertEqual(p.returncode, 2, value + ": " + p.stderr)

    def test_long_var_name_is_kept_whole(self):
        name = "v" * 300
        p = rlm("exec", "-c", "print(%s)" % name, "--var", name + "=7")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "7\n")

    def test_timeout_out_of_range_is_a_usage_error(self):
        for t in ("inf", "nan", "1e300", "0", "-1", "1e6", "", "5s"):
            p = rlm("exec", "--timeout", t, "-c", "print(1)")
            self.assertEqual(p.returncode, 2, t + ": " + p.stderr)
            self.assertIn("--timeout", p.stderr)

    def test_config_path_that_is_a_directory_is_a_config_error(self):
        p = rlm("exec", "--config", self.tmp, "-c", "print(1)")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(self.tmp, p.stderr)


# ---- issue 10: the command line as a newcomer meets it ---------------------------------------

class HelpTest(unittest.TestCase):
    COMMANDS = (["exec"], ["run"], ["backends"], ["backends", "describe"], ["backends", "gc"],
                ["plugins"], ["plugins", "describe"], ["smoke"], ["view"], ["version"], ["help"])

    def test_every_command_and_subcommand_takes_help(self):
        for cmd in self.COMMANDS:
            for flag in ("--help", "-h"):
                p = rlm(*cmd, flag)
                self.assertEqual(p.returncode, 0, " ".join(cmd) + ": " + p.stderr)
                want = "usage: rlm " + (" ".join(cmd) if cmd != ["help"] else "")
                self.assertTrue(p.stdout.startswith(want), " ".join(cmd) + ": " + p.stdout)

    def test_help_command_prints_a_commands_help(self):
        p = rlm("help", "exec")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, rlm("exec", "--help").stdout)

    def test_exec_help_says_a_raising_cell_stops_the_run(self):
        out = rlm("exec", "--help").stdout
        self.assertIn("--keep-going", out)
        self.assertIn("stops the run", out)


class GlobalOptionsTest(TempDirTest):
    def test_set_before_the_command(self):
        p = rlm("--set", "limits.execute_timeout_s=5", "backends")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("local", p.stdout)

    def test_backend_and_config_before_the_command(self):
        cfg = self.write("cfg.json", json.dumps({"backend": "nosuch"}))
        p = rlm("--config", cfg, "exec", "-c", "print(1)")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("rlm-backend-nosuch.so", p.stderr)
        p = rlm("--backend", "nosuch", "exec", "-c", "print(1)")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("rlm-backend-nosuch.so", p.stderr)

    def test_an_option_after_the_command_wins(self):
        p = rlm("--backend", "nosuch", "exec", "--backend", "local", "-c", "print(6 * 7)")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "42\n")

    def test_global_options_reach_run(self):
        script = self.write("s.jsonl", replay_script("```python\nSUBMIT(answer='ok')\n```"))
        p = rlm("--set", "limits.max_iterations=3", "run", "-q", "x", "--script", script)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "ok\n")

    def test_unknown_global_option_is_a_usage_error(self):
        p = rlm("--nosuch", "backends")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--nosuch", p.stderr)


THREE_CELLS = "x = 1\n# %%\nprint('two')\n1/0\n# %%\nprint('three', x)\n"


class StoppingAtACellTest(TempDirTest):
    def test_raising_cell_stops_the_run_and_stderr_names_it(self):
        p = rlm("exec", self.write("c.py", THREE_CELLS))
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "two\n")
        self.assertIn("stopped at cell 2 of 3 (line 3)", p.stderr)
        self.assertIn("1 cell after it not run", p.stderr)

    def test_keep_going_runs_every_cell_and_exits_1(self):
        p = rlm("exec", "--keep-going", self.write("c.py", THREE_CELLS))
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "two\nthree 1\n")
        self.assertIn("cell 2 of 3 (line 3) raised ZeroDivisionError", p.stderr)
        self.assertIn("1 of 3 cells did not complete", p.stderr)

    def test_keep_going_with_every_cell_fine_exits_0(self):
        p = rlm("exec", "--keep-going", "-c", "print('fine')")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_cell_recovered_after_its_hard_deadline_exits_1(self):
        # The cell ignores the driver's timer, so only the host's hard deadline and the
        # interrupt behind it end it; it catches the interrupt and ends without an error.
        code = ("import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                "try:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('caught')\n")
        p = rlm("exec", "--json", "--timeout", "1", "--set", "limits.hard_deadline_grace_s=1",
                "-c", code)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertTrue(json.loads(p.stdout)["timed_out"])
        self.assertIn("timed out", p.stderr)

    def test_cell_whose_driver_died_exits_1(self):
        p = rlm("exec", "--json", "-c", "import os\nos.kill(os.getpid(), 9)")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertTrue(json.loads(p.stdout)["state_lost"])


class MissingCredentialsTest(unittest.TestCase):
    def test_missing_daytona_key_is_a_config_error(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAYTONA_")}
        p = rlm("exec", "--backend", "daytona", "-c", "print(1)", env=env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("DAYTONA_API_KEY", p.stderr)

    def test_missing_modal_credentials_are_a_config_error(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
        env["MODAL_CONFIG_PATH"] = "/nonexistent/modal.toml"
        p = rlm("exec", "--backend", "modal", "-c", "print(1)", env=env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("MODAL_TOKEN_ID", p.stderr)

    def test_refused_daytona_key_is_still_exit_3(self):
        with_fake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daytona",
                                 "with_fake.py")
        p = subprocess.run([sys.executable, with_fake, "--", "env",
                            "DAYTONA_API_KEY=dtn_wrong_key", RLM, "exec", "--backend",
                            "daytona", "-c", "print(1)"], capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("RLM_EAUTH", p.stderr)


class ContextFromStdinTest(TempDirTest):
    def test_context_dash_reads_stdin(self):
        script = self.write("s.jsonl", replay_script(
            "```python\nSUBMIT(answer=context.upper())\n```"))
        p = rlm("run", "-q", "shout it", "--script", script, "--context", "-",
                stdin="from a pipe")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "FROM A PIPE\n")


class PluginsTest(unittest.TestCase):
    def test_plugins_lists_both_kinds(self):
        p = rlm("plugins")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^local\s+backend\s+ABI")
        for name in ("replay", "openai", "anthropic"):
            self.assertRegex(p.stdout, r"(?m)^%s\s+llm\s+ABI" % name)

    def test_kind_filter(self):
        p = rlm("plugins", "--kind", "llm")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("replay", p.stdout)
        self.assertNotRegex(p.stdout, r"(?m)^local\s")

    def test_describe_an_llm_plugin(self):
        p = rlm("plugins", "describe", "replay")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("script", p.stdout)
        self.assertIn("--set llm.provider=replay", p.stdout)

    def test_describe_a_backend_plugin(self):
        p = rlm("plugins", "describe", "local")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("memory_mb", p.stdout)

    def test_describe_unknown_plugin_fails(self):
        p = rlm("plugins", "describe", "nosuch")
        self.assertEqual(p.returncode, 2)
        self.assertIn("nosuch", p.stderr)


class SmokeWithoutVolumeTest(unittest.TestCase):
    def test_smoke_skips_the_volume_on_a_backend_without_one(self):
        p = rlm("smoke", "--backend", "mock", "--set", PLUGIN_DIR_SET)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"volume write/read\s+ok.*skipped")
        self.assertNotIn("FAIL", p.stdout)


def notebook(*cells, nbformat=4):
    return json.dumps({"nbformat": nbformat, "nbformat_minor": 5, "metadata": {},
                       "cells": [{"cell_type": t, "metadata": {}, "source": src}
                                 for t, src in cells]})


class NotebookTest(TempDirTest):
    def test_code_cells_of_a_notebook_run_in_order(self):
        nb = self.write("n.ipynb", notebook(("markdown", "# Title\nSome *text*."),
                                            ("code", ["x = 20\n", "y = 1"]),
                                            ("raw", "not code"),
                                            ("code", "print(x + y + 21)")))
        p = rlm("exec", nb)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "42\n")

    def test_a_notebook_cell_that_raises_is_named_by_its_place(self):
        nb = self.write("n.ipynb", notebook(("markdown", "x"), ("code", "1/0"),
                                            ("code", "print('never')")))
        p = rlm("exec", nb)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cell 1 of 2 (notebook cell 2)", p.stderr)

    def test_a_notebook_on_stdin_is_recognised(self):
        p = rlm("exec", "-", stdin=notebook(("code", "print('from a notebook')")))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "from a notebook\n")

    def test_an_old_or_broken_notebook_is_refused_clearly(self):
        p = rlm("exec", self.write("old.ipynb", notebook(("code", "1"), nbformat=3)))
        self.assertEqual(p.returncode, 2)
        self.assertIn("nbformat 3", p.stderr)
        p = rlm("exec", self.write("bad.ipynb", "print(1)\n"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a Jupyter notebook", p.stderr)


if __name__ == "__main__":
    RLM = os.path.abspath(sys.argv.pop(1))
    PLUGIN_DIR_SET = 'plugin_path=["%s"]' % os.environ["RLM_TEST_PLUGIN_DIR"]
    unittest.main(verbosity=2)
