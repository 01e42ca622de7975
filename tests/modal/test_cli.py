#!/usr/bin/python3
"""test_cli.py - `rlm exec` and `rlm run` with --backend modal against the fake Modal: the same
commands as the local backend give the same answers; credentials come from the environment or
~/.modal.toml's active profile and never reach the sandbox or the output; env_vars reach the
sandbox; a sandbox whose lifetime runs out is replaced with state_lost; no sandbox leaks.

    test_cli.py RLM_BINARY PLUGIN_DIR

Each test starts its own fake through with_fake.py (which also fails on a leaked sandbox).
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
WITH_FAKE = os.path.join(HERE, "with_fake.py")
TOKEN_ID, TOKEN_SECRET = "ak-fakeconformance", "as-fakeconformancesecret"  # with_fake.py's
RLM = PLUGINS = None


def rlm(args, backend="modal", stdin=None, env_prefix=(), fake_args=()):
    """Runs rlm (through a fresh fake for modal); returns (exit status, stdout, stderr)."""
    argv = [RLM] + list(args[:1]) + ["--backend", backend, "--set",
                                     'plugin_path=["%s"]' % PLUGINS] + list(args[1:])
    if backend == "modal":
        argv = ["/usr/bin/python3", WITH_FAKE] + list(fake_args) + ["--"] + \
            list(env_prefix) + argv
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def cells(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


class ModalCli(unittest.TestCase):
    def assert_clean(self, out, err):
        self.assertIn("no sandbox leaked", out + err)
        self.assertNotIn(TOKEN_SECRET, out + err)

    def test_exec_gives_what_the_local_backend_gives(self):
        code = ("xs = [3, 1, 2]\n# %%\nprint(sorted(xs))\n# %%\n"
                "SUBMIT(answer=sum(xs), n=len(greeting))\n")
        args = ["exec", "--json", "--var", 'greeting="hello"', "-"]
        rc_l, out_l, err_l = rlm(args, backend="local", stdin=code)
        rc_m, out_m, err_m = rlm(args, stdin=code)
        self.assertEqual(rc_l, 0, err_l)
        self.assertEqual(rc_m, 0, err_m)
        keep = ("stdout", "stderr", "error", "submit", "value", "state_lost")
        local = [{k: c.get(k) for k in keep} for c in cells(out_l)]
        modal = [{k: c.get(k) for k in keep} for c in cells(out_m)]
        self.assertEqual(len(local), 3)
        self.assertEqual(local, modal)
        self.assert_clean(out_m, err_m)

    def test_run_demo_gives_what_the_local_backend_gives(self):
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "server.log")
            subprocess.check_call([sys.executable, os.path.join(ROOT, "examples", "make_log.py"),
                                   log], stdout=subprocess.DEVNULL)
            args = ["run", "-q", "How many errors are in this server log?", "--context", log,
                    "--llm", "replay", "--script",
                    os.path.join(ROOT, "examples", "rlm_demo.jsonl")]
            rc_l, out_l, err_l = rlm(args, backend="local")
            rc_m, out_m, err_m = rlm(args)
        self.assertEqual(rc_l, 0, err_l)
        self.assertEqual(rc_m, 0, err_m)
        self.assertIn("3137 errors", out_l)
        answer = [line for line in out_l.splitlines() if "3137 errors" in line]
        self.assertTrue(answer and all(line in out_m for line in answer), out_m)
        self.assert_clean(out_m, err_m)

    def test_env_vars_reach_the_sandbox_and_the_token_does_not(self):
        code = ("import os\nprint(os.environ.get('GREETING'))\n"
                "print(os.environ.get('MODAL_TOKEN_SECRET'), os.environ.get('MODAL_TOKEN_ID'))\n")
        rc, out, err = rlm(["exec", "--set", 'backends.modal.env_vars={"GREETING": "hi"}', "-"],
                           stdin=code)
        self.assertEqual(rc, 0, err)
        self.assertIn("hi\nNone None\n", out)
        self.assert_clean(out, err)

    def test_debug_logs_and_curl_trace_mask_the_secrets(self):
        rc, out, err = rlm(["exec", "-c", "print(1)"],
                           env_prefix=["env", "RLM_LOG_LEVEL=debug", "RLM_MODAL_CURL_VERBOSE=1"])
        self.assertEqual(rc, 0, err)
        self.assertIn("x-modal-token-secret: ***", err)  # the trace ran, masked
        self.assertIn("authorization: ***", err)
        self.assert_clean(out, err)

    def test_credentials_from_the_active_profile_of_modal_toml(self):
        with tempfile.TemporaryDirectory() as tmp:
            toml = os.path.join(tmp, "modal.toml")
            with open(toml, "w") as f:
                f.write("# a decoy first, then the active profile\n"
                        "[old]\ntoken_id = \"ak-wrong\"\ntoken_secret = \"as-wrong\"\n"
                        "active = false\n\n"
                        "[work]\ntoken_id = '%s'   # single quotes and a comment\n"
                        "token_secret = \"%s\"\nactive = true\n" % (TOKEN_ID, TOKEN_SECRET))
            unset = ["env", "-u", "MODAL_TOKEN_ID", "-u", "MODAL_TOKEN_SECRET",
                     "MODAL_CONFIG_PATH=" + toml]
            rc, out, err = rlm(["exec", "-c", "print(6 * 7)"], env_prefix=unset)
            self.assertEqual(rc, 0, err)
            self.assertIn("42", out)
            self.assert_clean(out, err)
            # MODAL_PROFILE picks a profile by name: the decoy's token is refused.
            rc, out, err = rlm(["exec", "-c", "print(1)"],
                               env_prefix=unset + ["MODAL_PROFILE=old"])
            self.assertEqual(rc, 3, out + err)
            self.assertIn("RLM_EAUTH", err)
            self.assertNotIn("as-wrong", out + err)

    def test_bad_config_is_a_config_error_before_any_sandbox(self):
        for kv, words in (("timeout_s=0", "timeout_s"), ("timeout_s=100000", "timeout_s"),
                          ("execute_timeout_s=-1", "execute_timeout_s"), ("cpu=-2", "cpu"),
                          ("memory_mb=-5", "memory_mb"), ('file_transfer="ftp"', "ftp"),
                          ('env_vars={"A": 1}', "env_vars"),
                          ('server_url="http://10.1.2.3"', "must be https")):
            rc, out, err = rlm(["exec", "--set", "backends.modal." + kv, "-c", "print(1)"])
            self.assertEqual(rc, 2, kv + ": " + out + err)
            self.assertIn(words, err, kv)
            self.assertIn("RLM_ECONFIG", err, kv)
            self.assert_clean(out, err)

    def test_no_credentials_is_a_clear_error(self):
        rc, out, err = rlm(["exec", "-c", "print(1)"],
                           env_prefix=["env", "-u", "MODAL_TOKEN_ID", "-u", "MODAL_TOKEN_SECRET"])
        self.assertEqual(rc, 2, out + err)  # missing credentials: a configuration error
        self.assertIn("no credentials", err)
        self.assertIn("MODAL_TOKEN_ID", err)

    def test_sandbox_whose_lifetime_ran_out_is_replaced_with_state_lost(self):
        code = "x = 1\n# %%\nimport time\ntime.sleep(6)\n"
        rc, out, err = rlm(["exec", "--json", "--set", "backends.modal.timeout_s=3", "--set",
                            "limits.execute_timeout_s=30", "-"], stdin=code)
        self.assertEqual(rc, 1, out + err)  # a cell failed
        cs = cells(out)
        self.assertEqual(len(cs), 2, out + err)  # exec stops at the failed cell
        self.assertTrue(cs[1]["state_lost"], cs[1])
        self.assertIn("TIMEOUT", json.dumps(cs[1]["error"]))
        # The interpreter was restarted in a new sandbox (the old one ended), and that one
        # was terminated at close too (with_fake checks).
        self.assertIn("creating a new one", err)
        self.assert_clean(out, err)


def main():
    global RLM, PLUGINS
    RLM, PLUGINS = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], "-v"])


if __name__ == "__main__":
    main()
