#!/usr/bin/env python3
"""`rlm view`: the page it writes, checked as data and in a real browser.

A scripted run (the replay LLM, the local sandbox) that has a child RLM, a failed sub-call, a
cell that times out, a cell that kills the interpreter (state lost), a SUBMIT with several
fields, known token counts, and output that tries to close the page's <script>. `rlm view`
turns it into one HTML file; headless Chromium (Debian's `chromium`) loads it from disk over the
DevTools protocol (a pipe, Python stdlib only) and the test reads the rendered DOM and every
request the page made. Without chromium the browser tests are skipped, saying so.

Usage: test_view.py PATH_TO_RLM   (trajectories go to $RLM_TEST_TRAJECTORIES/view when set, so
the trajectory_schema test validates them too)"""

import fcntl
import html.parser
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import http.server

RLM = None
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_DEADLINE = 90.0  # generous: the machine may be loaded

INJECTED = '</script><script id="pwned">document.title = "pwned"</script><!-- <b>bold</b> &amp;'


def rlm(*args, timeout=180):
    return subprocess.run([RLM, *args], capture_output=True, text=True, timeout=timeout)


def script_entries():
    fence = "```repl\n%s\n```"
    return [
        {"match": "TASK:", "prompt_tokens": 1000, "completion_tokens": 100,
         "response": "Looking.\n" + fence % (
             "html = %r\nprint(html)\ntry:\n    llm_query('sub question that fails')\n"
             "except RuntimeError as e:\n    print('sub-call failed:', e)\n"
             "child = rlm_query('child task: shout', context='abc')\n"
             "print('child said', child)" % INJECTED)},
        {"match": "sub question that fails", "error": "provider overloaded"},
        {"match": "child task: shout", "prompt_tokens": 300, "completion_tokens": 30,
         "response": fence % "SUBMIT(answer=context.upper())"},
        {"match": "child said ABC", "prompt_tokens": 1100, "completion_tokens": 110,
         "response": fence % "while True:\n    pass"},
        {"match": "TimeoutError", "prompt_tokens": 1200, "completion_tokens": 120,
         "response": fence % "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"},
        {"match": "the interpreter was restarted", "prompt_tokens": 1300,
         "completion_tokens": 130,
         "response": fence % "SUBMIT(answer='42', confidence=0.9, evidence=['a', 'b'])"},
    ]


ANSWER = '{"answer":"42","confidence":0.9,"evidence":["a","b"]}'


