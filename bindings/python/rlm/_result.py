"""_result.py - what a cell gives back (Result, ExecError, CommandResult) and its mapping to
the tool-output shape rllm's CodeToolOutput uses (ToolOutput, tool_output)."""
import ctypes
import json

from . import _lib

# The Result's own attributes: a SUBMIT field with one of these names is in .submit only.
OWN = frozenset(("stdout", "stderr", "value", "error", "timed_out", "state_lost",
                 "duration_ms", "submit", "submitted", "ok", "stdout_chars", "stderr_chars",
                 "truncated", "host_calls", "fields", "tool_output", "to_dict"))
OWN_DATA = ("stdout", "stderr", "value", "error", "submit", "timed_out", "state_lost",
            "duration_ms", "stdout_chars", "stderr_chars", "truncated", "host_calls")


class ExecError:
    """An exception raised by the user's code: type ("ZeroDivisionError"), message, line
    (the last traceback line, "ZeroDivisionError: division by zero") and traceback (user
    frames only)."""
    __slots__ = ("type", "message", "line", "traceback")

    def __init__(self, type, message, line, traceback):
        self.type, self.message, self.line, self.traceback = type, message, line, traceback

    def __repr__(self):
        return "ExecError(%r)" % (self.line or self.type,)

    def __str__(self):
        return self.line or "%s: %s" % (self.type, self.message)

    def __eq__(self, other):
        return isinstance(other, ExecError) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)


class _lazy:
    """functools.cached_property without its lock (3.11 takes one per access): the value is
    computed on first use and kept in the instance's __dict__, where later lookups find it."""

    def __init__(self, fn):
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        v = obj.__dict__[self.name] = self.fn(obj)
        return v


def _text(ptr, n):
    return ctypes.string_at(ptr, n).decode("utf-8", "replace") if n else ""


def _str(b):
    return b.decode("utf-8", "replace") if b is not None else None


class Result:
    """The outcome of one cell.

    stdout, stderr      what it printed (capped: head and tail kept, see truncated)
    value               repr of a trailing expression, or None
    error               ExecError, or None when the cell raised nothing
    submit              the SUBMITted fields (a dict), or None when SUBMIT was not called
    timed_out           the cell hit its timeout
    state_lost          the REPL was restarted: earlier variables are gone
    duration_ms         wall time of the cell as the host saw it
    Each SUBMIT field is also an attribute (result.answer), unless it has one of the names
    above: then it is only in result.submit.

    A Result reads the library's rlm_result lazily (each field on first use) and frees it
    when it is collected; pickling or to_dict() gives a plain copy.
    """

    def __init__(self, address):
        self._p = address  # of the library's rlm_result, freed in __del__

    @_lazy
    def _r(self):
        return _lib.ResultStruct.from_address(self._p)

    @classmethod
    def _from_dict(cls, d):
        r = cls.__new__(cls)
        r._p = r._r = None
        e = d.get("error")
        fields = dict(d)
        fields["error"] = ExecError(e["type"], e["message"], e["line"], e["traceback"]) \
            if e else None
        r.__dict__.update(fields)
        return r

    def __del__(self):
        p = self._p
        if p:
            self._p = None
            _free(p)

    @_lazy
    def stdout(self):
        r = self._r
        return _text(r.stdout_text, r.stdout_len)

    @_lazy
    def stderr(self):
        r = self._r
        return _text(r.stderr_text, r.stderr_len)

    @_lazy
    def error(self):
        e = self._r.error
        if not e:
            return None
        e = _lib.ExecErrorStruct.from_address(e)
        return ExecError(_str(e.type), _str(e.message), _str(e.line), _str(e.traceback))

    @_lazy
    def submit(self):
        s = self._r.submit_json
        return json.loads(s) if s is not None else None

    @_lazy
    def value(self):
        return _str(self._r.value)

    @_lazy
    def timed_out(self):
        return bool(self._r.timed_out)

    @_lazy
    def state_lost(self):
        return bool(self._r.state_lost)

    @_lazy
    def duration_ms(self):
        return self._r.duration_ms

    @_lazy
    def stdout_chars(self):
        return self._r.stdout_chars

    @_lazy
    def stderr_chars(self):
        return self._r.stderr_chars

    @_lazy
    def truncated(self):
        return bool(self._r.truncated)

    @_lazy
    def host_calls(self):
        return self._r.host_calls

    @property
    def submitted(self):
        """Whether the cell called SUBMIT."""
        return self.submit is not None

    @property
    def ok(self):
        """The cell ran to its end (or to SUBMIT) without an exception."""
        return self.error is None

    @property
    def fields(self):
        """The names of the SUBMIT fields (empty when nothing was SUBMITted)."""
        return list(self.submit or ())

    def __getattr__(self, name):
        # Only reached for names that are not attributes: the SUBMIT fields.
        if name.startswith("_") or name in OWN:
            raise AttributeError(name)
        submit = self.submit
        if submit and name in submit:
            return submit[name]
        if submit is None:
            why = "the cell did not call SUBMIT"
            if self.error is not None:
                why += " (it raised %s)" % self.error
        elif submit:
            why = "SUBMIT fields: %s" % ", ".join(sorted(submit))
        else:
            why = "SUBMIT was called with no fields"
        raise AttributeError("Result has no field %r; %s" % (name, why))

    def __dir__(self):
        return sorted(set(super().__dir__()) | {k for k in (self.submit or ()) if k not in OWN})

    def tool_output(self, name="python"):
        """This result as rllm's CodeToolOutput fields (see tool_output())."""
        return tool_output(self, name)

    def to_dict(self):
        return {"stdout": self.stdout, "stderr": self.stderr, "value": self.value,
                "error": None if self.error is None else {
                    k: getattr(self.error, k) for k in ExecError.__slots__},
                "submit": self.submit, "timed_out": self.timed_out,
                "state_lost": self.state_lost, "duration_ms": self.duration_ms,
                "stdout_chars": self.stdout_chars, "stderr_chars": self.stderr_chars,
                "truncated": self.truncated, "host_calls": self.host_calls}

    def __reduce__(self):
        return (Result._from_dict, (self.to_dict(),))

    def __repr__(self):
        parts = []
        if self.submit is not None:
            parts.append("submit=%r" % (self.submit,))
        if self.error is not None:
            parts.append("error=%r" % (self.error,))
        if self.stdout:
            parts.append("stdout=%r" % (self.stdout[:60] + ("..." if len(self.stdout) > 60
                                                             else ""),))
        if self.value is not None:
            parts.append("value=%r" % (self.value[:60],))
        if self.timed_out:
            parts.append("timed_out=True")
        if self.state_lost:
            parts.append("state_lost=True")
        return "Result(%s)" % ", ".join(parts)


