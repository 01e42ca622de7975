"""run.py - rlm.run: the RLM loop (rlm_run) from Python.

    result = rlm.run("How many lines mention ERROR?", context=pathlib.Path("app.log"),
                     llm="openai", model="gpt-4o-mini", trajectory="runs/")
    print(result.answer, result.iterations, result.usage["llm_calls"])

llm= names a provider plugin ("openai", "anthropic", "replay"), or is a callable that answers
in this process: it gets the messages ([{role, content}], for the model's own turns) or the
prompt (a str, for llm_query) and returns the text; it also answers llm_query_batched and
child RLMs, so a harness can plug in the policy it trains without an HTTP server.
"""
import ctypes
import json
import os

from . import _core, _lib, errors
from ._hostcalls import RunLLM
from .interpreter import PACKAGE_KEYWORDS, Interpreter

RUN_KEYWORDS = ("llm", "model", "sub_llm", "sub_model", "trajectory", "tools", "interpreter",
                "max_iterations", "max_llm_calls", "max_depth", "max_output_chars",
                "time_limit", "llm_call_timeout", "config", "on_iteration", "cancel")


class CancelFlag:
    """A flag that stops a run from another thread: pass cancel=flag to rlm.run, then call
    flag.cancel(); the run raises rlm.CancelledError within about a second."""

    def __init__(self):
        self._flag = ctypes.c_int(0)

    def cancel(self):
        self._flag.value = 1

    @property
    def cancelled(self):
        return bool(self._flag.value)


class RunResult:
    """The outcome of a run: answer (text, or None), submit (the SUBMITted fields, or None for
    a fallback answer), each SUBMIT field as an attribute too, fallback (max_iterations ran
    out and a last call produced the answer), iterations, duration_s, usage (llm_calls,
    budget_calls, budget_max, prompt_tokens, completion_tokens, calls_by_depth), trajectory
    and summary (file paths, or None)."""

    _OWN = ("answer", "submit", "fallback", "iterations", "duration_s", "usage", "trajectory",
            "summary")

    def __init__(self, doc):
        for k in self._OWN:
            setattr(self, k, doc.get(k))
        self.fallback = bool(self.fallback)
        self.usage = self.usage or {}

    def __getattr__(self, name):
        submit = self.__dict__.get("submit")
        if name.startswith("__") or name == "submit":
            raise AttributeError(name)
        if submit and name in submit:
            return submit[name]
        why = ("SUBMIT fields: %s" % ", ".join(sorted(submit)) if submit else
               "the answer was not SUBMITted (fallback)" if submit is None else
               "SUBMIT was called with no fields")
        raise AttributeError("RunResult has no field %r; %s" % (name, why))

    def to_dict(self):
        return {k: getattr(self, k) for k in self._OWN}

    def __repr__(self):
        return "RunResult(answer=%r, iterations=%r%s)" % (
            self.answer, self.iterations, ", fallback=True" if self.fallback else "")


def _progress_callback(fn):
    def on_iteration(ctx, it):
        try:
            i = ctypes.cast(it, ctypes.POINTER(_lib.RunIteration)).contents
            fn({name: getattr(i, name) for name, _ in _lib.RunIteration._fields_})
        except BaseException:  # a progress callback must never unwind into C
            pass
    return _lib.PROGRESS_FN(on_iteration)


