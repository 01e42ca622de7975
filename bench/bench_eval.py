#!/usr/bin/env python3
"""bench_eval.py - `rlm eval` at scale against the cloud fakes, beside its own ideal.

    bench_eval.py BUILD_DIR [--tasks N] [--concurrency C] [--backends daytona,modal]
                  [--llm-delay S]

For each backend: starts its fake (tests/<backend>/with_fake.py, which also fails on a leaked
sandbox) and an OpenAI-compatible fake whose every answer takes --llm-delay seconds (200 ms by
default) and is one generic solving cell, generates N counting tasks, runs `rlm eval` at
concurrency C, and reports:
  - wall time against the ideal, N x (median task time) / C, where a task's time is what the
    row says (its LLM calls and cells in its sandbox): the ratio is what admission, sandbox
    creation and shutdown cost on top of the work itself;
  - the peak number of live sandboxes the fake saw (sampled every 20 ms; must stay <= C);
  - sandbox creations per second; tasks per minute; and leaks (the wrapper's check, 0).
Ratios, not absolute times, are the figures to compare: the machine is shared.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import bench_json  # beside this file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SOLVER = "Counting the records.\n```repl\nn = len(context.splitlines())\nSUBMIT(answer=str(n))\n```\n"


def sample_live(backend):
    """The number of live sandboxes on the fake right now."""
    if backend == "daytona":
        url = os.environ["DAYTONA_FAKE_URL"] + "/_fake/sandboxes"
        with urllib.request.urlopen(url, timeout=5) as r:
            return len(json.loads(r.read()))
    with open(os.environ["MODAL_FAKE_STATE"]) as f:
        state = json.load(f)
    return len(state.get("sandboxes", state) if isinstance(state, dict) else state)


def inner(args):
    """Runs inside with_fake.py: the fake's URLs are in the environment."""
    tmp = tempfile.mkdtemp(prefix="bench-eval-")
    tasks = os.path.join(tmp, "tasks.jsonl")
    rlm = os.path.join(args.build, "rlm")
    with open(tasks, "w") as f:
        subprocess.check_call([rlm, "eval", "gen", "count", "--n", str(args.tasks), "--length",
                               "4000", "--seed", "7"], stdout=f)
    script = os.path.join(tmp, "llm.jsonl")
    with open(script, "w") as f:
        for _ in range(args.tasks * 4):
            f.write(json.dumps({"content": SOLVER}) + "\n")
    llm = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "fakes", "openai_server.py"),
                            "--script", script, "--delay", str(args.llm_delay)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(llm.stdout.readline())
    peak = [0]
    done = threading.Event()

    def sampler():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], sample_live(args.inner))
            except (OSError, ValueError):
                pass
            time.sleep(0.02)

    t = threading.Thread(target=sampler, daemon=True)
    t.start()
    cmd = [rlm, "eval", tasks, "--out", os.path.join(tmp, "out"), "--backend", args.inner,
           "--concurrency", str(args.concurrency), "--llm", "openai", "--model", "fake",
           "--set", "llm.base_url=http://127.0.0.1:%d/v1" % port, "--set", "llm.api_key_env=NONE",
           "--set", "plugin_path=" + os.path.join(args.build, "lib", "rlm", "plugins"),
           "--creates-per-s", "1000", "--retries", "0"]
    if args.inner == "daytona":
        cmd += ["--set", "backends.daytona.api_url=" + os.environ["DAYTONA_API_URL"]]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    done.set()
    t.join()
    llm.stdin.close()
    llm.wait(timeout=30)
    rows = [json.loads(line) for line in open(os.path.join(tmp, "out", "results.jsonl"))]
    ok = sum(1 for r in rows if r["status"] == "ok")
    per_task = statistics.median(r["duration_s"] for r in rows) if rows else float("nan")
    ideal = args.tasks * per_task / args.concurrency
    report = {
        "backend": args.inner, "tasks": args.tasks, "concurrency": args.concurrency,
        "rows": len(rows), "ok": ok, "exit": proc.returncode, "wall_s": round(wall, 2),
        "median_task_s": round(per_task, 3), "ideal_s": round(ideal, 2),
        "wall_over_ideal": round(wall / ideal, 2) if ideal > 0 else None,
        "peak_live": peak[0], "creations_per_s": round(len(rows) / wall, 1),
        "tasks_per_min": round(len(rows) / wall * 60, 1),
    }
    print("BENCH " + json.dumps(report))
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr[-2000:])
        return 1
    return 0 if peak[0] <= args.concurrency and len(rows) == args.tasks else 1


def emit_figures(backend, r):
    what = "%d tasks at %d, %s fake" % (r["tasks"], r["concurrency"], backend)
    bench_json.emit("bench_eval", backend + "_wall", r["wall_s"], "s", label="wall, " + what,
                    baseline=r["ideal_s"], baseline_label="ideal: tasks x median / concurrency")
    bench_json.emit("bench_eval", backend + "_not_ok", r["rows"] - r["ok"], "tasks",
                    label="tasks not ok, " + what, target=0, target_op="==")
    bench_json.emit("bench_eval", backend + "_leaked", 0 if r["leaks"] == 0 else 1, "",
                    label="leak seen by the fake's check (1: yes), " + what, target=0,
                    target_op="==")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--tasks", type=int, default=256)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--backends", default="daytona,modal")
    ap.add_argument("--llm-delay", type=float, default=0.2)
    ap.add_argument("--inner", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    if args.inner:
        return inner(args)
    status = 0
    for backend in args.backends.split(","):
        wrapper = os.path.join(ROOT, "tests", backend, "with_fake.py")
        out = subprocess.run([sys.executable, wrapper, "--", sys.executable, os.path.abspath(__file__),
                              args.build, "--tasks", str(args.tasks), "--concurrency",
                              str(args.concurrency), "--llm-delay", str(args.llm_delay),
                              "--inner", backend], capture_output=True, text=True)
        line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH ")), None)
        leaked = "leaked" in out.stderr
        if line:
            r = json.loads(line[6:])
            r["leaks"] = "yes" if leaked else 0
            emit_figures(backend, r)
            print("bench_eval %-8s %d tasks at %d: wall %.1f s, ideal %.1f s, ratio %.2f; "
                  "peak live %d; %.1f creations/s; %.0f tasks/min; ok %d/%d; leaks %s"
                  % (backend, r["tasks"], r["concurrency"], r["wall_s"], r["ideal_s"],
                     r["wall_over_ideal"] or 0, r["peak_live"], r["creations_per_s"],
                     r["tasks_per_min"], r["ok"], r["rows"], r["leaks"]))
        else:
            print("bench_eval %s: no result\n%s%s" % (backend, out.stdout[-1500:], out.stderr[-1500:]))
        if out.returncode or not line:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
