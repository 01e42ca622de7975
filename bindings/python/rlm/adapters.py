"""adapters.py - rlm behind the interfaces harnesses already have.

CodeInterpreter: dspy's CodeInterpreter protocol (dspy.RLM(..., interpreter=...) or
    interpreter_factory=...): a `tools` dict, start(), execute(code, variables) returning
    FinalOutput when the code called SUBMIT, else the text it printed (or the value of a
    trailing expression), and raising CodeExecutionError (the code failed; the session lives),
    SyntaxError, or CodeInterpreterError (the sandbox failed; terminal), shutdown().
    dspy's own classes are used when dspy is importable; otherwise look-alikes with the same
    names, hierarchy and fields stand in.
code_tool_output / PythonInterpreter: rllm's CodeToolOutput fields (name, output, error,
    metadata, stdout, stderr) through rlm_tool_output_from_result; rllm's class when rllm is
    importable.
"""
import ast

from . import errors
from ._result import tool_output
from .interpreter import Interpreter

try:  # the real classes, so that dspy.RLM's `except` clauses and isinstance checks match
    from dspy.primitives.code_interpreter import (CodeInterpreterError,  # type: ignore
                                                  FinalOutput)
    try:
        from dspy.primitives.code_interpreter import CodeExecutionError  # type: ignore
    except ImportError:  # dspy before CodeExecutionError existed
        CodeExecutionError = CodeInterpreterError
except ImportError:
    class CodeInterpreterError(RuntimeError):
        """A failure the submitted code cannot repair (sandbox, protocol, setup): terminal
        for the session. (Stands in for dspy's class of the same name.)"""

    class CodeExecutionError(CodeInterpreterError):
        """The submitted code failed in a healthy interpreter; the session goes on."""

    class FinalOutput:
        """What execute() returns when the code called SUBMIT: .output is the dict of
        fields."""

        def __init__(self, output):
            self.output = output

        def __repr__(self):
            return "FinalOutput(%r)" % (self.output,)

        def __eq__(self, other):
            if not isinstance(other, FinalOutput):
                return NotImplemented
            return self.output == other.output


