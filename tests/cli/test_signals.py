#!/usr/bin/env python3
"""test_signals.py - SIGINT, SIGTERM and SIGHUP to `rlm exec` and `rlm run` stop the run
cleanly: the sandbox is closed (the local work dir is gone and no process of it is left; the
fake Daytona and Modal report no sandbox alive), `rlm run`'s trajectory is finished, and rlm
exits 128 + the signal. A second signal exits at once.

    test_signals.py PATH_TO_RLM

Each case waits until rlm is inside a cell that sleeps (the output of the cell before it, or
`rlm run`'s progress line, says so), then signals it. A backend that honours the cancel flag
abandons the cell at once; one that does not yet ends it when the sleep does: both pass, the
oracle is the state after exit, never a time. The cases of one group run side by side (they
mostly wait).
"""
import concurrent.futures
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SIGNAL_CHILD = os.path.join(HERE, "signal_child.py")
DAYTONA_WITH_FAKE = os.path.join(HERE, "..", "daytona", "with_fake.py")
MODAL_WITH_FAKE = os.path.join(HERE, "..", "modal", "with_fake.py")
SLEEP_S = 30  # the busy cell: long enough that the signal always lands inside it
RLM = None

EXEC_CODE = """import os, subprocess
subprocess.Popen(['sleep', '%(marker)s'])
print('workdir', os.getcwd())
print('ready', flush=True)
# %%%%
import time
time.sleep(%(sleep)d)
# %%%%
print('after the busy cell')
"""

RUN_SCRIPT = [
    "```python\nimport os, subprocess\nsubprocess.Popen(['sleep', '%(marker)s'])\n"
    "print(os.getcwd())\n```",
    "```python\nimport time\ntime.sleep(%(sleep)d)\n```",
    "```python\nSUBMIT(answer='finished')\n```",
]


def marker():
    return str(random.randrange(1000000, 9999999))


def processes_with(argv_tail):
    """The pids whose command line ends with argv_tail (a list of strings)."""
    want = ("\0".join(argv_tail) + "\0").encode()
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
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


def write(dirname, name, text):
    path = os.path.join(dirname, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def run_script(dirname, mark):
    lines = [json.dumps({"response": c % {"marker": mark, "sleep": SLEEP_S}})
             for c in RUN_SCRIPT]
    return write(dirname, "script.jsonl", "\n".join(lines) + "\n")


def trajectory_finished(path):
    """Whether the run's summary is there: the sidecar beside the trajectory (run.jsonl ->
    run.summary.json), or a closing summary line."""
    sidecar = path[:-len(".jsonl")] + ".summary.json" if path.endswith(".jsonl") else \
        path + ".summary.json"
    if os.path.exists(sidecar):
        with open(sidecar) as f:
            json.load(f)
        return True
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return bool(lines) and lines[-1].get("type") == "summary"


def first_block_stdout(path):
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            for block in rec.get("code_blocks") or []:
                out = (block.get("result") or {}).get("stdout", "").strip()
                if out:
                    return out
    return None


def signalled(argv, wait_for, sigs, wrapper=(), env=None):
    """Runs argv under signal_child.py (inside wrapper, e.g. a with_fake.py); returns the
    CompletedProcess."""
    cmd = list(wrapper) + [sys.executable, SIGNAL_CHILD, "--wait-for", wait_for]
    for s in sigs:
        cmd += ["--signal", s]
    cmd += ["--"] + list(argv)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


class Case:
    """One command to signal, and what to check once it has exited."""

    def __init__(self, command, sig, backend, tmp):
        self.command, self.sig, self.backend = command, sig, backend
        self.mark = marker()
        self.tmp = tmp
        self.argv = [RLM, command, "--backend", backend]
        if command == "exec":
            code = write(tmp, "cells.py", EXEC_CODE % {"marker": self.mark, "sleep": SLEEP_S})
            self.argv += [code]
            self.wait_for = "^ready$"
        else:
            self.trajectory = os.path.join(tmp, "t.jsonl")
            self.argv += ["-q", "go", "--script", run_script(tmp, self.mark), "--trajectory",
                          self.trajectory]
            self.wait_for = "iteration 1/"

    @property
    def status(self):
        return 128 + getattr(signal, "SIG" + self.sig)


class SignalsTest(unittest.TestCase):
    def run_cases(self, cases, wrapper=()):
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = [(c, pool.submit(signalled, c.argv, c.wait_for, [c.sig], wrapper))
                       for c in cases]
            for c, fut in futures:
                with self.subTest(command=c.command, signal=c.sig, backend=c.backend):
                    self.check(c, fut.result())

    def check(self, c, p):
        what = p.stdout + p.stderr
        self.assertIn("signal_child: exit %d" % c.status, p.stdout, what)
        self.assertEqual(p.returncode, c.status, what)
        self.assertIn("closing the sandbox", p.stderr, what)
        self.assertNotIn("after the busy cell", p.stdout, what)
        if c.command == "run":
            self.assertTrue(trajectory_finished(c.trajectory), what)
            self.assertIn("stopped by SIG" + c.sig, p.stderr, what)
            self.assertNotIn("finished", p.stdout, what)  # the run did not go on to SUBMIT
        if c.backend == "local":
            if c.command == "exec":
                workdir = [line.split(" ", 1)[1] for line in p.stdout.splitlines()
                           if line.startswith("workdir ")][0]
            else:
                workdir = first_block_stdout(c.trajectory)
            self.assertTrue(workdir, what)
            self.assertFalse(os.path.exists(workdir), workdir)
            # The kernel ends a killed process when it next runs: wait for that, generously.
            self.assertEqual(wait_until(lambda: not processes_with(["sleep", c.mark])), True,
                             "a sandbox process outlived rlm")
        else:
            self.assertIn("no sandbox leaked", what)

    def cases(self, backend, pairs):
        out = []
        for command, sig in pairs:
            tmp = tempfile.mkdtemp(prefix="rlm-signals-")
            self.addCleanup(subprocess.run, ["rm", "-rf", tmp])
            out.append(Case(command, sig, backend, tmp))
        return out

    def test_each_signal_closes_the_local_sandbox(self):
        self.run_cases(self.cases("local", [(cmd, sig) for cmd in ("exec", "run")
                                            for sig in ("INT", "TERM", "HUP")]))

    def test_each_signal_deletes_the_daytona_sandbox(self):
        self.run_cases(self.cases("daytona", [("exec", "INT"), ("exec", "TERM"),
                                              ("run", "HUP")]),
                       wrapper=[sys.executable, DAYTONA_WITH_FAKE, "--"])

    def test_each_signal_deletes_the_modal_sandbox(self):
        self.run_cases(self.cases("modal", [("exec", "HUP"), ("run", "INT"),
                                            ("run", "TERM")]),
                       wrapper=["/usr/bin/python3", MODAL_WITH_FAKE, "--"])

    def test_a_second_signal_exits_at_once(self):
        # SIGINT starts the clean stop; SIGTERM right behind it exits with its own status
        # instead of waiting for the close (a clean stop would exit 130).
        c = self.cases("local", [("exec", "INT")])[0]
        p = signalled(c.argv, c.wait_for, ["INT", "TERM"])
        self.assertIn("signal_child: exit 143", p.stdout, p.stdout + p.stderr)
        self.assertIn("second signal: exiting now", p.stderr)


if __name__ == "__main__":
    RLM = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
