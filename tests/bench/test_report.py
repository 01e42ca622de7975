#!/usr/bin/python3
"""test_report.py - bench/report.py and the emitters that feed it (bench_json.h, bench_json.py).

    test_report.py EMIT_FIGURES   (the C helper built from tests/bench/emit_figures.c)

The fixture tests/bench/figures.jsonl holds a met ratio, a missed one, a ratio with no
baseline, a target on a value, a figure repeated three times (reported as the median), figures
the report knows nothing about, and plotted figures in two panels plus one that cannot plot.
A malformed line stops the report with an error naming the file and line. The SVG is parsed
as XML here, then loaded in headless Chromium (Debian's `chromium`): no XML error in the DOM
it built (a broken SVG shows one, as a control), the expected bars, and pixels of both
series' colours on the screenshot. Without chromium the browser test is skipped, saying so.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REPORT = os.path.join(ROOT, "bench", "report.py")
FIXTURE = os.path.join(HERE, "figures.jsonl")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DEADLINE = 120
SVG_NS = "{http://www.w3.org/2000/svg}"
sys.path.insert(0, os.path.join(ROOT, "bench"))

import bench_json  # noqa: E402
import report  # noqa: E402

EMIT_FIGURES = None
# The fixture's plotted bars: exec: x = 1 (rlm, floor, python3 -c), 10 KB print (rlm, floor);
# start: rlm open, rlm exec -c pass (its baseline has no value: only the rlm bar), python3.
FIXTURE_BARS = 8


def run_report(*args):
    return subprocess.run([sys.executable, REPORT] + list(args), capture_output=True, text=True,
                          timeout=DEADLINE)


def rows_by_label(stdout):
    rows = {}
    for line in stdout.splitlines()[2:]:
        if not line.strip():
            break
        cells = [c for c in line.split("  ") if c.strip()]
        rows[cells[1].strip()] = line
    return rows


class Case(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rlm-test-report-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path


class TableTest(Case):
    def test_every_figure_against_its_target(self):
        txt = os.path.join(self.tmp, "report.txt")
        p = run_report(FIXTURE, "--text", txt)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = rows_by_label(p.stdout)
        self.assertRegex(rows["rlm_interp_open, median"], r"1\.18x\s+<= 1\.5x\s+met$")
        self.assertRegex(rows["rlm exec, C API, p50 [x = 1]"], r"2\.27x\s+<= 1\.5x\s+NOT met$")
        self.assertRegex(rows["python3 -c per cell [x = 1]"], r"259x\s+>= 50x\s+met$")
        self.assertRegex(rows["rlm exec -c pass <CLI> & co, median"],
                         r"python3 -c pass: n/a.*no baseline$")
        self.assertRegex(rows["concurrent complete()"], r"1\.03x\s+<= 1\.5x\s+met$")
        self.assertRegex(rows["errors, 32 interpreters at once"], r"== 0\s+met$")
        # Three lines of one figure (1.5 ms missed alone): the median, 0.02 ms, meets it.
        self.assertRegex(rows["host overhead per turn p50 (median of 3)"],
                         r"0\.02 ms\s+< 1 ms\s+met$")
        # Figures the report has no notion of are printed as they come.
        self.assertRegex(rows["a figure no one told the report about"], r"7\.50 widgets$")
        self.assertRegex(rows["local interpreters open at once"], r">= 1000 interpreters\s+met$")
        self.assertIn("targets: 6 met, 1 NOT met of 7 judged; 1 without a baseline or value",
                      p.stdout)
        with open(txt) as f:
            self.assertEqual(f.read(), p.stdout)

    def test_strict_fails_on_a_missed_target_or_a_failed_bench(self):
        self.assertEqual(run_report(FIXTURE, "--strict").returncode, 1)
        met = self.write("met.jsonl", '{"bench":"b","metric":"m","value":1,"unit":"ms",'
                                      '"target":2,"target_op":"<="}\n')
        self.assertEqual(run_report(met, "--strict").returncode, 0)
        p = run_report(met, "--strict", "--failed", "bench_llm")
        self.assertEqual(p.returncode, 1)
        self.assertIn("FAILED: bench_llm exited with an error", p.stdout)
        self.assertEqual(run_report(met, "--failed", "bench_llm").returncode, 0)

    def test_a_malformed_line_is_named(self):
        with open(FIXTURE) as f:
            good = f.read().splitlines()
        cases = [
            ('{"bench":"b","metric":"m","value":1', "not JSON"),
            ('[1, 2]', "not a JSON object"),
            ('{"bench":"b","value":1,"unit":"ms"}', '"metric" is missing'),
            ('{"bench":"b","metric":"m","unit":"ms"}', '"value" is missing'),
            ('{"bench":"b","metric":"m","value":"fast","unit":"ms"}', '"value" is \'fast\''),
            ('{"bench":"b","metric":"m","value":1,"target":1,"target_op":"=<"}', "target_op '=<'"),
            ('{"bench":"b","metric":"m","value":1,"target_op":"<="}', "target_op without a target"),
            ('{"bench":"b","metric":"m","value":1,"plot":"exec","series":"peer"}', "series 'peer'"),
        ]
        for bad, why in cases:
            path = self.write("bad.jsonl", "\n".join(good[:2] + [bad] + good[2:]) + "\n")
            p = run_report(path, "--svg", os.path.join(self.tmp, "x.svg"))
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("report: %s:3: " % path, p.stderr)
            self.assertIn(why, p.stderr)
            self.assertEqual(p.stdout, "")
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.svg")))

    def test_no_figures_is_an_error(self):
        p = run_report(self.write("empty.jsonl", "\n"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("no figures", p.stderr)
        p = run_report(os.path.join(self.tmp, "absent.jsonl"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("cannot read", p.stderr)


class EmitTest(Case):
    def test_c_emitter(self):
        out = os.path.join(self.tmp, "c.jsonl")
        env = dict(os.environ, RLM_BENCH_JSON=out)
        for _ in range(2):  # appends
            subprocess.run([EMIT_FIGURES], env=env, check=True, timeout=DEADLINE)
        with open(out) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(len(lines), 6)
        self.assertEqual(lines[0], {
            "bench": "emit_figures", "metric": "exec_x1_p50", "label": "rlm exec, p50",
            "value": 0.1, "unit": "ms", "baseline_label": "floor", "baseline": 0.05,
            "ratio": 2, "target": 1.5, "target_op": "<=", "plot": "exec", "series": "rlm",
            "group": "x = 1"})
        self.assertEqual(lines[1]["label"], 'a "quoted\\" label\n\twith\x01')
        self.assertIsNone(lines[2]["value"])
        figures = report.read_figures(out)
        self.assertEqual([f["n"] for f in figures], [2, 2, 2])
        self.assertEqual(report.judge(figures[0]), "NOT met")
        self.assertEqual(report.judge(figures[2]), "no value")
        env.pop("RLM_BENCH_JSON")
        os.unlink(out)
        subprocess.run([EMIT_FIGURES], env=env, check=True, timeout=DEADLINE)
        self.assertFalse(os.path.exists(out))

    def test_c_emitter_reports_a_file_it_cannot_write(self):
        env = dict(os.environ, RLM_BENCH_JSON=os.path.join(self.tmp, "no", "such", "dir"))
        p = subprocess.run([EMIT_FIGURES], env=env, capture_output=True, text=True,
                           timeout=DEADLINE)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bench_json: cannot append to", p.stderr)

    def test_python_emitter(self):
        out = os.path.join(self.tmp, "py.jsonl")
        os.environ["RLM_BENCH_JSON"] = out
        try:
            self.assertTrue(bench_json.emit("b", "r", 3.0, "ms", baseline=2.0,
                                            baseline_label="floor", target=1.2,
                                            target_op="<=", plot="start"))
            self.assertTrue(bench_json.emit("b", "n", float("inf"), "s"))
            with self.assertRaises(ValueError):
                bench_json.emit("b", "x", 1, "ms", target=1, target_op="=<")
        finally:
            del os.environ["RLM_BENCH_JSON"]
        self.assertTrue(bench_json.emit("b", "unset", 1, "ms"))
        with open(out) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(lines[0], {"bench": "b", "metric": "r", "label": "r", "value": 3.0,
                                    "unit": "ms", "baseline_label": "floor", "baseline": 2.0,
                                    "ratio": 1.5, "target": 1.2, "target_op": "<=",
                                    "plot": "start", "series": "rlm"})
        self.assertIsNone(lines[1]["value"])
        self.assertEqual(len(lines), 2)
        self.assertEqual(report.judge(report.read_figures(out)[0]), "NOT met")


def svg_of_fixture(tmp):
    path = os.path.join(tmp, "report.svg")
    p = run_report(FIXTURE, "--svg", path)
    if p.returncode:
        raise AssertionError(p.stderr)
    return path, p.stdout


class SvgTest(Case):
    def test_svg_structure(self):
        path, out = svg_of_fixture(self.tmp)
        self.assertIn("plot: %s (%d bars in 2 panels)" % (path, FIXTURE_BARS), out)
        self.assertIn("unit 'interpreters' is not a time", out)
        root = ET.parse(path).getroot()
        bars = [r for r in root.iter(SVG_NS + "rect") if "bar" in r.get("class", "").split()]
        self.assertEqual(len(bars), FIXTURE_BARS)
        self.assertEqual(sorted(b.get("class") for b in bars),
                         ["bar baseline"] * 4 + ["bar rlm"] * 4)
        labels = [t.text for t in root.iter(SVG_NS + "text") if t.get("class") == "label"]
        self.assertEqual(labels, ["rlm exec, C API, p50", "floor: pipe loop, p50",
                                  "python3 -c per cell", "rlm exec, C API, p50",
                                  "floor: pipe loop, p50", "rlm_interp_open, median",
                                  "rlm exec -c pass <CLI> & co, median", "bare python3 -c pass"])
        panels = [t.text for t in root.iter(SVG_NS + "text") if t.get("class") == "panel"]
        self.assertEqual(len(panels), 2)
        axes = [t.text for t in root.iter(SVG_NS + "text") if t.get("class") == "axis-label"]
        self.assertEqual(axes, ["time, lower is better (log scale)", "time, lower is better"])
        # Bars are proportional on the linear panel: 45 ms over 38 ms.
        width = {lab: float(b.get("width")) for lab, b in zip(labels, bars)}
        self.assertAlmostEqual(width["rlm_interp_open, median"] / width["bare python3 -c pass"],
                               45 / 38, places=2)
        values = [t.text for t in root.iter(SVG_NS + "text") if t.get("class") == "value"]
        self.assertIn("116 us  (2.27x its baseline, target <= 1.5x: NOT met)", values)


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, head = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = head
    assert depth == 8 and colour in (2, 6) and not interlace, head
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        start = y * (stride + 1)
        ft, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


@unittest.skipUnless(CHROMIUM, "chromium is not installed (apt-get install chromium): the "
                     "SVG was checked as XML only")
class BrowserTest(Case):
    def chromium(self, *args):
        profile = tempfile.mkdtemp(prefix="rlm-chromium-", dir=self.tmp)
        p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--no-first-run", "--disable-background-networking",
                            "--user-data-dir=" + profile] + list(args),
                           capture_output=True, text=True, timeout=DEADLINE, cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        return p.stdout

    def test_svg_parses_and_renders(self):
        path, _ = svg_of_fixture(self.tmp)
        # The control: a broken SVG makes the DOM Chromium builds carry a parse error.
        broken = self.write("broken.svg", '<svg xmlns="http://www.w3.org/2000/svg">'
                                          '<text>a < b</text></svg>\n')
        self.assertIn("parsererror", self.chromium("--dump-dom", "file://" + broken))
        dom = self.chromium("--dump-dom", "file://" + path)
        self.assertNotIn("parsererror", dom)
        self.assertEqual(dom.count('<rect class="bar '), FIXTURE_BARS)
        self.assertEqual(dom.count('class="label"'), FIXTURE_BARS)
        shot = os.path.join(self.tmp, "shot.png")
        self.chromium("--screenshot=" + shot, "--window-size=980,520", "--hide-scrollbars",
                      "file://" + path)
        w, h, bpp, rows = png_pixels(shot)
        rlm = baseline = ink = 0
        for row in rows:
            for x in range(0, w * bpp, bpp):
                r, g, b = row[x], row[x + 1], row[x + 2]
                if (r, g, b) != (255, 255, 255):
                    ink += 1
                if abs(r - 0x2f) < 8 and abs(g - 0x6d) < 8 and abs(b - 0xb5) < 8:
                    rlm += 1
                elif abs(r - 0xa8) < 8 and abs(g - 0xb2) < 8 and abs(b - 0xbd) < 8:
                    baseline += 1
        # Four bars of each series, each at least 1 px wide and 15 high (the legend adds 144).
        self.assertGreater(rlm, 4 * 15 * 20)
        self.assertGreater(baseline, 4 * 15 * 20)
        self.assertGreater(ink, rlm + baseline)


if __name__ == "__main__":
    EMIT_FIGURES = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
