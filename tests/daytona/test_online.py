#!/usr/bin/env python3
"""test_online.py - the Daytona backend against the real service; runs only when
DAYTONA_API_KEY is set (exit 77, which ctest reports as skipped, otherwise).

    test_online.py RLM_BINARY CONFORMANCE_BINARY PLUGIN_DIR

Runs one `rlm exec` (state, SUBMIT) and the conformance suite's shared group against
DAYTONA_API_URL (default the public API), then lists sandboxes labelled rlm=1 created by this
run through `rlm exec`'s own cleanup: the suite closes every interpreter it opens.
"""
import os
import subprocess
import sys

SKIP = 77


def main():
    if not os.environ.get("DAYTONA_API_KEY"):
        print("DAYTONA_API_KEY is not set: skipping the online Daytona test")
        return SKIP
    rlm, conformance, plugins = sys.argv[1:4]
    common = ["--set", 'plugin_path=["%s"]' % plugins]
    p = subprocess.run([rlm, "exec", "--backend", "daytona", "--json"] + common +
                       ["-c", "x = 20\nprint(x + 22)\nSUBMIT(answer=x + 22)"],
                       stdout=subprocess.PIPE, timeout=600)
    out = p.stdout.decode()
    print(out)
    if p.returncode != 0 or '"answer":42' not in out.replace(" ", ""):
        print("online exec failed")
        return 1
    # The shared group only: the fork and memory bombs are not for someone's paid account.
    return subprocess.call([conformance, "--set", "backend=daytona",
                            "--set", "limits.execute_timeout_s=60",
                            "--set", "limits.start_timeout_s=180"] + common +
                           ["--skip", "*bomb*"], timeout=3600)


if __name__ == "__main__":
    sys.exit(main())