def run(query, context=None, *, backend=None, llm=None, model=None, sub_llm=None,
        sub_model=None, trajectory=None, tools=None, interpreter=None, max_iterations=None,
        max_llm_calls=None, max_depth=None, max_output_chars=None, time_limit=None,
        llm_call_timeout=None, config=None, on_iteration=None, cancel=None, _loop=None,
        **options):
    """Runs an RLM on query and returns a RunResult.

    context       the task's input: a str or bytes, or an os.PathLike naming a file; it goes
                  into the sandbox as the variable `context`, never into a prompt
    backend       the sandbox backend (None: the config's, else local); **options are its
                  options, as for rlm.Interpreter (timeout=, volume_name=, ...)
    llm           a provider name ("openai", "anthropic", "replay"), or a callable; None: the
                  config's llm section. model / sub_llm / sub_model: the config's llm.model,
                  sub_llm.provider, sub_llm.model
    tools         {"name": callable} sandbox code can call; the model is told about them
    interpreter   an rlm.Interpreter to run in (its tools apply); None: a fresh sandbox
    trajectory    a JSONL path (or a directory, ending in "/") for the visualizer
    time_limit    seconds for the whole run (rlm.RLMTimeoutError past it)
    on_iteration  callable(dict) after every turn
    cancel        an rlm.run.CancelFlag another thread may set
    Infrastructure and provider faults raise rlm.Error; a failing cell never does (the model
    sees it and goes on).
    """
    if interpreter is not None and (tools or options or backend is not None):
        raise TypeError("rlm.run: with interpreter=, give tools, backend and backend options "
                        "to the interpreter instead")
    if interpreter is not None and not isinstance(interpreter, Interpreter):
        raise TypeError("interpreter must be an rlm.Interpreter")
    cfg, backend = _core.make_config(backend, options, config, "rlm.run()",
                                     RUN_KEYWORDS + PACKAGE_KEYWORDS)
    own = None
    try:
        runner = None
        if callable(llm):
            runner = RunLLM(llm, _loop)
        elif llm is not None:
            cfg.set("llm.provider", llm)
        for key, value in (("llm.model", model), ("sub_llm.provider", sub_llm),
                           ("sub_llm.model", sub_model)):
            if value is not None:
                cfg.set(key, value)
        if tools and interpreter is None:
            own = Interpreter(backend, tools=tools, config=config, **options)
            own._hostcalls.loop = _loop
            interpreter = own
        return _run(cfg, query, context, runner, interpreter, trajectory, max_iterations,
                    max_llm_calls, max_depth, max_output_chars, time_limit, llm_call_timeout,
                    on_iteration, cancel)
    finally:
        if own is not None:
            own.shutdown()
        cfg.close()


def _run(cfg, query, context, runner, interpreter, trajectory, max_iterations, max_llm_calls,
         max_depth, max_output_chars, time_limit, llm_call_timeout, on_iteration, cancel):
    L = _core.lib()
    o = _lib.RunOptions()
    o.struct_size = ctypes.sizeof(_lib.RunOptions)
    o.max_depth = -1
    if not isinstance(query, str) or not query:
        raise TypeError("query must be a non-empty str")
    o.task = query.encode()
    keep = []  # buffers the options point into, alive until rlm_run returns
    if context is not None:
        if isinstance(context, os.PathLike):
            o.context_file = os.fsencode(context)
        elif isinstance(context, (str, bytes, bytearray)):
            data = context.encode() if isinstance(context, str) else bytes(context)
            buf = ctypes.create_string_buffer(data, len(data) + 1)
            keep.append(buf)
            o.context = ctypes.cast(buf, ctypes.c_void_p)
            o.context_len = len(data)
            if not data:
                o.context = None
        else:
            raise TypeError("context must be a str, bytes or a path (os.PathLike), not %s; "
                            "json.dumps() a structure first" % type(context).__name__)
    if trajectory is not None:
        t = os.fspath(trajectory)
        o.trajectory_path = os.fsencode(t)
    for field, value in (("max_iterations", max_iterations), ("max_llm_calls", max_llm_calls),
                         ("max_output_chars", max_output_chars)):
        if value is not None:
            setattr(o, field, int(value))
    if max_depth is not None:
        o.max_depth = int(max_depth)
    if time_limit is not None:
        o.timeout_s = float(time_limit)
    if llm_call_timeout is not None:
        o.llm_call_timeout_s = float(llm_call_timeout)
    if on_iteration is not None:
        o.on_iteration = _progress_callback(on_iteration)
        keep.append(o.on_iteration)
    if cancel is not None:
        if not isinstance(cancel, CancelFlag):
            raise TypeError("cancel must be an rlm.run.CancelFlag")
        o.cancel = ctypes.pointer(cancel._flag)
    if runner is not None:
        o.llm = runner.c_fn
    lock = None
    if interpreter is not None:
        lock = interpreter._lock
        lock.acquire()
        o.interp = interpreter._live()
        interpreter._sync_tools()
    out = _lib.c_void_p()
    err = _lib.Error()
    try:
        rc = L.rlm_run(cfg.handle, o, out, err)
    finally:
        if interpreter is not None:
            # rlm_run replaced the interpreter's call handler and cleared it afterwards.
            L.rlm_interp_set_call_handler(interpreter._handle,
                                          interpreter._hostcalls.c_handler, None)
            lock.release()
    if rc:
        cause = runner.last_exception if runner is not None else None
        try:
            _core.raise_error(rc, err)
        except errors.Error as e:
            if cause is not None:
                raise e from cause
            raise
    try:
        doc = json.loads(_lib.take_string(L.rlm_run_result_to_json(out)))
    finally:
        L.rlm_run_result_free(out)
    return RunResult(doc)