class Page(html.parser.HTMLParser):
    """Every tag with its attributes, and the text of each <script>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.scripts, self._in_script = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append([dict(attrs), ""])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self.scripts[-1][1] += data


def page_data(path):
    with open(path, encoding="utf-8") as f:
        p = Page()
        p.feed(f.read())
    blocks = [text for attrs, text in p.scripts if attrs.get("type") == "application/json"]
    return p, json.loads(blocks[0])


class Run(object):
    """The scripted run, its page and two variants, made once for every test (setUpModule)."""
    dir = work = traj = html = run_json = None


def setUpModule():
    keep = os.environ.get("RLM_TEST_TRAJECTORIES")
    if keep:
        Run.dir = os.path.join(keep, "view")
        shutil.rmtree(Run.dir, ignore_errors=True)
        os.makedirs(Run.dir)
    else:
        Run.dir = tempfile.mkdtemp(prefix="rlm-test-view-")
    Run.work = tempfile.mkdtemp(prefix="rlm-test-view-work-")
    script = os.path.join(Run.work, "script.jsonl")
    with open(script, "w") as f:
        for e in script_entries():
            f.write(json.dumps(e) + "\n")
    Run.traj = os.path.join(Run.dir, "run.jsonl")
    p = rlm("run", "-q", "Answer with several fields.", "--llm", "replay", "--script", script,
            "--set", "llm.match=key", "--set", "limits.max_depth=1",
            "--set", "limits.execute_timeout_s=2", "--trajectory", Run.traj, "--json")
    if p.returncode != 0:
        raise AssertionError("rlm run failed (%d): %s" % (p.returncode, p.stderr))
    Run.run_json = json.loads(p.stdout)
    Run.html = os.path.join(Run.work, "run.html")
    p = rlm("view", Run.traj, "-o", Run.html)
    if p.returncode != 0:
        raise AssertionError("rlm view failed (%d): %s" % (p.returncode, p.stderr))
    with open(Run.traj) as f:
        lines = f.read().splitlines()
    with open(Run.traj[:-len(".jsonl")] + ".summary.json") as f:
        summary = json.load(f)
    # The format before the sidecar (a summary line at the end), with a torn line in it.
    with open(os.path.join(Run.work, "old.jsonl"), "w") as f:
        f.write("\n".join(lines[:2] + ['{"type": "iteration", "resp'] + lines[2:] +
                          [json.dumps(summary)]) + "\n")
    # A run still going: two turns, no summary yet.
    with open(os.path.join(Run.work, "going.jsonl"), "w") as f:
        f.write("\n".join(lines[:3]) + "\n")
    for name in ("old", "going"):
        p = rlm("view", os.path.join(Run.work, name + ".jsonl"))
        if p.returncode != 0:
            raise AssertionError("rlm view %s failed: %s" % (name, p.stderr))


def tearDownModule():
    shutil.rmtree(Run.work, ignore_errors=True)
    if not os.environ.get("RLM_TEST_TRAJECTORIES"):
        shutil.rmtree(Run.dir, ignore_errors=True)


class ViewTest(unittest.TestCase):
    def setUp(self):
        self.traj, self.html, self.work = Run.traj, Run.html, Run.work

    # ---- the command

    def test_help_and_usage_errors(self):
        p = rlm("view", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: rlm view TRAJECTORY [-o FILE.html]", p.stdout)
        self.assertEqual(rlm("view").returncode, 2)
        self.assertEqual(rlm("view", self.traj, "--bogus").returncode, 2)
        self.assertEqual(rlm("view", self.traj, "-o").returncode, 2)
        p = rlm("view", os.path.join(self.work, "missing.jsonl"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot read", p.stderr)
        other = os.path.join(self.work, "other.txt")
        with open(other, "w") as f:
            f.write("just text\n")
        p = rlm("view", other, "-o", os.path.join(self.work, "other.html"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("not an rlm trajectory", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.work, "other.html")))

    def test_default_output_is_beside_the_trajectory(self):
        copy = os.path.join(self.work, "copy.jsonl")
        shutil.copy(self.traj, copy)
        p = rlm("view", copy)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.work, "copy.html")))
        p = rlm("view", copy, "-o", "-")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("<!DOCTYPE html>"))

    # ---- the page as a file

    def test_page_loads_nothing_from_anywhere(self):
        p, _ = page_data(self.html)
        for tag, attrs in p.tags:
            for name in ("src", "srcset", "action", "formaction", "data"):
                self.assertNotIn(name, attrs, (tag, attrs))
            if tag == "link":
                self.assertEqual(attrs.get("href"), "data:,", attrs)
        csp = [a["content"] for t, a in p.tags
               if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
        self.assertEqual(len(csp), 1)
        self.assertIn("default-src 'none'", csp[0])
        scripts = [a for a, _ in p.scripts]
        self.assertEqual(len(scripts), 2)  # the data and the renderer
        nonce = scripts[1].get("nonce")
        self.assertTrue(nonce and len(nonce) >= 32)
        self.assertIn("'nonce-%s'" % nonce, csp[0])
        with open(self.html, encoding="utf-8") as f:
            text = f.read()
        self.assertNotIn("http://", text.replace("http://www.w3.org", ""))
        self.assertNotIn("https://", text)

    def test_data_cannot_close_its_script(self):
        p, data = page_data(self.html)
        raw = [text for attrs, text in p.scripts if attrs.get("type") == "application/json"][0]
        self.assertNotIn("<", raw)
        self.assertNotIn(">", raw)
        self.assertIn(INJECTED, json.dumps(data, ensure_ascii=False).replace("\\\"", '"'))
        self.assertFalse(any(a.get("id") == "pwned" for t, a in p.tags))

    def test_data_nests_the_child_and_keeps_each_history_once(self):
        _, data = page_data(self.html)
        its = data["iterations"]
        self.assertEqual(len(its), 4)
        self.assertTrue(all("prompt" not in it and it["prompt_len"] >= 2 for it in its))
        self.assertEqual(len(data["messages"]), its[-1]["prompt_len"])
        calls = its[0]["code_blocks"][0]["result"]["rlm_calls"]
        self.assertEqual([c["type"] for c in calls], ["llm_query", "rlm_query"])
        self.assertEqual(calls[0]["response"], "")
        self.assertIn("provider overloaded", calls[0]["error"])
        self.assertEqual(calls[1]["trajectory"][0]["final_answer"], "ABC")
        self.assertEqual(len(calls[1]["messages"]), 2)
        self.assertEqual(data["summary"]["answer"], ANSWER)
        self.assertEqual(data["problems"], [])

    def test_run_json_is_the_summary(self):
        with open(self.traj[:-len(".jsonl")] + ".summary.json") as f:
            summary = json.load(f)
        for key, value in Run.run_json.items():
            if key != "duration_s":
                self.assertEqual(summary[key], value, key)
        self.assertEqual(summary["usage"]["prompt_tokens"], 4900)
        self.assertEqual(summary["usage"]["completion_tokens"], 490)
        self.assertEqual(summary["usage"]["llm_calls"], 6)

    def test_older_and_unfinished_trajectories(self):
        _, data = page_data(os.path.join(self.work, "old.html"))
        self.assertEqual(data["summary"]["answer"], ANSWER)
        self.assertEqual(len(data["iterations"]), 4)
        self.assertEqual(data["problems"], ["line 3: not a JSON object, skipped"])
        _, data = page_data(os.path.join(self.work, "going.html"))
        self.assertIsNone(data["summary"])
        self.assertEqual(len(data["iterations"]), 2)


# ---- the browser

class DevTools(object):
    """Headless Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out, messages
    separated by NUL): one page, every event kept."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="rlm-test-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def child_fds():  # out of the way first: either end may already be fd 3 or 4
            r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", "--remote-debugging-pipe",
             "--user-data-dir=" + self.profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=child_fds)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.seq = 0
        self.events = []
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call("Target.attachToTarget",
                                     {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Network", "Log", "Runtime", "Page"):
                self.call(domain + ".enable", session=True)
        except BaseException:
            self.close()
            raise

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("chromium did not answer in time")
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if ready:
                data = os.read(self.from_chrome, 1 << 20)
                if not data:
                    raise AssertionError("chromium closed the pipe (exit %r)" % self.proc.poll())
                self.buf += data
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=False, timeout=BROWSER_DEADLINE):
        self.seq += 1
        msg = {"id": self.seq, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.seq:
                if "error" in reply:
                    raise AssertionError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method, timeout=BROWSER_DEADLINE):
        deadline = time.monotonic() + timeout
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            e = self._read(deadline)
            self.events.append(e)
            if e.get("method") == method:
                return e

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                      session=True)
        if "exceptionDetails" in r:
            raise AssertionError("page script failed: %r" % (r["exceptionDetails"],))
        return r["result"].get("value")

    def load(self, path, until=None):
        """Opens a file; waits for its load event and, if given, for the expression to hold."""
        self.events = []
        self.call("Page.navigate", {"url": "file://" + os.path.abspath(path)}, session=True)
        self.wait_event("Page.loadEventFired")
        deadline = time.monotonic() + BROWSER_DEADLINE
        while until and not self.evaluate(until):
            if time.monotonic() > deadline:
                raise AssertionError("the page never got to: " + until)
            time.sleep(0.05)

    def requests(self):
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def errors(self):
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(p["entry"].get("text"))
            elif m == "Runtime.exceptionThrown":
                out.append(json.dumps(p.get("exceptionDetails"))[:300])
            elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
                out.append(json.dumps(p.get("args"))[:300])
        return out


