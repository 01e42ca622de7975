#!/usr/bin/env python3
"""Checks trajectory files against what alexzhang13/rlm's visualizer (visualizer/, Next.js)
needs to open them, and against rlm's own additions that `rlm view` reads.

The visualizer's rules, read from its source (src/lib/parse-logs.ts, src/lib/types.ts and the
components that render a log):
- parseJSONL splits the text on "\\n" after trim(), JSON.parses each line, keeps the line whose
  type is "metadata" as the config and takes EVERY other line for an iteration: so the file
  holds a metadata line and iteration lines, nothing else (a closing summary line crashed it).
- metadata: root_model, backend, environment_type are rendered as text (string or null);
  max_depth, max_iterations numbers or null; backend_kwargs, environment_kwargs objects or
  null; other_backends a list of strings or null.
- iteration: `prompt` a list of {role, content} strings (mapped, .content.length/.match);
  `response` a string (.slice, .length); `code_blocks` a list (.length, .map);
  `final_answer` a string or null (rendered as text; [string, string] is accepted too);
  `iteration_time` a number (toFixed; null falls back to the blocks' times); `iteration` an
  integer; `timestamp` an ISO-8601 date (new Date(...)).
- code block: `code` a string (split on "\\n" and numbered: no trailing newline, or an empty
  last line shows); `result` with `stdout`, `stderr` strings, `locals` an object (its entries
  are listed; a string value is shown as is), `execution_time` a number, `rlm_calls` a list.
- rlm call: `prompt` a string or an object, `response` a string (.slice: null crashed it),
  `execution_time` a number (toFixed), `prompt_tokens`/`completion_tokens` numbers when present.
- JSON.parse refuses NaN and Infinity, so no number may be one.

rlm's own rules on top: every iteration has type "iteration" and an integer depth; some
block of a file that has any shows variables (locals are filled, not always {}); a failed
rlm call keeps its reason in a string `error`; an rlm_query call's child turns are in
`trajectory`, a list of iterations under the same rules; the run's summary is in the sidecar
<name>.summary.json (run.jsonl -> run.summary.json), and its answer is the last turn's.

Usage: validate_trajectory.py [--require SUBDIR]... PATH...   (files, or directories searched
       for *.jsonl);  validate_trajectory.py --self-test
Exit status 0 when every file passes, 1 otherwise (each problem is printed)."""

import copy
import datetime
import json
import os
import re
import sys

ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?$")


class Problems(object):
    def __init__(self, path):
        self.path = path
        self.found = []

    def add(self, where, message):
        self.found.append("%s: %s: %s" % (self.path, where, message))


def _refuse_constant(name):
    raise ValueError("%s is not JSON that a browser parses" % name)


def parse_json(text):
    return json.loads(text, parse_constant=_refuse_constant)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_str_or_null(v):
    return v is None or isinstance(v, str)


def summary_path(trajectory_path):
    if trajectory_path.endswith(".jsonl") and len(trajectory_path) > len(".jsonl"):
        return trajectory_path[:-len(".jsonl")] + ".summary.json"
    return trajectory_path + ".summary.json"


def check_metadata(m, p, where):
    for key in ("root_model", "backend", "environment_type"):
        if not is_str_or_null(m.get(key)):
            p.add(where, "metadata.%s must be a string or null" % key)
    for key in ("max_depth", "max_iterations"):
        if m.get(key) is not None and not is_int(m.get(key)):
            p.add(where, "metadata.%s must be an integer or null" % key)
    for key in ("backend_kwargs", "environment_kwargs"):
        if m.get(key) is not None and not isinstance(m.get(key), dict):
            p.add(where, "metadata.%s must be an object or null" % key)
    ob = m.get("other_backends")
    if ob is not None and not (isinstance(ob, list) and all(isinstance(x, str) for x in ob)):
        p.add(where, "metadata.other_backends must be a list of strings or null")
    if not isinstance(m.get("timestamp"), str) or not ISO_8601.match(m["timestamp"]):
        p.add(where, "metadata.timestamp must be an ISO-8601 date")


