#!/usr/bin/python3
"""report.py - one report of every benchmark figure: each ratio against its target, and an SVG.

    report.py FIGURES.jsonl [--text OUT.txt] [--svg OUT.svg] [--failed BENCH]... [--strict]

FIGURES.jsonl holds the lines the benches append through bench/bench_json.h or bench_json.py
(the header comment there is the schema). The table goes to stdout (and to --text): every
figure, and for each with a target whether it is met. A line the report cannot read stops it
with an error naming the file and line (exit 2). The same bench+metric seen more than once
(a bench run several times into one file) is reported as the median of its lines. --svg draws
the figures that carry a "plot" field, one panel per plot name ("exec": per-exec latency,
"start": start time, then any other), rlm's bars beside its baselines, on a log scale when the
bars span more than a factor of 30. --failed names a bench that exited with an error (its
figures may be missing; the report says so). Exit status: 0, or 1 with --strict when a target
is not met or a bench failed. Standard library only.
"""
import argparse
import json
import math
import os
import statistics
import sys
from xml.sax.saxutils import escape

TARGET_OPS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
              ">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "==": lambda a, b: a == b}
STRING_FIELDS = ("label", "unit", "baseline_label", "target_op", "plot", "series", "group")
NUMBER_FIELDS = ("value", "baseline", "ratio", "target")
PANEL_TITLES = {"exec": "Per exec: one cell's round trip in a warm interpreter",
                "start": "Start: a fresh interpreter ready for its first cell"}
TO_MS = {"s": 1e3, "ms": 1.0, "us": 1e-3}
SERIES = ("rlm", "baseline")


class ReportError(Exception):
    pass


# ---- reading

def parse_line(text, where):
    try:
        f = json.loads(text)
    except ValueError as e:
        raise ReportError("%s: not JSON (%s)" % (where, e))
    if not isinstance(f, dict):
        raise ReportError("%s: not a JSON object" % where)
    for key in ("bench", "metric"):
        if not isinstance(f.get(key), str) or not f[key]:
            raise ReportError("%s: \"%s\" is missing or not a non-empty string" % (where, key))
    if "value" not in f:
        raise ReportError("%s: \"value\" is missing" % where)
    for key in NUMBER_FIELDS:
        v = f.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ReportError("%s: \"%s\" is %r, not a number" % (where, key, v))
    for key in STRING_FIELDS:
        if f.get(key) is not None and not isinstance(f[key], str):
            raise ReportError("%s: \"%s\" is %r, not a string" % (where, key, f[key]))
    if f.get("target_op") is not None and f["target_op"] not in TARGET_OPS:
        raise ReportError("%s: target_op %r is not one of %s"
                          % (where, f["target_op"], " ".join(TARGET_OPS)))
    if f.get("target_op") is not None and f.get("target") is None:
        raise ReportError("%s: target_op without a target" % where)
    if f.get("series") is not None and f["series"] not in SERIES:
        raise ReportError("%s: series %r is not one of %s"
                          % (where, f["series"], ", ".join(SERIES)))
    f["unit"] = f.get("unit") or ""
    f["label"] = f.get("label") or f["metric"]
    return f


