#!/usr/bin/env python3
"""with_fake.py - runs a command against a fresh fake Daytona server, then checks for leaks.

    with_fake.py [--fake-arg ARG]... -- COMMAND ARGS...

Starts tests/fakes/daytona_server.py on a free loopback port, runs COMMAND with every
`@API@` in its arguments replaced by the fake's API URL (and DAYTONA_API_URL, DAYTONA_API_KEY,
DAYTONA_FAKE_URL set in its environment), then fails if any sandbox is still alive on the fake
(a leak), and stops the fake. Exit status: the command's, or 1 for a leak.
"""
import json
import os
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
    port_file = os.path.join(tmp, "port")
    log = os.path.join(tmp, "requests.jsonl")
    fake = subprocess.Popen([sys.executable, FAKE, "--port-file", port_file, "--token", TOKEN,
                             "--log", log] + fake_args)
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
            print("with_fake: no sandbox leaked; %d requests logged in %s" %
                  (sum(1 for _ in open(log)), log))
        return rc
    finally:
        fake.terminate()
        try:
            fake.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fake.kill()


if __name__ == "__main__":
    sys.exit(main())