def check_call(c, p, where):
    if not isinstance(c, dict):
        return p.add(where, "an rlm_calls item must be an object")
    if not isinstance(c.get("prompt"), (str, dict)):
        p.add(where, "prompt must be a string or an object")
    if not isinstance(c.get("response"), str):
        p.add(where, "response must be a string (a failed call: \"\" and an error)")
    if not is_number(c.get("execution_time")):
        p.add(where, "execution_time must be a number")
    for key in ("prompt_tokens", "completion_tokens"):
        if key in c and not is_int(c[key]):
            p.add(where, "%s must be an integer when present" % key)
    if "error" in c and not isinstance(c["error"], str):
        p.add(where, "error must be a string when present")
    if "trajectory" in c:
        child = c["trajectory"]
        if not isinstance(child, list):
            p.add(where, "trajectory (a child RLM's turns) must be a list")
        else:
            for k, it in enumerate(child):
                check_iteration(it, p, "%s.trajectory[%d]" % (where, k))


def check_block(b, p, where):
    if not isinstance(b, dict):
        return p.add(where, "a code block must be an object")
    code = b.get("code")
    if not isinstance(code, str):
        p.add(where, "code must be a string")
    elif code.endswith("\n"):
        p.add(where, "code ends with a newline (shown as an empty numbered line)")
    r = b.get("result")
    if not isinstance(r, dict):
        return p.add(where, "result must be an object")
    for key in ("stdout", "stderr"):
        if not isinstance(r.get(key), str):
            p.add(where, "result.%s must be a string" % key)
    if not isinstance(r.get("locals"), dict):
        p.add(where, "result.locals must be an object")
    if not is_number(r.get("execution_time")):
        p.add(where, "result.execution_time must be a number")
    calls = r.get("rlm_calls")
    if not isinstance(calls, list):
        return p.add(where, "result.rlm_calls must be a list")
    for k, c in enumerate(calls):
        check_call(c, p, "%s.rlm_calls[%d]" % (where, k))


def check_iteration(it, p, where):
    if not isinstance(it, dict):
        return p.add(where, "an iteration must be an object")
    if it.get("type") != "iteration":
        p.add(where, "type must be \"iteration\" (the visualizer takes every line but the "
                     "metadata for one), got %r" % (it.get("type"),))
    if not is_int(it.get("iteration")):
        p.add(where, "iteration must be an integer")
    if not is_int(it.get("depth")):
        p.add(where, "depth must be an integer")
    ts = it.get("timestamp")
    if not isinstance(ts, str) or not ISO_8601.match(ts):
        p.add(where, "timestamp must be an ISO-8601 date")
    else:
        try:
            datetime.datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            p.add(where, "timestamp is not a real date")
    prompt = it.get("prompt")
    if not isinstance(prompt, list):
        p.add(where, "prompt must be a list of {role, content}")
    else:
        for k, m in enumerate(prompt):
            if not (isinstance(m, dict) and isinstance(m.get("role"), str)
                    and isinstance(m.get("content"), str)):
                p.add(where, "prompt[%d] must be {role: string, content: string}" % k)
    if not isinstance(it.get("response"), str):
        p.add(where, "response must be a string")
    if not is_str_or_null(it.get("final_answer")):
        p.add(where, "final_answer must be a string or null")
    if not is_number(it.get("iteration_time")):
        p.add(where, "iteration_time must be a number")
    for key in ("prompt_tokens", "completion_tokens"):
        if key in it and not is_int(it[key]):
            p.add(where, "%s must be an integer when present" % key)
    blocks = it.get("code_blocks")
    if not isinstance(blocks, list):
        return p.add(where, "code_blocks must be a list")
    for k, b in enumerate(blocks):
        check_block(b, p, "%s.code_blocks[%d]" % (where, k))


def check_summary(s, p, where, last_iteration):
    if not isinstance(s, dict) or s.get("type") != "summary":
        return p.add(where, "the summary must be an object of type \"summary\"")
    if not is_str_or_null(s.get("answer")):
        p.add(where, "answer must be a string or null")
    if not isinstance(s.get("fallback"), bool):
        p.add(where, "fallback must be a boolean")
    if s.get("submit") is not None and not isinstance(s.get("submit"), dict):
        p.add(where, "submit must be an object or null")
    if not is_int(s.get("iterations")):
        p.add(where, "iterations must be an integer")
    if not is_number(s.get("duration_s")):
        p.add(where, "duration_s must be a number")
    u = s.get("usage")
    if not isinstance(u, dict):
        p.add(where, "usage must be an object")
    else:
        for key in ("llm_calls", "budget_calls", "budget_max", "prompt_tokens",
                    "completion_tokens"):
            if not is_int(u.get(key)):
                p.add(where, "usage.%s must be an integer" % key)
        by = u.get("calls_by_depth")
        if not (isinstance(by, list) and all(is_int(x) for x in by)):
            p.add(where, "usage.calls_by_depth must be a list of integers")
    e = s.get("error")
    if e is not None and not (isinstance(e, dict) and isinstance(e.get("code"), str)
                              and isinstance(e.get("message"), str)):
        p.add(where, "error must be null or {code: string, message: string}")
    if not isinstance(s.get("timestamp"), str) or not ISO_8601.match(s["timestamp"]):
        p.add(where, "timestamp must be an ISO-8601 date")
    if (isinstance(s.get("answer"), str) and e is None and isinstance(last_iteration, dict)
            and last_iteration.get("final_answer") != s["answer"]):
        p.add(where, "answer differs from the last turn's final_answer")


