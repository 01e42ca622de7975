#!/usr/bin/python3
"""test_install.py - the two documented ways to install the package work offline and find
their librlm:

- `python3 -m pip install --no-build-isolation --no-index --break-system-packages
  bindings/python` (here with --target, to leave the system alone), inside a network namespace
  without a network when `unshare -n` works, so nothing can be downloaded; the installed
  package then finds librlm next to an `rlm` on PATH, or where RLM_LIBRARY says;
- `cmake --install` into a prefix that is then moved: the package installed with it finds the
  moved librlm through its _paths.py, with no environment help.

    test_install.py BUILD_DIR
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
BUILD = None

PROBE = ("import rlm, sys\n"
         "print(rlm.__file__)\n"
         "print(rlm.library_path())\n"
         "with rlm.LocalInterpreter() as i:\n"
         "    print(i.execute('SUBMIT(answer=6 * 7)').answer)\n")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RLM_LIBRARY", "PYTHONPATH", "RLM_PLUGIN_PATH", "RLM_CONFIG")}
    env.update(extra)
    return env


def offline(argv):
    """argv in a network namespace with no network, when this host lets us make one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"] + argv
    return argv


class Install(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rlm-pyinstall-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o755)

    def probe(self, env):
        p = subprocess.run([PY, "-c", PROBE], env=env, cwd=self.tmp, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout.splitlines()

    def test_pip_install_offline_then_library_found_next_to_rlm(self):
        src = os.path.join(self.tmp, "src")
        shutil.copytree(os.path.join(ROOT, "bindings", "python"), src,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        target = os.path.join(self.tmp, "site")
        argv = offline([PY, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                        "--break-system-packages", "--no-cache-dir", "--target", target, src])
        p = subprocess.run(argv, env=clean_env(PIP_NO_INPUT="1"), capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(os.path.exists(os.path.join(target, "rlm", "interpreter.py")))
        # No RLM_LIBRARY: the build tree's `rlm` on PATH, with librlm in lib/ beside it.
        env = clean_env(PYTHONPATH=target, PATH=BUILD + os.pathsep + "/usr/bin:/bin")
        pkg, lib, answer = self.probe(env)
        self.assertTrue(pkg.startswith(target), pkg)
        self.assertEqual(os.path.dirname(lib), os.path.join(BUILD, "lib"))
        self.assertEqual(answer, "42")
        # RLM_LIBRARY wins, and a wrong one is an error naming it, never a silent fallback.
        env["RLM_LIBRARY"] = os.path.join(BUILD, "lib", "librlm.so.0")
        self.assertEqual(self.probe(env)[1], env["RLM_LIBRARY"])
        env["RLM_LIBRARY"] = os.path.join(self.tmp, "nope.so")
        p = subprocess.run([PY, "-c", PROBE], env=env, cwd=self.tmp, capture_output=True,
                           text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("nope.so (RLM_LIBRARY): no such file", p.stderr)

    def test_cmake_install_of_a_moved_prefix(self):
        prefix = os.path.join(self.tmp, "prefix")
        p = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        moved = os.path.join(self.tmp, "moved")
        os.rename(prefix, moved)
        sites = [os.path.join(dirpath) for dirpath, dirs, _ in os.walk(moved)
                 if "rlm" in dirs and os.path.basename(dirpath).endswith("-packages")]
        self.assertEqual(len(sites), 1, sites)
        env = clean_env(PYTHONPATH=sites[0], PATH="/usr/bin:/bin",
                        HOME=self.tmp, XDG_CONFIG_HOME=os.path.join(self.tmp, "cfg"))
        pkg, lib, answer = self.probe(env)
        self.assertTrue(pkg.startswith(moved), pkg)
        self.assertTrue(lib.startswith(moved), lib)
        self.assertEqual(answer, "42")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    BUILD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
