#!/usr/bin/env python3
"""with_fake.py - runs a command against a fresh fake Daytona server, then checks for leaks.

    with_fake.py [--fake-arg ARG]... -- COMMAND ARGS...

Starts tests/fakes/daytona_server.py on a free loopback port, runs COMMAND with every
`@API@` in its arguments replaced by the fake's API URL (and DAYTONA_API_URL, DAYTONA_API_KEY,
DAYTONA_FAKE_URL set in its environment), then fails if any sandbox is still alive on the fake
(a leak), and stops the fake. Exit status: the command's, or 1 for a leak. Its temporary
directory (the fake's state and request log) is removed at the end, after the log's last
lines are printed when the command failed.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "fakes", "daytona_server.py")
TOKEN = "dtn_fake_conformance_token"


def live_sandboxes(base):
    with urllib.request.urlopen(base + "/_fake/sandboxes", timeout=10) as r:
        return json.loads(r.read())


def main():
    argv = sys.argv[1:]
    fake_args = []
    while argv and argv[0] == "--fake-arg":
        fake_args.append(argv[1])
        argv = argv[2:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    tmp = tempfile.mkdtemp(prefix="dtwrap-")
    os.chmod(tmp, 0o755)  # the fake's sandbox uid (when run as root) works below it
    port_file = os.path.join(tmp, "port")
    log = os.path.join(tmp, "requests.jsonl")
    rc = 1
    fake = subprocess.Popen([sys.executable, FAKE, "--port-file", port_file, "--token", TOKEN,
                             "--log", log, "--root", os.path.join(tmp, "fake")] + fake_args)
    try:
        for _ in range(200):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        else:
            sys.stderr.write("with_fake: the fake did not start\n")
            return 1
        with open(port_file) as f:
            base = "http://127.0.0.1:%s" % f.read().strip()
        env = dict(os.environ, DAYTONA_API_URL=base + "/api", DAYTONA_API_KEY=TOKEN,
                   DAYTONA_FAKE_URL=base, DAYTONA_FAKE_LOG=log)
        cmd = [a.replace("@API@", base + "/api").replace("@FAKE@", base) for a in argv]
        rc = subprocess.call(cmd, env=env)
        left = live_sandboxes(base)
        if left:
            sys.stderr.write("with_fake: %d sandbox(es) leaked: %s\n" %
                             (len(left), ", ".join("%s (%s)" % (s["id"], s["state"])
                                                   for s in left)))
            rc = rc or 1
        else:
            print("with_fake: no sandbox leaked; %d requests made" % sum(1 for _ in open(log)))
        return rc
    finally:
        fake.terminate()
        try:
            fake.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fake.kill()
            fake.wait()
        if rc and os.path.exists(log):
            with open(log) as f:
                tail = f.readlines()[-20:]
            sys.stderr.write("with_fake: the last %d requests:\n%s" % (len(tail), "".join(tail)))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