def read_figures(path):
    """The figures in file order, repeated bench+metric folded into one (medians, count n)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError("%s: cannot read (%s)" % (path, e))
    order, seen = [], {}
    for i, text in enumerate(lines, 1):
        if not text.strip():
            continue
        f = parse_line(text, "%s:%d" % (path, i))
        key = (f["bench"], f["metric"])
        if key not in seen:
            seen[key] = []
            order.append(key)
        elif seen[key][0]["unit"] != f["unit"]:
            raise ReportError("%s:%d: %s/%s in %r, its earlier line in %r"
                              % (path, i, key[0], key[1], f["unit"], seen[key][0]["unit"]))
        seen[key].append(f)
    if not order:
        raise ReportError("%s: no figures (did the benches run with RLM_BENCH_JSON set?)" % path)
    figures = []
    for key in order:
        runs = seen[key]
        f = dict(runs[-1])
        for k in NUMBER_FIELDS:
            got = [r[k] for r in runs if r.get(k) is not None]
            f[k] = statistics.median(got) if got else None
        f["n"] = len(runs)
        figures.append(f)
    return figures


# ---- judging

def compared(f):
    """A figure measured against a baseline: its target applies to the ratio."""
    return any(f.get(k) is not None for k in ("baseline_label", "baseline", "ratio"))


def ratio_of(f):
    if f.get("ratio") is not None:
        return f["ratio"]
    if f.get("value") is not None and f.get("baseline"):
        return f["value"] / f["baseline"]
    return None


def judge(f):
    """'met', 'NOT met', 'no baseline', 'no value', or '' (no target)."""
    if f.get("target_op") is None:
        return ""
    subject = ratio_of(f) if compared(f) else f.get("value")
    if subject is None:
        return "no baseline" if compared(f) and f.get("value") is not None else "no value"
    return "met" if TARGET_OPS[f["target_op"]](subject, f["target"]) else "NOT met"


# ---- the text table

def num(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 100 or v == int(v) and a < 1e6:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3g" % v


def with_unit(v, unit):
    if v is None or not unit:
        return num(v)
    return num(v) + unit if unit == "x" else "%s %s" % (num(v), unit)


def table(figures, failed):
    rows = [("bench", "figure", "value", "baseline", "ratio", "target", "status")]
    counts = {}
    for f in figures:
        status = judge(f)
        counts[status] = counts.get(status, 0) + 1
        label = f["label"] + (" [%s]" % f["group"] if f.get("group") else "")
        label += " (median of %d)" % f["n"] if f["n"] > 1 else ""
        base = ""
        if compared(f):
            base = "%s: %s" % (f.get("baseline_label") or "baseline",
                               with_unit(f.get("baseline"), f["unit"]))
        ratio = ratio_of(f)
        target = ""
        if f.get("target_op") is not None:
            t = "%.4g" % f["target"]
            if compared(f):
                t += "x"
            elif f["unit"]:
                t += f["unit"] if f["unit"] == "x" else " " + f["unit"]
            target = "%s %s" % (f["target_op"], t)
        rows.append((f["bench"], label, with_unit(f.get("value"), f["unit"]), base,
                     "" if ratio is None else num(ratio) + "x", target, status))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for j, r in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    judged = counts.get("met", 0) + counts.get("NOT met", 0)
    out.append("")
    out.append("targets: %d met, %d NOT met of %d judged; %d without a baseline or value"
               % (counts.get("met", 0), counts.get("NOT met", 0), judged,
                  counts.get("no baseline", 0) + counts.get("no value", 0)))
    for name in failed:
        out.append("FAILED: %s exited with an error (its figures may be missing above)" % name)
    return "\n".join(out) + "\n", counts


# ---- the plot

def panels_of(figures, warn):
    """{plot name: [(group, [(label, ms, series, note)])]}, in order: exec, start, then the rest."""
    panels = {}
    for f in figures:
        name = f.get("plot")
        if not name:
            continue
        scale = TO_MS.get(f["unit"])
        if scale is None:
            warn("%s/%s: unit %r is not a time (s, ms, us): not plotted"
                 % (f["bench"], f["metric"], f["unit"]))
            continue
        groups = panels.setdefault(name, [])
        group = f.get("group") or ""
        bars = next((b for g, b in groups if g == group), None)
        if bars is None:
            bars = []
            groups.append((group, bars))
        series = f.get("series") or "rlm"

        def add(label, v, series, note=""):
            if v is None or v <= 0 or not math.isfinite(v):
                warn("%s/%s: %r has no positive value: not plotted"
                     % (f["bench"], f["metric"], label))
            elif not any(b[0] == label for b in bars):
                bars.append((label, v * scale, series, note))
        note = ""
        if series == "rlm" and ratio_of(f) is not None:
            note = "%sx its baseline" % num(ratio_of(f))
            if f.get("target_op"):
                note += ", target %s %gx: %s" % (f["target_op"], f["target"], judge(f))
        add(f["label"], f.get("value"), series, note)
        # An rlm figure's baseline is drawn beside it; a baseline figure's "baseline" is the
        # rlm figure it was compared with, drawn from that figure's own line.
        if series == "rlm" and f.get("baseline_label"):
            add(f["baseline_label"], f.get("baseline"), "baseline")
    for groups in panels.values():
        for _, bars in groups:
            bars.sort(key=lambda b: (b[2] != "rlm", b[1] if b[2] != "rlm" else 0))
    names = [n for n in ("exec", "start") if n in panels]
    names += [n for n in panels if n not in names]
    return [(n, panels[n]) for n in names]


def ms_text(v):
    if v >= 1000:
        return "%.2f s" % (v / 1e3)
    if v >= 1:
        return "%s ms" % num(v)
    return "%s us" % num(v * 1e3)


def axis_of(values):
    """(to_x(v) in 0..1, ticks [(v, text)], log?) for the values of one panel."""
    lo, hi = min(values), max(values)
    if hi / lo > 30:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        if a == b:
            b += 1
        ticks = [(10.0 ** e, ms_text(10.0 ** e)) for e in range(a, b + 1)]
        return (lambda v: (math.log10(v) - a) / (b - a)), ticks, True
    step = 10 ** math.floor(math.log10(hi / 5))
    for m in (1, 2, 2.5, 5, 10):
        if hi / (step * m) <= 6:
            step *= m
            break
    top = step * math.ceil(hi / step)
    ticks = [(step * i, ms_text(step * i) if i else "0") for i in range(int(round(top / step)) + 1)]
    return (lambda v: v / top), ticks, False


def value_text(v, note):
    return ms_text(v) + ("  (%s)" % note if note else "")


def svg(panels, source):
    ROW, GROUP, TITLE, BAR_W, CHAR_W = 22, 20, 30, 400, 7  # CHAR_W: a 12 px glyph, roughly
    bars = [b for _, groups in panels for _, bs in groups for b in bs]
    # The label column and the room right of the bars fit the longest texts.
    LABEL_W = max([200] + [20 + CHAR_W * len(b[0]) for b in bars])
    x0 = LABEL_W + 10
    W = max([980] + [x0 + BAR_W + 15 + int(CHAR_W * 0.95 * len(value_text(b[1], b[3])))
                     for b in bars])
    out, y = [], 56
    for name, groups in panels:
        values = [b[1] for _, bars in groups for b in bars]
        to_x, ticks, log = axis_of(values)
        out.append('<text class="panel" x="10" y="%d">%s</text>'
                   % (y + 18, escape(PANEL_TITLES.get(name, name))))
        y += TITLE
        top, grid_at = y, len(out)
        for group, bars in groups:
            if group:
                out.append('<text class="group" x="10" y="%d">%s</text>' % (y + 14, escape(group)))
                y += GROUP
            for label, v, series, note in bars:
                w = max(1.0, to_x(v) * BAR_W)
                out.append('<text class="label" x="%d" y="%d" text-anchor="end">%s</text>'
                           % (LABEL_W, y + 15, escape(label)))
                out.append('<rect class="bar %s" x="%d" y="%d" width="%.1f" height="15">'
                           '<title>%s</title></rect>'
                           % (series, x0, y + 3, w, escape("%s: %s" % (label, ms_text(v)))))
                out.append('<text class="value" x="%.1f" y="%d">%s</text>'
                           % (x0 + w + 5, y + 15, escape(value_text(v, note))))
                y += ROW
        for v, text in ticks:  # the grid under the bars, the tick labels under the axis
            x = x0 + to_x(v) * BAR_W
            out.insert(grid_at, '<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                       % (x, top, x, y + 4))
            out.append('<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>'
                       % (x, y + 18, escape(text)))
        out.append('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>'
                   % (x0, y + 4, x0 + BAR_W, y + 4))
        out.append('<text class="axis-label" x="%d" y="%d" text-anchor="middle">%s</text>'
                   % (x0 + BAR_W // 2, y + 36, "time, lower is better"
                      + (" (log scale)" if log else "")))
        y += 56
    if not panels:
        out.append('<text class="label" x="10" y="%d">no figure carries a "plot" field</text>'
                   % (y + 16))
        y += 30
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
        'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">' % (W, y, W, y),
        '<style>.panel{font-weight:bold;font-size:14px}.group{font-style:italic;fill:#444}'
        '.rlm{fill:#2f6db5}.baseline{fill:#a8b2bd}.value,.tick{fill:#333;font-size:11px}'
        '.grid{stroke:#e2e6ea}.axis{stroke:#555}.axis-label{fill:#333}</style>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        '<text x="10" y="22" font-size="16" font-weight="bold">Where rlm stands against its '
        'baselines</text>',
        '<text x="10" y="40" fill="#555">%s</text>'
        % escape("from %s (make bench): each bar as its bench reports it" % source),
        '<rect class="legend rlm" x="%d" y="10" width="12" height="12"/>'
        '<text x="%d" y="21">rlm</text>' % (W - 180, W - 163),
        '<rect class="legend baseline" x="%d" y="10" width="12" height="12"/>'
        '<text x="%d" y="21">baseline</text>' % (W - 120, W - 103),
    ]
    return "\n".join(head + out + ["</svg>"]) + "\n"


def write_atomically(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("figures")
    ap.add_argument("--text", help="write the table here too")
    ap.add_argument("--svg", help="write the plot here")
    ap.add_argument("--failed", action="append", default=[], metavar="BENCH",
                    help="a bench that exited with an error")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a target is not met or a bench failed")
    args = ap.parse_args(argv)
    try:
        figures = read_figures(args.figures)
    except ReportError as e:
        sys.stderr.write("report: %s\n" % e)
        return 2
    text, counts = table(figures, args.failed)
    notes = []
    if args.svg:
        panels = panels_of(figures, notes.append)
        write_atomically(args.svg, svg(panels, os.path.basename(args.figures)))
        notes.append("plot: %s (%d bars in %d panels)"
                     % (args.svg, sum(len(b) for _, g in panels for _, b in g), len(panels)))
    text += "".join("%s\n" % n for n in notes)
    sys.stdout.write(text)
    if args.text:
        write_atomically(args.text, text)
    return 1 if args.strict and (counts.get("NOT met") or args.failed) else 0


if __name__ == "__main__":
    sys.exit(main())
