"""_hostcalls.py - Python callables answering calls from sandbox code: named tools
(rlm_interp_register_tool) and llm_query / llm_query_batched (the interpreter's call handler,
or rlm_run_options.llm for a whole run).

Calls arrive on the thread that runs the cell (llm_query_batched inside rlm.run may use several
threads at once); ctypes takes the GIL for the callback. Arguments and results cross as JSON:
a result that json cannot encode is sent as its str(). An exception in a callable never
crosses into C: sandbox code sees RuntimeError("<Type>: <message>"), and the Python exception
is kept so that a run that fails because of it can chain it.
"""
import asyncio
import concurrent.futures
import inspect
import json
import keyword

from . import _lib, errors

RLM_EINVAL = -1
RLM_EBACKEND = -11
RLM_ETIMEOUT = -7
RESERVED = frozenset(("SUBMIT", "add_buffer", "get_buffer", "clear_buffer", "llm_query",
                      "llm_query_batched", "rlm_query", "VOLUME", "print"))


def check_tool_name(name):
    """TypeError/ValueError for a name sandbox code could not call (the library checks too)."""
    if not isinstance(name, str):
        raise TypeError("tool names must be str, not %s" % type(name).__name__)
    if (not name.isidentifier() or not name.isascii() or keyword.iskeyword(name)
            or name in RESERVED or (name.startswith("__") and name.endswith("__"))):
        raise errors.InvalidArgumentError(
            "invalid tool name %r: it must be a Python identifier that is not a keyword, a "
            "dunder or one of the sandbox's own names (%s)" % (name, ", ".join(sorted(RESERVED))),
            errors.InvalidArgumentError.status_code)


def describe(name, fn):
    """One line for the model: name(signature): the first line of the docstring."""
    try:
        sig = str(inspect.signature(fn))
    except (TypeError, ValueError):
        sig = "(...)"
    doc = (inspect.getdoc(fn) or "").strip().splitlines()
    return "%s%s%s" % (name, sig, ": " + doc[0] if doc else "")


def takes_model(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "model" or p.kind == p.VAR_KEYWORD for p in params)


def text_of(answer):
    """What an LLM callable returned, as text: a str; the first of a list (dspy.LM returns
    one); the content of a message dict."""
    if isinstance(answer, (list, tuple)) and answer:
        answer = answer[0]
    if isinstance(answer, dict):
        answer = answer.get("content", answer.get("text"))
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    if not isinstance(answer, str):
        raise TypeError("the llm callable must return text (a str), not %s"
                        % type(answer).__name__)
    return answer


def _set_out(out, data):
    out[0] = _lib.dup_bytes(data)


def resolve(value, loop):
    """value, or the result of awaiting it on loop() when a tool or llm callable gave a
    coroutine (rlm.aio: the loop waits for the cell in an executor, so it is free to run it)."""
    if not inspect.isawaitable(value):
        return value
    running = loop() if loop is not None else None
    if running is None:
        if inspect.iscoroutine(value):
            value.close()
        raise TypeError("a coroutine function was given as a tool or llm outside rlm.aio; "
                        "use rlm.aio's classes or a plain function")
    return asyncio.run_coroutine_threadsafe(_awaited(value), running).result()


async def _awaited(value):
    return await value


class LLM:
    """An LLM callable: prompt (str) or messages (list of {role, content}) -> text."""

    def __init__(self, fn, loop=None):
        if not callable(fn):
            raise TypeError("llm must be callable (or a provider name in rlm.run), not %s"
                            % type(fn).__name__)
        self.model_kw = takes_model(fn)
        self.fn = fn
        self.loop = loop

    def __call__(self, prompt, model=None):
        if self.model_kw:
            return text_of(resolve(self.fn(prompt, model=model), self.loop))
        return text_of(resolve(self.fn(prompt), self.loop))


