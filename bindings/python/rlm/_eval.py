"""_eval.py - rlm.eval: a set of RLM tasks on a sandbox pool, the engine of `rlm eval`
(rlm/eval.h), with the same task file, results file, resume, shards and scorers.

    summary = rlm.eval("tasks.jsonl", out="runs/eval1", backend="daytona", llm="openai",
                       model="gpt-4o-mini", concurrency=16)
    print(summary.ok, summary.mean_score)
    for row in summary.results(): ...

tasks is the path of a JSONL task file, or a list of task dicts ({"id", "query",
"context" or "context_file", "expected", "scorer", "options", "metadata"}), written to
<out>/tasks.jsonl first. A second call with the same out resumes: finished tasks are kept.
"""
import ctypes
import json
import math
import os

from . import _core, _lib
from ._hostcalls import RunLLM
from .run import CancelFlag

EVAL_KEYWORDS = ("out", "concurrency", "llm", "model", "scorer", "task_timeout", "limit",
                 "shard", "retries", "dry_run", "max_live", "warm", "creates_per_s",
                 "acquire_timeout", "on_progress", "cancel", "config")


class EvalSummary:
    """How an eval's tasks stand: total, ok, task_error, infra_error, missing, kept,
    to_run, finished, scored, mean_score (None when nothing was scored), p50_s, p95_s,
    tokens_in, tokens_out, llm_calls, wall_s, tasks_per_min, cancelled, stop_code and
    stop_message (why it stopped early; 0 and "" when it did not), unusable, results_path,
    workers, max_live, creates_per_s, run_id (the sandboxes' rlm-run label)."""

    def __init__(self, s):
        for name, _ in _lib.EvalSummary._fields_:
            v = getattr(s, name)
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            setattr(self, name, v)
        if isinstance(self.mean_score, float) and math.isnan(self.mean_score):
            self.mean_score = None
        self.cancelled = bool(self.cancelled)
        self.unusable = bool(self.unusable)

    def results(self):
        """The rows of the results file, the last row of each id winning (in file order)."""
        rows = {}
        if self.results_path and os.path.exists(self.results_path):
            with open(self.results_path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        row = json.loads(line)
                        rows.pop(row.get("id"), None)
                        rows[row.get("id")] = row
        return list(rows.values())

    def to_dict(self):
        return {name: getattr(self, name) for name, _ in _lib.EvalSummary._fields_}

    def __repr__(self):
        return ("EvalSummary(total=%d, ok=%d, task_error=%d, infra_error=%d, missing=%d, "
                "mean_score=%r)" % (self.total, self.ok, self.task_error, self.infra_error,
                                    self.missing, self.mean_score))


def _progress_callback(fn):
    def on_progress(ctx, p):
        try:
            p = p.contents
            d = {}
            for name, _ in _lib.EvalProgress._fields_:
                v = getattr(p, name)
                d[name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
            for k in ("mean_score", "score"):
                if isinstance(d[k], float) and math.isnan(d[k]):
                    d[k] = None
            fn(d)
        except BaseException:  # never unwind into C
            pass
    return _lib.EVAL_PROGRESS_FN(on_progress)


def eval(tasks, *, out, backend=None, concurrency=None, llm=None, model=None, scorer=None,
         task_timeout=None, limit=None, shard=None, retries=None, dry_run=False,
         max_live=None, warm=None, creates_per_s=None, acquire_timeout=None, on_progress=None,
         cancel=None, config=None, **options):
    """Runs an eval and returns an EvalSummary (see the module docstring). llm names a
    provider plugin, or is a callable as for rlm.run (called from the eval's worker threads
    at once: it must be thread-safe); shard is (index, count); on_progress(dict) is called
    after every finished task; cancel is an rlm.CancelFlag. Errors that stop the eval before
    it runs (bad task file, bad config, no LLM, no sandbox) raise rlm.Error."""
    cfg, backend = _core.make_config(backend, options, config, "rlm.eval()", EVAL_KEYWORDS)
    runner = None
    try:
        if callable(llm):
            runner = RunLLM(llm)
        elif llm is not None:
            cfg.set("llm.provider", llm)
        if model is not None:
            cfg.set("llm.model", model)
        out = os.fspath(out)
        if not isinstance(tasks, (str, os.PathLike)):
            os.makedirs(out, exist_ok=True)
            path = os.path.join(out, "tasks.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                for t in tasks:
                    f.write(json.dumps(t, ensure_ascii=False) + "\n")
            tasks = path
        o = _lib.EvalOptions()
        o.struct_size = ctypes.sizeof(_lib.EvalOptions)
        o.retries = -1
        o.tasks_path = os.fsencode(tasks)
        o.out_dir = os.fsencode(out)
        if concurrency is not None:
            o.concurrency = int(concurrency)
        if task_timeout is not None:
            o.task_timeout_s = float(task_timeout)
        if scorer is not None:
            o.scorer = scorer.encode()
        if limit is not None:
            o.limit = int(limit)
        if shard is not None:
            o.shard_index, o.shard_count = int(shard[0]), int(shard[1])
        if retries is not None:
            o.retries = int(retries)
        o.dry_run = 1 if dry_run else 0
        if acquire_timeout is not None:
            o.acquire_timeout_s = float(acquire_timeout)
        if max_live is not None or warm is not None or creates_per_s is not None:
            po = _lib.PoolOptions()
            po.struct_size = ctypes.sizeof(_lib.PoolOptions)
            po.warm = -1 if warm is None else int(warm)
            if max_live is not None:
                po.max_live = int(max_live)
            if creates_per_s is not None:
                po.creates_per_s = float(creates_per_s)
            o.pool = ctypes.pointer(po)
        if on_progress is not None:
            o.on_progress = _progress_callback(on_progress)
        if runner is not None:
            o.llm = runner.c_fn
        if cancel is not None:
            if not isinstance(cancel, CancelFlag):
                raise TypeError("cancel must be an rlm.CancelFlag")
            o.cancel = ctypes.pointer(cancel._flag)
        L = _lib.load()
        res = ctypes.POINTER(_lib.EvalSummary)()
        err = _lib.Error()
        _core.check(L.rlm_eval_run(cfg.handle, o, res, err), err)
        try:
            return EvalSummary(res.contents)
        finally:
            L.rlm_eval_summary_free(res)
    finally:
        cfg.close()


def score(scorer, answer, expected, task=None, timeout=None):
    """One answer's score by a scorer ("exact", "contains", "regex", "numeric", "f1",
    "cmd:COMMAND"); expected is any JSON value (a list: the best of its items)."""
    L = _core.lib()
    out = ctypes.c_double()
    err = _lib.Error()
    _core.check(L.rlm_eval_score(scorer.encode(), str(answer).encode(),
                                 json.dumps(expected).encode(),
                                 json.dumps(task).encode() if task is not None else None,
                                 float(timeout or 0), out, err), err)
    return out.value


def report(paths, format="text", link_dir=None):
    """A report over eval results (out dirs or results files): "text", "json" (parsed) or
    "html" (one self-contained page)."""
    formats = {"text": 0, "json": 1, "html": 2}
    if format not in formats:
        raise ValueError("format must be one of %s" % ", ".join(formats))
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    enc = [os.fsencode(p) for p in paths]
    arr = (_lib.c_char_p * len(enc))(*enc)
    out = _lib.c_void_p()
    err = _lib.Error()
    L = _core.lib()
    _core.check(L.rlm_eval_report(arr, len(enc), formats[format],
                                  os.fsencode(link_dir) if link_dir else None, out, err), err)
    text = _lib.take_string(out)
    return json.loads(text) if format == "json" else text