FACTS = r"""(function () {
  function all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function text(sel) { var e = document.querySelector(sel); return e ? e.textContent : null; }
  var root = all('#iterations > .iteration');
  var childRuns = all('.child-run');
  var child = childRuns[0];
  return {
    title: document.title,
    pwned: document.getElementById('pwned') !== null,
    rootIterations: root.length,
    rootDepths: root.map(function (e) { return e.getAttribute('data-depth'); }),
    childRuns: childRuns.length,
    childIterations: child ? all('.iteration', child).length : 0,
    childDepth: child ? all('.iteration', child)[0].getAttribute('data-depth') : null,
    childInsideCall: child ? child.parentElement.getAttribute('data-call-type') : null,
    childCallInsideRootIteration: child ? child.closest('#iterations > .iteration') === root[0] : false,
    childAnswer: child ? all('.final-answer', child).map(function (e) { return e.textContent; }) : [],
    answer: text('#answer .final-answer'),
    answerBadges: all('#answer .badge').map(function (e) { return e.textContent; }),
    submitFields: all('table.submit').length ? all('tr', all('table.submit')[0]).map(function (r) {
      return [r.cells[0].textContent, r.cells[1].textContent]; }) : [],
    totals: {
      iterations: text('#total-iterations .v'), llmCalls: text('#total-llm-calls .v'),
      promptTokens: text('#total-prompt-tokens .v'),
      completionTokens: text('#total-completion-tokens .v') },
    turnTokens: root.map(function (e) {
      var b = all('.badge.tokens', e)[0]; return b ? b.textContent : null; }),
    badges: root.map(function (e) { return all('.badge', e).map(function (b) { return b.textContent; }); }),
    failedCalls: all('.call.failed').map(function (e) { return e.textContent; }),
    injectedShownAsText: all('pre').some(function (e) {
      return e.textContent.indexOf('</script><script id="pwned">') >= 0; }),
    noSummaryNote: document.body.textContent.indexOf('No summary file beside the trajectory') >= 0
  };
})()"""