def _literal(value):
    """The Python value of a trailing expression's repr when it is a literal (numbers,
    strings, containers of them), else the repr itself."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value


class CodeInterpreter:
    """dspy's CodeInterpreter over any rlm backend:

        interp = rlm.adapters.CodeInterpreter(backend="daytona", tools={"search": search})
        dspy.RLM("question -> answer", interpreter=interp)

    output_fields: the signature's output field names (or dspy's [{"name": ...}] dicts):
    positional SUBMIT values map onto them, and a SUBMIT with other fields raises
    CodeExecutionError naming the ones expected. Other keywords as for rlm.Interpreter."""

    def __init__(self, backend=None, *, tools=None, output_fields=None, **options):
        self._interp = Interpreter(backend, **options)
        self._tools = dict(tools or {})
        self.output_fields = output_fields
        self._dead = None

    @property
    def tools(self):
        """A mutable dict: dspy.RLM adds llm_query-style tools to it; changes apply from the
        next execute()."""
        return self._tools

    @tools.setter
    def tools(self, value):
        self._tools = dict(value or {})

    def _field_names(self):
        names = []
        for f in self.output_fields or ():
            names.append(f["name"] if isinstance(f, dict) else getattr(f, "name", f))
        return names

    def start(self):
        """Idempotent. After the sandbox failed it raises instead of starting a new session
        silently."""
        if self._dead is not None:
            raise CodeInterpreterError(self._dead)
        try:
            self._interp.start()
        except errors.Error as e:
            raise CodeInterpreterError("rlm %s sandbox failed to start: %s"
                                       % (self._interp.backend, e)) from e

    def _sync_tools(self):
        mine = self._interp.tools
        for name in [n for n in mine if n not in self._tools]:
            del mine[name]
        for name, fn in self._tools.items():
            if mine.get(name) is not fn:
                try:
                    self._interp._hostcalls.add_tool(name, fn)
                except (TypeError, ValueError) as e:
                    raise CodeInterpreterError("Invalid tool name %r: %s" % (name, e)) from e

    def execute(self, code, variables=None):
        self.start()
        self._sync_tools()
        names = self._field_names()
        try:
            r = self._interp.execute(code, variables, output_names=names or None)
        except errors.Error as e:
            if isinstance(e, (errors.BackendError, errors.StateLostError,
                              errors.ProtocolError, errors.CancelledError)):
                self._dead = "the rlm sandbox failed: %s" % e
            raise CodeInterpreterError(str(e)) from e
        if r.state_lost:
            # The REPL was restarted: dspy's contract is to fail, not to go on silently.
            self._dead = "the sandbox's interpreter was restarted and its state lost: %s" % (
                r.error,)
            raise CodeInterpreterError(self._dead)
        if r.error is not None:
            if r.error.type in ("SyntaxError", "IndentationError", "TabError"):
                raise SyntaxError(r.error.line or r.error.message)
            raise CodeExecutionError(r.error.line or "%s: %s" % (r.error.type,
                                                                 r.error.message))
        if r.submit is not None:
            if names and set(r.submit) != set(names):
                raise CodeExecutionError(
                    "SUBMIT got fields %s; expected fields %s: call SUBMIT(%s)"
                    % (sorted(r.submit), names, ", ".join("%s=..." % n for n in names)))
            return FinalOutput(r.submit)
        text = r.stdout
        if r.stderr:
            text += r.stderr
        if not text and r.value is not None:
            return _literal(r.value)
        if r.value is not None:
            text += r.value
        return text.rstrip("\n") or None

    def __call__(self, code, variables=None):
        return self.execute(code, variables)

    def shutdown(self):
        """Ends the session: the interpreter is not used again (dspy's contract)."""
        self._interp.shutdown()
        if self._dead is None:
            self._dead = "the interpreter was shut down; create a new one for a new session"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()


# ---- rllm ----

try:
    from rllm.tools.tool_base import CodeToolOutput as _RLLMCodeToolOutput  # type: ignore
except ImportError:
    _RLLMCodeToolOutput = None


def code_tool_output(result, name="python"):
    """A Result as rllm's CodeToolOutput (rllm's class when installed, else rlm.ToolOutput
    with the same fields): name, output, error, metadata, stdout, stderr."""
    t = tool_output(result, name)
    if _RLLMCodeToolOutput is not None:
        return _RLLMCodeToolOutput(name=t.name, output=t.output, error=t.error,
                                   metadata=t.metadata, stdout=t.stdout, stderr=t.stderr)
    return t


class PythonInterpreter:
    """rllm's PythonInterpreter tool shape over any rlm backend: forward(code, timeout)
    returns a CodeToolOutput; one persistent sandbox per tool (state carries across calls)."""

    def __init__(self, backend=None, name="python", **options):
        self.name = name
        self._interp = Interpreter(backend, **options)

    def forward(self, code, timeout=12, **kwargs):
        try:
            r = self._interp.execute(code, timeout=timeout)
        except errors.Error as e:
            t = _tool_error(self.name, e)
            return t
        return code_tool_output(r, self.name)

    __call__ = forward

    def close(self):
        self._interp.shutdown()


def _tool_error(name, exc):
    """An infrastructure failure as a tool output: error says what failed."""
    from ._result import ToolOutput
    msg = ("Auth error: %s" % exc) if isinstance(exc, errors.AuthError) else (
        "Sandbox error: %s" % exc)
    meta = {"rlm_status": exc.status, "http_status": exc.http_status}
    if _RLLMCodeToolOutput is not None:
        return _RLLMCodeToolOutput(name=name, error=msg, metadata=meta, stdout="", stderr="")
    return ToolOutput(name, None, msg, meta, "", "", "[error] " + msg)