def check_text(path, text, summary_text):
    """Problems of one trajectory (its text, and its sidecar's text or None)."""
    p = Problems(path)
    # As parseJSONL does: trim, split on LF, drop blank lines.
    lines = [line for line in text.strip().split("\n") if line.strip()]
    if not lines:
        p.add("file", "no lines")
        return p.found
    iterations = []
    for n, line in enumerate(lines, 1):
        where = "line %d" % n
        try:
            obj = parse_json(line)
        except ValueError as e:
            p.add(where, "does not parse as JSON (%s)" % e)
            continue
        if not isinstance(obj, dict):
            p.add(where, "is not a JSON object")
            continue
        if obj.get("type") == "metadata":
            if n != 1:
                p.add(where, "a metadata line after the first line")
            check_metadata(obj, p, where)
            continue
        if n == 1:
            p.add(where, "the first line must be the metadata line")
        check_iteration(obj, p, where)
        iterations.append(obj)
    results = [b.get("result") for it in iterations if isinstance(it, dict)
               for b in (it.get("code_blocks") or []) if isinstance(b, dict)]
    if results and not any(isinstance(r, dict) and r.get("locals") for r in results):
        p.add("file", "every block's locals is empty (the Variables pane shows nothing)")
    root = [it for it in iterations if isinstance(it, dict) and it.get("depth") == 0]
    if len(root) != len(iterations):
        p.add("file", "a line of the file is not a root turn (depth 0): a child's turns go "
                      "inside the rlm_query call that ran it")
    if summary_text is None:
        p.add("summary", "no sidecar %s" % os.path.basename(summary_path(path)))
    else:
        try:
            s = parse_json(summary_text)
        except ValueError as e:
            p.add("summary", "does not parse as JSON (%s)" % e)
        else:
            check_summary(s, p, "summary", iterations[-1] if iterations else None)
    return p.found


