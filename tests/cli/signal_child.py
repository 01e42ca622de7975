#!/usr/bin/env python3
"""signal_child.py - runs a command, waits until its output shows it is busy, signals it, and
reports how it ended.

    signal_child.py --wait-for REGEX [--signal NAME]... [--stdin FILE] -- COMMAND ARGS...

Passes the command's stdout and stderr through. Once REGEX matches a line of either, sends each
--signal (INT, TERM, HUP; default INT) in turn, then waits for the command to exit (a generous
deadline: it fails the run past it). Prints "signal_child: exit N" and exits with the command's
status (128 + signal for a command killed by a signal). Exit 97 when REGEX never showed up
before the command ended, 98 when the command outlived the deadline (it is killed then).
Meant to run under tests/daytona/with_fake.py and tests/modal/with_fake.py, whose leak
reports are the oracle of the tests that use it.
"""
import os
import re
import signal
import subprocess
import sys
import threading

DEADLINE_S = 240  # a generous bound for a command that ignores its signal


def main():
    argv = sys.argv[1:]
    pattern, sigs, stdin = None, [], None
    while argv and argv[0] != "--":
        if argv[0] == "--wait-for":
            pattern = re.compile(argv[1])
        elif argv[0] == "--signal":
            sigs.append(getattr(signal, "SIG" + argv[1]))
        elif argv[0] == "--stdin":
            stdin = argv[1]
        else:
            sys.stderr.write(__doc__)
            return 2
        argv = argv[2:]
    argv = argv[1:]
    if not argv or not pattern:
        sys.stderr.write(__doc__)
        return 2
    sigs = sigs or [signal.SIGINT]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=open(stdin, "rb") if stdin else subprocess.DEVNULL)
    seen = threading.Event()

    def pump(src, dst):
        for line in iter(src.readline, b""):
            dst.buffer.write(line)
            dst.flush()
            if pattern.search(line.decode("utf-8", "replace")):
                seen.set()
        src.close()

    pumps = [threading.Thread(target=pump, args=(p.stdout, sys.stdout)),
             threading.Thread(target=pump, args=(p.stderr, sys.stderr))]
    for t in pumps:
        t.start()
    # Wait for the pattern or for the command to end, whichever comes first.
    while not seen.wait(0.05):
        if p.poll() is not None:
            break
    if not seen.is_set():
        for t in pumps:
            t.join()
        print("signal_child: %r never showed up; the command exited %d" %
              (pattern.pattern, p.wait()))
        return 97
    for s in sigs:
        try:
            os.kill(p.pid, s)
        except ProcessLookupError:
            pass
    try:
        rc = p.wait(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        print("signal_child: the command was still running %d s after the signal" %
              DEADLINE_S)
        return 98
    for t in pumps:
        t.join()
    rc = 128 - rc if rc < 0 else rc
    print("signal_child: exit %d" % rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())
