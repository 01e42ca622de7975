#!/usr/bin/python3
"""with_fake.py - runs a command against a fresh fake Modal (tests/fakes/modal_server.py), then
checks that no sandbox leaked.

    with_fake.py [--tls] [--fault NAME=VALUE]... [--sandbox-mode MODE] [--stats-file PATH]
        -- COMMAND ARGS...

Sets MODAL_SERVER_URL (http://127.0.0.1:<port>), MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the
command's environment (and replaces @URL@ in its arguments), MODAL_FAKE_PID (kill -USR1 it
to have the --stats-file written), MODAL_FAKE_STATE (the fake's list of live sandboxes) and
MODAL_FAKE_FREEZE (a path: while a file exists there the fake answers nothing; see the fake's
--freeze-file). --fault, --sandbox-mode and --stats-file are passed to the
fake. --tls: the fake serves TLS with a throwaway CA; MODAL_SERVER_URL is
https://127.0.0.1:<port>, MODAL_FAKE_CA the CA certificate's path (also replacing @CA@ in the
arguments), which the fake removes when it stops. Exit status: the command's, or 1 when a
sandbox is still alive on the fake afterwards. Its temporary directory is removed at exit.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "fakes", "modal_server.py")
PROTO = os.path.join(HERE, "..", "..", "backends", "modal", "modal.proto")
TOKEN_ID, TOKEN_SECRET = "ak-fakeconformance", "as-fakeconformancesecret"


def main():
    argv = sys.argv[1:]
    fake_args = []
    tls = False
    while argv:
        if argv[0] == "--tls":
            tls = True
            argv = argv[1:]
        elif argv[0] in ("--fault", "--sandbox-mode", "--stats-file") and len(argv) > 1:
            fake_args += argv[:2]
            argv = argv[2:]
        else:
            break
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    # A SIGTERM (ctest's timeout) unwinds through the finally below: the fake is stopped and
    # the temporary directory removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="modalwrap-")
    port_file, state = os.path.join(tmp, "port"), os.path.join(tmp, "state.json")
    ca_out, freeze = os.path.join(tmp, "ca"), os.path.join(tmp, "freeze")
    if tls:
        fake_args += ["--tls", "--ca-file-out", ca_out]
    try:
        fake = subprocess.Popen(["/usr/bin/python3", FAKE, "--proto", PROTO, "--port-file",
                                 port_file, "--state-file", state, "--token-id", TOKEN_ID,
                                 "--token-secret", TOKEN_SECRET, "--freeze-file", freeze] +
                                fake_args)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        for _ in range(400):
            if os.path.exists(port_file) or fake.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(port_file):
            sys.stderr.write("with_fake: the fake did not start\n")
            return 1
        with open(port_file) as f:
            url = "%s://127.0.0.1:%s" % ("https" if tls else "http", f.read().strip())
        ca = ""
        if tls:  # written before the port file
            with open(ca_out) as f:
                ca = f.read().strip()
        env = dict(os.environ, MODAL_SERVER_URL=url, MODAL_TOKEN_ID=TOKEN_ID,
                   MODAL_TOKEN_SECRET=TOKEN_SECRET, MODAL_FAKE_STATE=state,
                   MODAL_FAKE_PID=str(fake.pid), MODAL_FAKE_FREEZE=freeze,
                   MODAL_CONFIG_PATH=os.path.join(tmp, "none.toml"))
        if tls:
            env["MODAL_FAKE_CA"] = ca
        rc = subprocess.call([a.replace("@URL@", url).replace("@CA@", ca) for a in argv],
                             env=env)
        with open(state) as f:
            left = json.load(f)
        if left:
            sys.stderr.write("with_fake: %d sandbox(es) leaked: %s\n" %
                             (len(left), ", ".join(s["id"] for s in left)))
            rc = rc or 1
        else:
            print("with_fake: no sandbox leaked")
        return rc
    finally:
        fake.terminate()
        try:
            fake.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fake.kill()
            fake.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
