"""rlmtest.py - what the Python package's tests share: the package from this source tree (never
an installed copy), the build's librlm (RLM_LIBRARY, set by ctest), and small helpers."""
import os
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

import rlm  # noqa: E402

__all__ = ["rlm", "ROOT", "TEST_PLUGIN_DIR", "wait_for", "volume_dir", "scratch", "main"]

TEST_PLUGIN_DIR = os.environ.get("RLM_TEST_PLUGIN_DIR") or os.path.join(
    ROOT, "build", "tests", "plugins")


def wait_for(cond, timeout=60.0, what="condition"):
    """Polls cond() until it is true; fails the test past timeout seconds (generous: the
    deadline is only a backstop, the condition is the oracle)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))


def volume_dir(name):
    """Where the local backend keeps volume `name` on this host."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "rlm", "volumes", name)


def scratch(test):
    """A scratch directory removed after the test."""
    d = tempfile.mkdtemp(prefix="rlm-py-")
    test.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
    return d


def main():
    if not os.environ.get("RLM_LIBRARY"):
        sys.stderr.write("note: RLM_LIBRARY is not set; the package looks for librlm itself\n")
    unittest.main(verbosity=2)
