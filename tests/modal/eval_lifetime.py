#!/usr/bin/python3
"""eval_lifetime.py RLM PLUGIN_DIR - run inside with_fake.py: `rlm eval --task-timeout 60` on
Modal gives its sandboxes a lifetime derived from the time limit (60 + start_timeout_s 120 +
300 = 480 s), not Modal's default hour, so a SIGKILLed eval leaves nothing running for long
(Modal has no list API for a gc to find them). The task's cell sleeps while this script reads
the live sandbox's timeout_secs from the fake's state file."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def main():
    rlm, plugins = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="modal-lifetime-")
    try:
        tasks = os.path.join(tmp, "tasks.jsonl")
        with open(tasks, "w") as f:
            f.write(json.dumps({"id": "t1", "query": "q", "context": "abc"}) + "\n")
        script = os.path.join(tmp, "llm.jsonl")
        with open(script, "w") as f:
            code = "import time\ntime.sleep(4)\nSUBMIT(answer='x')"
            f.write(json.dumps({"response": "```repl\n%s\n```" % code}) + "\n")
        p = subprocess.Popen([rlm, "eval", tasks, "--out", os.path.join(tmp, "out"),
                              "--backend", "modal", "--script", script, "--task-timeout", "60",
                              "--set", 'plugin_path=["%s"]' % plugins,
                              "--set", "limits.start_timeout_s=120"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seen = set()
        while p.poll() is None:
            try:
                with open(os.environ["MODAL_FAKE_STATE"]) as f:
                    seen.update(s["timeout_secs"] for s in json.load(f))
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        err = p.stderr.read()
        if p.returncode != 0:
            print("rlm eval failed (%d): %s" % (p.returncode, err[-2000:]))
            return 1
        if seen != {480}:
            print("sandbox lifetimes seen: %s (want {480})" % sorted(seen))
            return 1
        print("eval_lifetime: the sandbox's lifetime was 480 s")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