class HostCalls:
    """Tools and the llm of one interpreter, behind one C callback. loop: None, or a callable
    returning the event loop that coroutine tools and llms run on (rlm.aio)."""

    def __init__(self, tools=None, llm=None, max_llm_calls=None, loop=None):
        self.tools = {}
        for name, fn in (tools or {}).items():
            self.add_tool(name, fn)
        self.llm = LLM(llm, loop) if llm is not None else None
        self.loop = loop
        self.max_llm_calls = max_llm_calls
        self.llm_calls = 0
        self.last_exception = None
        self.c_handler = _lib.CALL_HANDLER(self._on_call)

    @property
    def loop(self):
        """None, or a callable giving the event loop coroutine results run on."""
        return self._loop

    @loop.setter
    def loop(self, value):
        self._loop = value
        if self.llm is not None:
            self.llm.loop = value

    def add_tool(self, name, fn):
        check_tool_name(name)
        if not callable(fn):
            raise TypeError("tool %r is not callable (%s)" % (name, type(fn).__name__))
        self.tools[name] = fn

    # ---- the C callback (must never raise) ----
    def _on_call(self, ctx, name, args_json, kwargs_json, value_out, error_out):
        try:
            name = name.decode("utf-8", "replace")
            args = json.loads(args_json)
            kwargs = json.loads(kwargs_json)
            value = self.dispatch(name, args, kwargs)
            try:
                text = json.dumps(value)
            except (TypeError, ValueError):
                text = json.dumps(value, default=str)
            _set_out(value_out, text.encode())
            return 0
        except BaseException as e:  # noqa: B902 - nothing may unwind into C
            self.last_exception = e
            try:
                msg = "%s: %s" % (type(e).__name__, e)
                _set_out(error_out, msg.encode("utf-8", "replace"))
            except BaseException:
                pass
            return RLM_EINVAL

    def dispatch(self, name, args, kwargs):
        fn = self.tools.get(name)
        if fn is not None:
            return resolve(fn(*args, **kwargs), self.loop)
        if name == "llm_query":
            return self.query(args[0], kwargs.get("model"))
        if name == "llm_query_batched":
            return self.query_batched(args[0], kwargs.get("model"))
        if name == "rlm_query":
            raise RuntimeError("rlm_query needs the RLM loop: use rlm.run(...)")
        raise RuntimeError("no tool named %r on this interpreter" % name)

    def _take(self, n):
        if self.llm is None:
            raise RuntimeError("no LLM: give the interpreter llm=callable")
        if self.max_llm_calls is not None and self.llm_calls + n > self.max_llm_calls:
            raise RuntimeError("LLM call budget exhausted: %d of %d calls used"
                               % (self.llm_calls, self.max_llm_calls))
        self.llm_calls += n

    def query(self, prompt, model=None):
        self._take(1)
        return self.llm(prompt, model)

    def query_batched(self, prompts, model=None):
        self._take(len(prompts))

        def one(p):
            try:
                return self.llm(p, model)
            except Exception as e:
                return "[ERROR] %s: %s" % (type(e).__name__, e)
        if len(prompts) <= 1:
            return [one(p) for p in prompts]
        with concurrent.futures.ThreadPoolExecutor(min(8, len(prompts))) as ex:
            return list(ex.map(one, prompts))


class RunLLM:
    """rlm_run_options.llm over an LLM callable: the model's own turns get the messages, a
    sub-call (one user message) gets its prompt."""

    def __init__(self, fn, loop=None):
        self.llm = LLM(fn, loop)
        self.last_exception = None
        self.c_fn = _lib.LLM_FN(self._on_complete)

    def _on_complete(self, ctx, msgs, n, model, text_out, err):
        try:
            messages = [{"role": msgs[i].role.decode("utf-8", "replace"),
                         "content": msgs[i].content.decode("utf-8", "replace")}
                        for i in range(n)]
            if n == 1 and messages[0]["role"] == "user":
                request = messages[0]["content"]
            else:
                request = messages
            text = self.llm(request, model.decode() if model else None)
            _set_out(text_out, text.encode("utf-8", "replace"))
            return 0
        except BaseException as e:  # noqa: B902 - nothing may unwind into C
            self.last_exception = e
            code = e.code if isinstance(e, errors.Error) and e.code else (
                RLM_ETIMEOUT if isinstance(e, TimeoutError) else RLM_EBACKEND)
            try:
                e_ = err.contents
                e_.code = code
                msg = ("the llm callable raised %s: %s" % (type(e).__name__, e)).encode(
                    "utf-8", "replace")[:_lib.ERROR_MESSAGE_MAX - 1]
                e_.message = msg
            except BaseException:
                pass
            return code