class LoopbackServer(object):
    """An HTTP server on 127.0.0.1 that counts what it is asked for."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass
        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@unittest.skipUnless(CHROMIUM, "chromium is not installed (apt-get install chromium): the "
                               "browser checks of `rlm view` did not run")
class BrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.browser = DevTools()

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()

    def test_rendered_page_shows_the_run(self):
        b = self.browser
        b.load(Run.html, until="document.body.getAttribute('data-rendered') === '1'")
        facts = b.evaluate(FACTS)
        self.assertEqual(b.errors(), [])
        self.assertEqual(facts["title"], "run.jsonl - rlm view")
        self.assertFalse(facts["pwned"])
        self.assertTrue(facts["injectedShownAsText"])
        # Iterations, and the child run nested inside the rlm_query call that made it.
        self.assertEqual(facts["rootIterations"], 4)
        self.assertEqual(facts["rootDepths"], ["0", "0", "0", "0"])
        self.assertEqual(facts["childRuns"], 1)
        self.assertEqual(facts["childIterations"], 1)
        self.assertEqual(facts["childDepth"], "1")
        self.assertEqual(facts["childInsideCall"], "rlm_query")
        self.assertTrue(facts["childCallInsideRootIteration"])
        self.assertEqual(facts["childAnswer"], ["ABC"])
        # The answer, the SUBMIT fields, the totals and the real token counts.
        self.assertEqual(facts["answer"], ANSWER)
        self.assertIn("answered (SUBMIT)", facts["answerBadges"])
        self.assertEqual(facts["submitFields"], [["answer", "42"], ["confidence", "0.9"],
                                                 ["evidence", '[\n  "a",\n  "b"\n]']])
        self.assertEqual(facts["totals"], {"iterations": "4", "llmCalls": "6",
                                           "promptTokens": "4,900", "completionTokens": "490"})
        self.assertEqual(facts["turnTokens"], ["turn: 1,000 in / 100 out",
                                               "turn: 1,100 in / 110 out",
                                               "turn: 1,200 in / 120 out",
                                               "turn: 1,300 in / 130 out"])
        self.assertIn("2 sub-calls: 300 in / 30 out", facts["badges"][0])
        # The marks: the failed call, the timed-out cell, the lost state.
        self.assertEqual(len(facts["failedCalls"]), 1)
        self.assertIn("provider overloaded", facts["failedCalls"][0])
        self.assertIn("timed out", facts["badges"][1])
        self.assertIn("state lost", facts["badges"][2])
        self.assertIn("SUBMIT", facts["badges"][3])
        # Nothing but the file itself was requested.
        urls = b.requests()
        self.assertIn("file://" + os.path.abspath(Run.html), urls)
        self.assertEqual([u for u in urls if not u.startswith(("file:", "data:"))], [])

    def test_page_without_summary_sums_the_lines(self):
        b = self.browser
        b.load(os.path.join(Run.work, "going.html"),
               until="document.body.getAttribute('data-rendered') === '1'")
        facts = b.evaluate(FACTS)
        self.assertEqual(b.errors(), [])
        self.assertTrue(facts["noSummaryNote"])
        self.assertEqual(facts["rootIterations"], 2)
        self.assertEqual(facts["totals"]["promptTokens"], "2,400")  # 1000 + 300 + 1100

    def test_request_check_sees_a_page_that_does_fetch(self):
        """The control: a page that loads from a loopback server is caught by the same check
        (so the check above can fail)."""
        server = LoopbackServer()
        self.addCleanup(server.close)
        control = os.path.join(Run.work, "control.html")
        url = "http://127.0.0.1:%d/" % server.port
        with open(control, "w") as f:
            f.write('<!DOCTYPE html><html><body><img src="%spixel.png"><script>'
                    'fetch("%sdata").then(function () { document.body.setAttribute('
                    '"data-done", "1"); }, function () { document.body.setAttribute('
                    '"data-done", "1"); });</script></body></html>' % (url, url))
        b = self.browser
        b.load(control, until="document.body.getAttribute('data-done') === '1'")
        urls = [u for u in b.requests() if u.startswith("http:")]
        self.assertIn(url + "data", urls)
        self.assertIn(url + "pixel.png", urls)
        deadline = time.monotonic() + 30
        while len(server.hits) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(sorted(server.hits), ["/data", "/pixel.png"])


if __name__ == "__main__":
    RLM = sys.argv.pop(1)
    if not CHROMIUM:
        print("SKIP: chromium is not installed, so `rlm view`'s page was not loaded in a "
              "browser (apt-get install chromium; the Makefile's DEBIAN_PACKAGES has it)",
              file=sys.stderr)
    unittest.main()
