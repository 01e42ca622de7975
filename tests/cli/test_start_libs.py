#!/usr/bin/env python3
"""What the `rlm` command loads: libcurl only when something sends an HTTP request,
libmicrohttpd only for `rlm mcp --http`. The dynamic
loader's own trace (LD_DEBUG=libs, on stderr) is the oracle.
Usage: test_start_libs.py PATH_TO_RLM"""
import os
import re
import socket
import subprocess
import sys
import unittest

RLM = None
# A key long enough that the log redactor (which masks secret-looking env values) cannot hit
# a path by chance.
API_KEY = "sk-test-start-libs-0123456789abcdef"


def run(*args, env_extra=None):
    env = dict(os.environ, LD_DEBUG="libs", OPENAI_API_KEY=API_KEY)
    env.update(env_extra or {})
    return subprocess.run([RLM, *args], capture_output=True, text=True, timeout=120, env=env)


def loaded(stderr, name):
    """Whether the loader's trace shows it initialising a library whose file starts with name."""
    return any("calling init:" in line and os.path.basename(line.split()[-1]).startswith(name)
               for line in stderr.splitlines())


def messages(stderr):
    """stderr without the loader's trace: what rlm itself said."""
    return "\n".join(line for line in stderr.splitlines()
                     if not re.match(r"\s*\d+:\t", line))


def closed_port():
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class StartLibs(unittest.TestCase):
    def test_exec_on_the_local_backend_loads_no_libcurl(self):
        r = run("exec", "-c", "print(6 * 7)")
        self.assertEqual(r.returncode, 0, messages(r.stderr))
        self.assertEqual(r.stdout.strip(), "42")
        self.assertTrue(loaded(r.stderr, "libjson-c"), "the trace shows no library at all")
        self.assertFalse(loaded(r.stderr, "libcurl"))
        self.assertFalse(loaded(r.stderr, "libmicrohttpd"))

    def test_version_loads_no_libcurl_and_no_http_server(self):
        r = run("version")
        self.assertEqual(r.returncode, 0, messages(r.stderr))
        self.assertFalse(loaded(r.stderr, "libcurl"))
        self.assertFalse(loaded(r.stderr, "libmicrohttpd"))

    def openai_run(self, env_extra=None):
        url = "http://127.0.0.1:%d/v1" % closed_port()
        return run("run", "-q", "hi", "--llm", "openai", "--model", "m",
                   "--set", "llm.base_url=" + url, "--set", "llm.max_retries=0",
                   env_extra=env_extra)

    def test_an_llm_request_loads_libcurl(self):
        r = self.openai_run()
        # Nothing listens: the request fails in libcurl ("Couldn't connect"), after loading it.
        self.assertIn("Couldn't connect", messages(r.stderr))
        self.assertTrue(loaded(r.stderr, "libcurl"))

    def test_a_libcurl_that_cannot_load_is_a_clear_error(self):
        missing = "/nonexistent/libcurl.so.4"
        r = self.openai_run({"RLM_LIBCURL": missing})
        self.assertNotEqual(r.returncode, 0)
        self.assertLess(r.returncode, 128, "rlm died of a signal")
        said = messages(r.stderr)
        self.assertIn("cannot load libcurl (%s)" % missing, said)
        self.assertIn("No such file", said)
        self.assertIn("RLM_EIO", said)
        self.assertFalse(loaded(r.stderr, "libcurl"))


if __name__ == "__main__":
    RLM = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
