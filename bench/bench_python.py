#!/usr/bin/python3
"""bench_python.py - what the Python binding costs, each figure beside its baseline in one run.

(a) per-execute overhead: one warm local interpreter, the cell `x = 1`; batches alternate
    - C:      rlm_interp_execute + rlm_result_free in a C loop (bench_exec.so, loaded into this
              process and called on the binding's own interpreter), each call timed in C;
    - Python: interp.execute(code) and reading result.error and result.stdout, as a harness
              does, each call timed in Python;
    the figure is median(Python) / median(C), target <= 1.2.
(b) threads: the same number of cells on 1 thread (one interpreter) and on T threads (one
    interpreter each), for a cell that waits 50 ms (a tool call, I/O: the GIL released lets the
    waits overlap) and for `x = 1` (bound by the machine's cores).

    bench_python.py [--execs N] [--rounds R] [--threads T] [--json]

Needs the build: RLM_LIBRARY (else the package's own lookup) and build/bench/bench_exec.so
(--c-loop PATH).
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

import bench_json  # noqa: E402  (beside this file)
import rlm  # noqa: E402


def c_loop_fn(path):
    lib = ctypes.CDLL(path)
    fn = lib.bench_exec_loop
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_long,
                   ctypes.POINTER(ctypes.c_double)]
    return fn


def c_round(fn, interp, code, n):
    us = (ctypes.c_double * n)()
    rc = fn(interp._handle, code.encode(), n, us)
    if rc:
        sys.exit("bench_python: the C loop failed (%d)" % rc)
    return list(us)


def py_round(interp, code, n):
    out = []
    pc = time.perf_counter
    execute = interp.execute
    for _ in range(n):
        t0 = pc()
        r = execute(code)
        r.error
        r.stdout
        out.append((pc() - t0) * 1e6)
        if r.error is not None:
            sys.exit("bench_python: the cell raised %s" % r.error)
    return out


def overhead(args):
    """C and Python calls interleaved in batches of 20, so that load from elsewhere on the
    machine (it changes over seconds) weighs on both alike; medians over all calls."""
    fn = c_loop_fn(args.c_loop)
    code = "x = 1"
    batch = 20
    c_us, py_us = [], []
    # spin_us=0: with the host's spin, a call that comes right after the last one (the C loop's)
    # finds the driver not yet asleep and saves its wake-up, which the Python loop's few
    # microseconds between calls do not; that is scheduling, not the binding's overhead.
    with rlm.LocalInterpreter(spin_us=0) as interp:
        c_round(fn, interp, code, 100)
        py_round(interp, code, 100)
        for _ in range(args.rounds):
            for _ in range(max(1, args.execs // batch)):
                c_us += c_round(fn, interp, code, batch)
                py_us += py_round(interp, code, batch)
    c, py = statistics.median(c_us), statistics.median(py_us)
    q = statistics.quantiles
    return {"cell": code, "calls_each": len(c_us), "c_median_us": round(c, 1),
            "python_median_us": round(py, 1), "ratio": round(py / c, 3), "target": 1.2,
            "c_p10_us": round(q(c_us, n=10)[0], 1), "python_p10_us": round(q(py_us, n=10)[0], 1)}


def threads_run(nthreads, cells_per_thread, code):
    """Wall time for nthreads threads, each with its own interpreter, each running
    cells_per_thread cells (interpreters are started before the clock starts)."""
    interps = [rlm.LocalInterpreter(memory_mb=512) for _ in range(nthreads)]
    # A local sandbox dies with the thread that started it: start them all on this thread,
    # which outlives the workers.
    for i in interps:
        i.start()
    barrier = threading.Barrier(nthreads + 1)
    failures = []

    def work(interp):
        barrier.wait()
        for _ in range(cells_per_thread):
            r = interp.execute(code)
            if r.error is not None:
                failures.append(r.error)
    threads = [threading.Thread(target=work, args=(i,)) for i in interps]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for i in interps:
        i.shutdown()
    if failures:
        sys.exit("bench_python: cells failed: %s" % failures[:3])
    return wall


def threads(args):
    out = {}
    for label, code, total in (("wait_50ms", "import time; time.sleep(0.05)", args.threads * 4),
                               ("x_eq_1", "x = 1", max(args.execs, args.threads * 50))):
        per = max(1, total // args.threads)
        one = threads_run(1, per * args.threads, code)
        many = threads_run(args.threads, per, code)
        cells = per * args.threads
        out[label] = {"cells": cells, "threads": args.threads,
                      "one_thread_cells_per_s": round(cells / one, 1),
                      "threads_cells_per_s": round(cells / many, 1),
                      "speedup": round(one / many, 2)}
    out["cores"] = os.cpu_count()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--execs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--c-loop", default=os.path.join(ROOT, "build", "bench", "bench_exec.so"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(args.c_loop):
        sys.exit("bench_python: %s is missing (build the project first, or --c-loop PATH)"
                 % args.c_loop)
    result = {"library": rlm.library_path(), "python": sys.version.split()[0],
              "overhead": overhead(args), "threads": threads(args)}
    o, t = result["overhead"], result["threads"]
    bench_json.emit("bench_python", "binding_over_c", o["python_median_us"], "us",
                    label="execute('x = 1') through the Python binding, median",
                    baseline=o["c_median_us"], baseline_label="the same through the C API",
                    target=o["target"], target_op="<=")
    for label in ("wait_50ms", "x_eq_1"):
        bench_json.emit("bench_python", "threads_speedup_" + label, t[label]["speedup"], "x",
                        label="%d threads over 1, cells/s, %s" % (t[label]["threads"], label))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("librlm %s, Python %s" % (result["library"], result["python"]))
    print("(a) execute('x = 1') on a warm local interpreter, %d calls each, interleaved:"
          % o["calls_each"])
    print("    median: C %.1f us, Python binding %.1f us: %.2fx (target <= %.1fx) %s"
          % (o["c_median_us"], o["python_median_us"], o["ratio"], o["target"],
             "ok" if o["ratio"] <= o["target"] else "OVER TARGET"))
    print("    p10:    C %.1f us, Python binding %.1f us"
          % (o["c_p10_us"], o["python_p10_us"]))
    print("(b) %d threads (one interpreter each) vs 1 thread, %d cores:"
          % (args.threads, t["cores"]))
    for label in ("wait_50ms", "x_eq_1"):
        x = t[label]
        print("    %-10s %5d cells: 1 thread %8.1f cells/s, %d threads %8.1f cells/s: %.1fx"
              % (label, x["cells"], x["one_thread_cells_per_s"], x["threads"],
                 x["threads_cells_per_s"], x["speedup"]))


if __name__ == "__main__":
    main()