def _free(p):
    lib = _lib._lib
    if lib is not None:
        lib.rlm_result_free(p)


class CommandResult:
    """What run_command gives back: exit_code (-signal when killed), stdout/stderr as text
    (invalid UTF-8 replaced), stdout_bytes/stderr_bytes as they came, timed_out."""
    __slots__ = ("exit_code", "stdout_bytes", "stderr_bytes", "timed_out")

    def __init__(self, exit_code, stdout_bytes, stderr_bytes, timed_out):
        self.exit_code = exit_code
        self.stdout_bytes = stdout_bytes
        self.stderr_bytes = stderr_bytes
        self.timed_out = timed_out

    @property
    def stdout(self):
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self):
        return self.stderr_bytes.decode("utf-8", "replace")

    @property
    def ok(self):
        return self.exit_code == 0 and not self.timed_out

    def __repr__(self):
        return "CommandResult(exit_code=%d, stdout=%r, stderr=%r%s)" % (
            self.exit_code, self.stdout[:60], self.stderr[:60],
            ", timed_out=True" if self.timed_out else "")


class ToolOutput:
    """rllm's CodeToolOutput fields: name, output (the SUBMITted JSON, else the trailing
    expression's repr, or None), error (the last traceback line, or a timeout / state-loss
    notice, or None), metadata (dict), stdout, stderr. to_string() is rlm's one policy for
    what a model sees (stdout, then [stderr], [error] and [output] parts; errors are never
    hidden)."""
    __slots__ = ("name", "output", "error", "metadata", "stdout", "stderr", "_text")

    def __init__(self, name, output, error, metadata, stdout, stderr, text):
        self.name, self.output, self.error, self.metadata = name, output, error, metadata
        self.stdout, self.stderr, self._text = stdout, stderr, text

    def to_string(self):
        return self._text

    __str__ = to_string

    def to_dict(self):
        return {k: getattr(self, k) for k in ("name", "output", "error", "metadata",
                                              "stdout", "stderr")}

    def __repr__(self):
        return "ToolOutput(%r)" % (self.to_dict(),)


def tool_output(result, name="python"):
    """Maps a Result with rlm_tool_output_from_result (rlm/tool_output.h)."""
    L = _lib.load()
    handle = getattr(result, "_p", None)
    if not handle:
        raise ValueError("tool_output needs a Result returned by execute() (not a copy)")
    t = L.rlm_tool_output_from_result(handle, name.encode())
    if not t:
        raise MemoryError("rlm_tool_output_from_result")
    try:
        doc = json.loads(_lib.take_string(L.rlm_tool_output_to_json(t)))
        n = _lib.c_size_t()
        p = L.rlm_tool_output_to_string_len(t, _lib.byref(n))
        try:
            text = ctypes.string_at(p, n.value).decode("utf-8", "replace")
        finally:
            L.rlm_free(p)
    finally:
        L.rlm_tool_output_free(t)
    return ToolOutput(doc.get("name"), doc.get("output"), doc.get("error"),
                      doc.get("metadata") or {}, doc.get("stdout") or "",
                      doc.get("stderr") or "", text)