def check_file(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        with open(summary_path(path), encoding="utf-8") as f:
            summary = f.read()
    except FileNotFoundError:
        summary = None
    return check_text(path, text, summary)


def find(paths):
    files = []
    for path in paths:
        if os.path.isdir(path):
            for d, _, names in sorted(os.walk(path)):
                files += [os.path.join(d, n) for n in sorted(names) if n.endswith(".jsonl")]
        else:
            files.append(path)
    return files


# ---- self-test: the validator rejects each rule's violation (so it can fail)

def _good():
    meta = {"type": "metadata", "timestamp": "2026-05-01T12:00:00.123456", "root_model": "m",
            "max_depth": 1, "max_iterations": 5, "backend": "replay", "backend_kwargs": {},
            "environment_type": "local", "environment_kwargs": {}, "other_backends": None}
    call = {"type": "llm_query", "depth": 1, "prompt": "p", "response": "r",
            "execution_time": 0.1, "prompt_tokens": 3, "completion_tokens": 1}
    child_turn = {"type": "iteration", "iteration": 1, "depth": 1,
                  "timestamp": "2026-05-01T12:00:01.000001", "prompt": [],
                  "response": "c", "code_blocks": [], "final_answer": "child",
                  "iteration_time": 0.2}
    child = {"type": "rlm_query", "depth": 1, "prompt": "q", "response": "child",
             "execution_time": 0.3, "trajectory": [child_turn]}
    block = {"code": "print(1)", "result": {"stdout": "1\n", "stderr": "", "locals": {"x": "1"},
                                            "execution_time": 0.01, "rlm_calls": [call, child]}}
    it = {"type": "iteration", "iteration": 1, "depth": 0,
          "timestamp": "2026-05-01T12:00:02.5", "prompt": [{"role": "system", "content": "s"}],
          "response": "```repl\nprint(1)\n```", "code_blocks": [block], "final_answer": "42",
          "iteration_time": 1.5}
    summary = {"type": "summary", "timestamp": "2026-05-01T12:00:03.0", "answer": "42",
               "fallback": False, "submit": {"answer": "42"}, "iterations": 1,
               "duration_s": 2.0, "usage": {"llm_calls": 3, "budget_calls": 2, "budget_max": 9,
                                            "prompt_tokens": 10, "completion_tokens": 2,
                                            "calls_by_depth": [1, 2]},
               "error": None, "trajectory": "t.jsonl"}
    return [meta, it], summary


def _text(lines):
    return "".join(json.dumps(x) + "\n" for x in lines)


def self_test():
    lines, summary = _good()
    found = check_text("good.jsonl", _text(lines), json.dumps(summary))
    assert not found, found
    blk = lambda ls: ls[1]["code_blocks"][0]  # noqa: E731
    broken = {
        "a closing summary line": lambda ls, s: ls.append(dict(s)),
        "a null sub-call response": lambda ls, s: blk(ls)["result"]["rlm_calls"][0].update(
            response=None),
        "code with a trailing newline": lambda ls, s: blk(ls).update(code="print(1)\n"),
        "locals not an object": lambda ls, s: blk(ls)["result"].update(locals=[]),
        "a string execution_time": lambda ls, s: blk(ls)["result"].update(execution_time="1"),
        "a call without execution_time": lambda ls, s: blk(ls)["result"]["rlm_calls"][0].pop(
            "execution_time"),
        "null tokens": lambda ls, s: blk(ls)["result"]["rlm_calls"][0].update(
            prompt_tokens=None),
        "prompt as a string": lambda ls, s: ls[1].update(prompt="hello"),
        "a message without content": lambda ls, s: ls[1]["prompt"][0].pop("content"),
        "a null response": lambda ls, s: ls[1].update(response=None),
        "final_answer an object": lambda ls, s: ls[1].update(final_answer={"a": 1}),
        "a float iteration": lambda ls, s: ls[1].update(iteration=1.5),
        "a bad timestamp": lambda ls, s: ls[1].update(timestamp="yesterday"),
        "no code_blocks": lambda ls, s: ls[1].pop("code_blocks"),
        "metadata not first": lambda ls, s: ls.reverse(),
        "an object root_model": lambda ls, s: ls[0].update(root_model={"x": 1}),
        "a child turn with a null response": lambda ls, s: blk(ls)["result"]["rlm_calls"][1][
            "trajectory"][0].update(response=None),
        "a child's turn at the top level": lambda ls, s: ls.append(
            blk(ls)["result"]["rlm_calls"][1]["trajectory"][0]),
        "NaN": lambda ls, s: ls[1].update(iteration_time=float("nan")),
        "a summary answer that is not the last turn's": lambda ls, s: s.update(answer="41"),
        "a summary without usage": lambda ls, s: s.pop("usage"),
        "no locals anywhere": lambda ls, s: blk(ls)["result"].update(locals={}),
    }
    for name, mutate in broken.items():
        ls, s = copy.deepcopy(lines), copy.deepcopy(summary)
        mutate(ls, s)
        if not check_text("broken.jsonl", _text(ls), json.dumps(s)):
            raise AssertionError("the validator accepted %s" % name)
    if not check_text("nosummary.jsonl", _text(lines), None):
        raise AssertionError("the validator accepted a trajectory without its summary")
    print("self-test: the good trajectory passes, %d broken ones fail" % (len(broken) + 1))
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    required, paths, args = [], [], argv[1:]
    while args:
        a = args.pop(0)
        if a == "--require" and args:
            required.append(args.pop(0))
        else:
            paths.append(a)
    if not paths:
        print(__doc__.strip().splitlines()[-4], file=sys.stderr)
        return 2
    files = find(paths)
    problems = []
    for req in required:  # a test that writes none would make this check vacuous
        if not any(os.sep + req + os.sep in f for f in files):
            problems.append("no trajectory under a %s/ directory: did its tests run?" % req)
    for path in files:
        problems += check_file(path)
    for line in problems:
        print(line)
    print("%d trajectories checked, %d problems" % (len(files), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
