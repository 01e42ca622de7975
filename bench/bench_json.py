"""bench_json.py - a Python bench's figures in machine-readable form, for bench/report.py.

The twin of bench/bench_json.h (whose header comment is the schema): when env RLM_BENCH_JSON
names a file, emit() appends one JSON object per figure as one line, written with a single
os.write() on an O_APPEND descriptor so that lines from several benches never interleave.
Unset: it does nothing. Standard library only.

    import bench_json
    bench_json.emit("bench_python", "binding_over_c", 1.08, "x", label="...",
                    target=1.2, target_op="<=")
"""
import json
import math
import os
import sys

TARGET_OPS = ("<=", "<", ">=", ">", "==")


def _number(v):
    v = float(v)
    return v if math.isfinite(v) else None


def figure(bench, metric, value, unit, label=None, baseline=None, baseline_label=None,
           ratio=None, target=None, target_op=None, plot=None, series=None, group=None):
    """The line's object, as bench_json.h writes it (same keys, same order)."""
    if target_op is not None and target_op not in TARGET_OPS:
        raise ValueError("target_op %r is not one of %s" % (target_op, " ".join(TARGET_OPS)))
    f = {"bench": bench, "metric": metric, "label": label or metric, "value": _number(value),
         "unit": unit}
    if baseline_label is not None:
        f["baseline_label"] = baseline_label
        f["baseline"] = None if baseline is None else _number(baseline)
        if ratio is None and f["baseline"] and f["value"] is not None:
            ratio = f["value"] / f["baseline"]
    if ratio is not None:
        f["ratio"] = _number(ratio)
    if target_op is not None:
        f["target"] = _number(target)
        f["target_op"] = target_op
    if plot is not None:
        f["plot"] = plot
        f["series"] = series or "rlm"
    if group is not None:
        f["group"] = group
    return f


def emit(bench, metric, value, unit, **kw):
    """Appends the figure to $RLM_BENCH_JSON; True when written or unset, False (with a message
    on stderr) when the line could not be written whole."""
    path = os.environ.get("RLM_BENCH_JSON")
    if not path:
        return True
    line = (json.dumps(figure(bench, metric, value, unit, **kw), allow_nan=False) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            n = os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as e:
        sys.stderr.write("bench_json: cannot append to %s: %s\n" % (path, e.strerror))
        return False
    if n != len(line):
        sys.stderr.write("bench_json: cannot append to %s: short write\n" % path)
        return False
    return True
