#!/usr/bin/env python3
"""rlm sandbox driver: a persistent Python REPL served over a JSON text-sequence channel.

A stdlib-only program (Python 3.8+) that runs inside every sandbox.  The contract with the
host (core/protocol.c) is core/driver/PROTOCOL.md; read that file before changing this one.

    python3 driver.py [--in-fd N --out-fd M] [--volume PATH] [--workdir PATH]

Start-up time matters (one driver per sandbox, often hundreds in parallel; the benchmark holds
it to 1.5x a bare `python3 -c pass`), so the driver imports only modules that are built in or
already loaded by the interpreter at start-up (`posix`, not `os`, which a -S start does not
load); json/re/ast/traceback/keyword are avoided or imported lazily.  A script run as __main__ is recompiled on every start, and compiling this
file costs about as much as starting the interpreter, so hosts run a precompiled copy where
they can (the local backend caches `driver.pyc` per interpreter; Python runs a .pyc directly).
"""

import sys

try:  # os without os: the C module os wraps (os imports a dozen modules, a tenth of a -S start)
    import posix as os
except ImportError:  # pragma: no cover - not a POSIX system
    import os

__version__ = "1.0.0"

import builtins
import codecs
import io
import time
import _thread

try:  # the C half of `signal`, without the enum machinery that `import signal` pulls in
    import _signal as signal
except ImportError:  # pragma: no cover - every CPython has _signal
    import signal

PROTOCOL_VERSION = 1

RESERVED = frozenset((
    "SUBMIT", "add_buffer", "get_buffer", "clear_buffer",
    "llm_query", "llm_query_batched", "rlm_query", "VOLUME",
))
DEFAULT_MAX_OUTPUT = 20000
ERROR_TEXT_MIN_CAP = 2000      # error message/traceback are capped at max(max_output, this)
READ_CHUNK = 1 << 16           # channel reads (a 1 MiB buffer costs an mmap per read)
PIPE_CHUNK = 1 << 16           # capture pipe reads
PRIVATE_FD_MIN = 10            # the channel and capture fds live at or above this fd
RESERVE_BYTES = 1 << 20        # memory released on MemoryError so the driver can answer
SCOPE_MAX = 64                 # longest scope name (child namespaces, see PROTOCOL.md)
SCOPE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
LOCALS_MAX = 100               # variables an exec with `locals: true` reports, at most
LOCALS_REPR_MAX = 200          # characters of each one's repr
LOCALS_TIME_S = 0.5            # for all of them: a __repr__ that hangs cannot hold the cell
TIMER_INTERVAL = 1.0           # a timed-out cell that swallowed its TimeoutError gets another

RS = b"\x1e"
LF = b"\n"


# --------------------------------------------------------------------------------------------
# JSON: the C accelerator of the json package is used directly (importing `json` costs more
# than the interpreter's own start-up because it imports `re`); the pure json package is the
# fallback.

def _json_default(obj):
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def _make_json():
    inf = float("inf")
    try:
        import _json

        class _Ctx(object):
            pass

        ctx = _Ctx()
        ctx.strict = True
        ctx.object_hook = None
        ctx.object_pairs_hook = None
        ctx.parse_float = float
        ctx.parse_int = int
        ctx.parse_constant = {"NaN": float("nan"), "Infinity": inf, "-Infinity": -inf}.__getitem__
        ctx.memo = {}
        scan = _json.make_scanner(ctx)
        make_encoder = _json.make_encoder
        encode_str = _json.encode_basestring

        def loads(text):
            text = text.strip(" \t\r\n")
            try:
                obj, end = scan(text, 0)
            except StopIteration as e:
                raise ValueError("Expecting value: char %s" % (e.value,))
            except SystemError:
                # _json reports errors as json.decoder.JSONDecodeError and cannot when that
                # module is not imported yet: import it (on this error path only) and retry.
                import json.decoder  # noqa: F401
                try:
                    obj, end = scan(text, 0)
                except StopIteration as e:
                    raise ValueError("Expecting value: char %s" % (e.value,))
            if end != len(text):
                raise ValueError("Extra data: char %d" % end)
            return obj

        def dumps(obj):
            enc = make_encoder({}, _json_default, encode_str, None, ":", ",", False, False, False)
            return "".join(enc(obj, 0))

        # self-test: a differently shaped _json must not break the driver
        sample = {"a": [1, 2.5, None, True, "\u00e9"]}
        if loads(dumps(sample)) != sample:
            raise ValueError("json self-test failed")
        return loads, dumps
    except Exception:
        import json

        def loads(text):
            return json.loads(text)

        def dumps(obj):
            return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                              default=_json_default)
        return loads, dumps


json_loads, json_dumps = _make_json()


def _json_str(text):
    """JSON text of a str, as json_dumps writes it."""
    return json_dumps(text)


try:
    from _json import encode_basestring as _json_str  # noqa: F811 - the same, in C
    if _json_str("\u00e9\n\"") != '"\u00e9\\n\\""':
        raise ImportError("unexpected _json.encode_basestring")
except ImportError:
    pass

_SURROGATES = None


def _encode_text(text):
    """UTF-8 encode; lone surrogates (e.g. from surrogateescape) become U+FFFD."""
    global _SURROGATES
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        if _SURROGATES is None:
            _SURROGATES = dict.fromkeys(range(0xD800, 0xE000), 0xFFFD)
        return text.translate(_SURROGATES).encode("utf-8", "replace")


def _safe_repr(obj):
    try:
        return repr(obj)
    except BaseException:
        try:
            return "<%s object>" % type(obj).__name__
        except BaseException:
            return "<object>"


def _sanitize(obj, depth=0):
    """A JSON-encodable copy of obj: odd values become strings instead of failing."""
    if obj is None or obj is True or obj is False:
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        try:
            str(obj)
            return int(obj)
        except BaseException:
            return "<int too large to convert>"
    if isinstance(obj, float):
        f = float(obj)
        if f != f or f in (float("inf"), float("-inf")):
            return repr(f)
        return f
    if depth > 64:
        return "..."
    if isinstance(obj, dict):
        out = {}
        for k, v in list(obj.items()):
            out[k if isinstance(k, str) else _safe_repr(k)] = _sanitize(v, depth + 1)
        return out
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v, depth + 1) for v in list(obj)]
    return _safe_repr(obj)


def encode_frame(obj):
    """bytes of one frame: RS, JSON, LF.  Never raises for any dict of driver values."""
    try:
        text = json_dumps(obj)
    except BaseException:
        try:
            text = json_dumps(_sanitize(obj))
        except BaseException:
            text = json_dumps({"type": str(obj.get("type", "result")), "id": None,
                               "error": {"type": "DriverError", "message": "unencodable frame",
                                         "traceback": "DriverError: unencodable frame\n",
                                         "line": "DriverError: unencodable frame"}})
    return RS + _encode_text(text) + LF


# A result frame's fields after its output: "stdout_chars" on.
_RESULT_REST = ('"stdout_chars":%d,"stderr_chars":%d,"truncated":%s,"error":%s,"submit":%s,'
                '"value":%s,"timed_out":%s,"duration_ms":%r}')
_RESULT_JSON = '{"type":"result","id":%s,"stdout":%s,"stderr":%s,' + _RESULT_REST
_RESULT_RAW_JSON = ('{"type":"result","id":%s,"stdout":null,"stderr":null,"stdout_bytes":%d,'
                    '"stderr_bytes":%d,' + _RESULT_REST)
RAW_OUTPUT_MIN = 512  # characters of output below which JSON strings cost no more


def _result_rest(stdout_chars, stderr_chars, truncated, error, submit, value, timed_out,
                 duration_ms):
    return (stdout_chars, stderr_chars, "true" if truncated else "false",
            "null" if error is None else json_dumps(error),
            "null" if submit is None else json_dumps(submit),
            "null" if value is None else _json_str(value),
            "true" if timed_out else "false", float(duration_ms))


def encode_result(rid, stdout, stderr, stdout_chars, stderr_chars, truncated, error, submit,
                  value, timed_out, duration_ms):
    """bytes of a result frame, the same as encode_frame(Driver.result_frame(...)) gives, but
    filled into a template: a cell's round trip is a few tens of microseconds, and building
    and walking a dict of 12 keys is a noticeable part of it."""
    try:
        text = _RESULT_JSON % ((_json_str(rid), _json_str(stdout), _json_str(stderr))
                               + _result_rest(stdout_chars, stderr_chars, truncated, error,
                                              submit, value, timed_out, duration_ms))
    except BaseException:
        return encode_frame(Driver.result_frame(rid, stdout, stderr, stdout_chars, stderr_chars,
                                                truncated, error, submit, value, timed_out,
                                                duration_ms))
    return RS + _encode_text(text) + LF


def encode_result_raw(rid, stdout, stderr, stdout_chars, stderr_chars, truncated, error, submit,
                      value, timed_out, duration_ms):
    """A result frame whose stdout and stderr follow its LF as raw UTF-8 (their byte counts in
    stdout_bytes / stderr_bytes), for a host whose exec said raw_output: escaping output for
    JSON and unescaping it again is most of a big print's round trip."""
    try:
        out = _encode_text(stdout)
        err = _encode_text(stderr)
        head = _RESULT_RAW_JSON % ((_json_str(rid), len(out), len(err))
                                   + _result_rest(stdout_chars, stderr_chars, truncated, error,
                                                  submit, value, timed_out, duration_ms))
        return b"".join((RS, _encode_text(head), LF, out, err))
    except BaseException:
        return encode_result(rid, stdout, stderr, stdout_chars, stderr_chars, truncated, error,
                             submit, value, timed_out, duration_ms)


def cap_text(text, limit):
    """Keep the first limit//2 and the last limit - limit//2 characters."""
    if len(text) <= limit:
        return text, False
    head = limit // 2
    tail = limit - head
    omitted = len(text) - head - tail
    return (text[:head] + "\n... [%d characters omitted] ...\n" % omitted
            + (text[-tail:] if tail > 0 else "")), True


# --------------------------------------------------------------------------------------------
# Control-flow exceptions raised inside user code.  BaseException subclasses, so an
# `except Exception` in user code cannot swallow them.

class _Submit(BaseException):
    pass


class _Timeout(BaseException):
    pass


# Reported and formatted as plain "TimeoutError: execution exceeded N s".
_Timeout.__name__ = _Timeout.__qualname__ = "TimeoutError"
_Timeout.__module__ = "builtins"
_Submit.__name__ = _Submit.__qualname__ = "SubmitExit"
_Submit.__module__ = "builtins"


class _ReprTimeout(BaseException):
    pass


_LOCALS_REPR = None


def _locals_repr():
    """A reprlib.Repr for locals, made on first use (reprlib is not imported at start-up).
    Unlike reprlib's own it never sorts a dict's keys or a set's items (O(n log n) on a big
    one, every cell) and cuts bytes before repr (repr of a 100 MB bytes is 400 MB)."""
    global _LOCALS_REPR
    if _LOCALS_REPR is not None:
        return _LOCALS_REPR
    import reprlib

    class LocalsRepr(reprlib.Repr):
        def repr_dict(self, x, level):
            if not x:
                return "{}"
            if level <= 0:
                return "{...}"
            pieces = []
            for i, key in enumerate(x):
                if i >= self.maxdict:
                    pieces.append("...")
                    break
                pieces.append("%s: %s" % (self.repr1(key, level - 1),
                                          self.repr1(x[key], level - 1)))
            return "{%s}" % ", ".join(pieces)

        def repr_set(self, x, level):
            return self._repr_iterable(x, level, "{", "}", self.maxset) if x else "set()"

        def repr_frozenset(self, x, level):
            return (self._repr_iterable(x, level, "frozenset({", "})", self.maxfrozenset)
                    if x else "frozenset()")

        def repr_bytes(self, x, level):
            return repr(x[:self.maxstring]) + ("..." if len(x) > self.maxstring else "")

        repr_bytearray = repr_bytes

    r = LocalsRepr()
    r.maxlevel = 3
    r.maxstring = r.maxother = r.maxlong = LOCALS_REPR_MAX
    r.maxdict = r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = 10
    _LOCALS_REPR = r
    return r


def _host_tool(drv, name):
    """The function sandbox code calls for host tool `name`."""
    def tool(*args, **kwargs):
        return drv.host_call(name, list(args), kwargs)
    tool.__name__ = tool.__qualname__ = name
    tool.__doc__ = "Host tool %r: runs on the host; arguments and result travel as JSON." % name
    return tool


def user_locals(ns, tools=None):
    """{name: capped repr} of the user variables in namespace ns (names not starting with _,
    not reserved), in definition order, for an exec that asked for `locals`.  repr runs user
    code (__repr__), so it runs under its own interval timer: past LOCALS_TIME_S in all, the
    names left get a placeholder.  Called between cells: host calls fail (no exec), and the
    waiting cell's timer, if any, is already stopped."""
    r = _locals_repr()
    out = {}
    expired = [False]
    armed = [True]

    def on_alarm(signum, frame):
        expired[0] = True
        if armed[0]:
            raise _ReprTimeout()

    tools = tools or {}
    names = [k for k in list(ns) if isinstance(k, str) and not k.startswith("_")
             and k not in RESERVED and (k not in tools or ns[k] is not tools[k])][:LOCALS_MAX]
    try:
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, LOCALS_TIME_S, 0.1)
    except (ValueError, OSError):
        pass
    try:
        try:
            for name in names:
                if expired[0]:
                    break
                try:
                    text = r.repr(ns.get(name))
                    if not isinstance(text, str):
                        text = "<%s object>" % type(text).__name__
                except _ReprTimeout:
                    text = "<not shown: repr took too long>"
                except BaseException:
                    text = "<not shown: repr failed>"
                if len(text) > LOCALS_REPR_MAX:
                    text = text[:LOCALS_REPR_MAX - 3] + "..."
                out[name] = text
        finally:
            armed[0] = False  # from here on the alarm only sets expired
            try:
                signal.setitimer(signal.ITIMER_REAL, 0, 0)
            except (ValueError, OSError):
                pass
    except _ReprTimeout:  # landed between two variables
        pass
    for name in names:
        if name not in out:
            out[name] = "<not shown: the time for variables ran out>"
    return out


# --------------------------------------------------------------------------------------------
# fd helpers

_log_fd = 2


def fatal(message):
    """Tells the backend's log why the driver is about to exit (best effort)."""
    if _log_fd is None:
        return
    try:
        write_all(_log_fd, ("rlm driver: %s\n" % (message,)).encode("utf-8", "replace"))
    except Exception:
        pass


def dup_high(fd):
    """A non-inheritable duplicate of fd numbered >= PRIVATE_FD_MIN."""
    low = []
    try:
        new = os.dup(fd)
        while new < PRIVATE_FD_MIN:
            low.append(new)
            new = os.dup(fd)
        return new
    finally:
        for x in low:
            os.close(x)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# --------------------------------------------------------------------------------------------
# Output capture: fd 1 / fd 2 are permanently the write ends of two pipes; one reader thread
# per pipe.  A cell's share of a stream is what the pipe delivers between Stream.begin and
# Stream.end; anything written between cells is dropped.

_fd_identity = {}


def repoint_fd(src, target):
    """dup2(src, target) unless target already is src's file.  The check matters for speed:
    dup2 over a pipe's write end closes it, which wakes the pipe's reader thread every cell.
    src is one of the driver's private fds, so its identity is looked up once."""
    try:
        ident = _fd_identity.get(src)
        if ident is None:
            st = os.fstat(src)
            ident = _fd_identity[src] = (st.st_ino, st.st_dev)
        st = os.fstat(target)
        if (st.st_ino, st.st_dev) == ident:
            return
    except OSError:
        pass
    os.dup2(src, target)


_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class Capture(object):
    """One cell's share of one stream: decoded incrementally, capped while reading (head and
    tail kept), counted in characters."""

    def __init__(self, max_output):
        self.decoder = None  # made on the first byte: most cells print nothing to stderr
        self.hmax = max_output // 2
        self.tmax = max_output - self.hmax
        self.head = []
        self.hlen = 0
        self.tail = []
        self.tlen = 0
        self.total = 0
        self.finished = False

    def feed(self, data):
        if self.decoder is None:
            self.decoder = _utf8_decoder("replace")
        self._add(self.decoder.decode(data))

    def _add(self, s):
        n = len(s)
        if not n:
            return
        self.total += n
        if self.hlen < self.hmax:
            room = self.hmax - self.hlen
            part = s[:room]
            self.head.append(part)
            self.hlen += len(part)
            if n <= room:
                return
            s = s[room:]
        if self.tmax <= 0:
            return
        self.tail.append(s)
        self.tlen += len(s)
        if len(self.tail) > 64 or self.tlen > 2 * self.tmax + PIPE_CHUNK:
            joined = "".join(self.tail)[-self.tmax:]
            self.tail = [joined]
            self.tlen = len(joined)

    def finish(self):
        if not self.finished:
            self.finished = True
            if self.decoder is None:
                return
            try:
                self._add(self.decoder.decode(b"", True))
            except Exception:
                pass

    def text(self):
        """(text, total characters, truncated)"""
        head = "".join(self.head)
        omitted = self.total - self.hmax - self.tmax
        if omitted <= 0:
            return head + "".join(self.tail), self.total, False
        tail = "".join(self.tail)[-self.tmax:] if self.tmax > 0 else ""
        return (head + "\n... [%d characters omitted] ...\n" % omitted + tail), self.total, True


class Stream(object):
    """One captured fd (1 or 2): a pipe whose read end is non-blocking, the current Capture,
    and a reader thread that keeps the pipe from filling up while a cell runs.

    Every read from the pipe happens under self.lock together with handing the bytes to the
    current Capture.  So at the end of a cell the main thread takes the lock and drains what is
    left: every byte written before that point is either still in the pipe or already in the
    Capture.  No sentinel and no thread hand-off is needed, which keeps a cell's round trip
    close to that of a bare exec loop."""

    def __init__(self, target_fd):
        self.target_fd = target_fd
        r, w = os.pipe()
        try:
            self.rfd = dup_high(r)
            self.wfd = dup_high(w)
        finally:
            os.close(r)
            os.close(w)
        os.set_blocking(self.rfd, False)
        st = os.fstat(self.wfd)
        self.ident = (st.st_ino, st.st_dev)
        self.driver = None  # the Driver, for its critical section (see write)
        self.lock = _thread.allocate_lock()
        self.current = None
        os.dup2(self.wfd, target_fd)

    def write(self, data):
        """What sys.stdout / sys.stderr write (bytes, through their buffer): straight into the
        running cell's capture, after whatever the pipe holds (so it keeps its order with
        fd-level writes), without the trip through the pipe that wakes the reader thread and
        makes it fight the main thread for the GIL.  Through the fd itself when that is not the
        pipe any more (user code pointed it elsewhere, or closed it: the write then fails as a
        FileIO's would) and in a forked child (whose copy of the capture nobody reads)."""
        if _forked:
            write_all(self.target_fd, data)
            return len(data)
        try:
            st = os.fstat(self.target_fd)
            ours = (st.st_ino, st.st_dev) == self.ident
        except OSError:
            ours = False
        if not ours:
            write_all(self.target_fd, data)
            return len(data)
        # A timeout or an interrupt waits until the bytes are in (the handlers raise in user
        # code, and user code is what calls this): a capture is never left half updated.
        drv = self.driver
        main = drv is not None and _thread.get_ident() == drv.main_ident
        if main:
            drv.crit += 1
        try:
            with self.lock:
                cap = self.current
                self._drain(cap)
                if cap is not None:
                    try:
                        cap.feed(data)
                    except Exception:
                        pass
        finally:
            if main:
                drv._leave_crit(True)
        return len(data)

    def start(self):
        import select
        self._select = select.select
        _thread.start_new_thread(self._pump, ())

    def repoint(self):
        """Points the target fd at the pipe again if user code closed or redirected it."""
        try:
            repoint_fd(self.wfd, self.target_fd)
            if not os.get_blocking(self.wfd):
                os.set_blocking(self.wfd, True)  # user code may have set O_NONBLOCK on fd 1/2
        except OSError:
            pass

    def _drain(self, cap):
        """Reads what the pipe holds now into cap (None: drop it). Caller holds the lock."""
        while True:
            try:
                data = os.read(self.rfd, PIPE_CHUNK)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:
                return
            if cap is not None:
                try:
                    cap.feed(data)
                except Exception:
                    pass
            if len(data) < PIPE_CHUNK:
                return

    def begin(self, max_output, pending=True):
        """Starts capturing for a cell.  What the pipe holds goes to the capture being paused:
        none between cells (that output is dropped), the waiting cell's for a nested cell.
        pending=False says a poll just found the pipe empty, which saves a read."""
        cap = Capture(max_output)
        with self.lock:
            if pending:
                self._drain(self.current)
            self.current = cap
        return cap

    def end(self, cap, pending=True, resume=None):
        """Stops capturing: everything written to the fd before this call is in cap.  resume
        is the capture paused by begin (a nested cell's parent), None at top level."""
        with self.lock:
            if pending:
                self._drain(cap)
            if self.current is cap:
                self.current = resume
        cap.finish()

    def _pump(self):
        rfd = self.rfd
        wait = self._select
        while True:
            try:
                wait([rfd], [], [])
            except InterruptedError:
                continue
            except (OSError, ValueError):
                return
            with self.lock:
                self._drain(self.current)


class StreamBuffer(io.BufferedIOBase):
    """The binary file under sys.stdout / sys.stderr (their `buffer`): a Stream's write (see
    Stream.write), unbuffered.  It says it is fd 1 / fd 2 (fileno, name), so code that hands
    sys.stdout to a subprocess or writes to its fd reaches the same capture through the pipe.
    Not an io.BufferedWriter over a raw file: a timeout that lands in a write is raised once
    the bytes are in the capture, and a BufferedWriter would then keep them and write them
    again (TextIOWrapper drops what it handed over, raise or not)."""

    def __init__(self, stream):
        io.BufferedIOBase.__init__(self)
        self.stream = stream

    def writable(self):
        return True

    def write(self, data):
        if self.closed:
            raise ValueError("write to closed file")
        view = memoryview(data)  # a TypeError for what is not bytes-like, as a file gives
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        return self.stream.write(view)

    def fileno(self):
        return self.stream.target_fd

    def isatty(self):
        return False

    @property
    def name(self):
        return self.stream.target_fd

    @property
    def mode(self):
        return "wb"


def stream_file(stream):
    """sys.stdout / sys.stderr for a Stream: text, line-buffered, UTF-8 (unencodable text is
    backslash-escaped), like open(fd, "w", buffering=1) but without the pipe round trip.  Its
    chunk is 64 KB rather than 8 KB, so a line up to that size reaches the capture in one
    write, not two."""
    f = io.TextIOWrapper(StreamBuffer(stream), encoding="utf-8", errors="backslashreplace",
                         line_buffering=True)
    try:
        f._CHUNK_SIZE = 1 << 16
    except (AttributeError, ValueError):
        pass
    return f


_forked = False


def _after_fork():
    global _forked
    _forked = True


# --------------------------------------------------------------------------------------------
# Channel frame reader

class FrameReader(object):
    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()
        self.scan = 1   # where to resume looking for LF/RS in the pending frame

    def feed(self, data):
        self.buf += data

    def parse(self):
        """Next item from the buffer: None (need more), ("frame", dict), ("bad", id, message)."""
        buf = self.buf
        while buf:
            if buf[0] != 0x1E:
                i = buf.find(RS)
                if i < 0:
                    del buf[:]   # junk
                    self.scan = 1
                    return None
                del buf[:i]
                self.scan = 1
            start = self.scan if self.scan > 1 else 1
            j = buf.find(LF, start)
            k = buf.find(RS, start, j if j >= 0 else len(buf))
            if k >= 0:
                rid = _recover_id(bytes(buf[1:k]).decode("utf-8", "replace"))
                del buf[:k]
                self.scan = 1
                return ("bad", rid, "truncated frame (RS before the terminating LF)")
            if j < 0:
                self.scan = len(buf)
                return None
            body = bytes(buf[1:j])
            del buf[:j + 1]
            self.scan = 1
            return self.decode(body)
        return None

    @staticmethod
    def decode(body):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            return ("bad", _recover_id(body.decode("utf-8", "replace")),
                    "frame is not valid UTF-8: byte 0x%02x at offset %d of its JSON text"
                    % (body[e.start], e.start))
        try:
            obj = json_loads(text)
        except Exception as e:
            return ("bad", _recover_id(text), "frame is not valid JSON: %s" % (e,))
        if not isinstance(obj, dict):
            return ("bad", None, "frame is not a JSON object")
        rid = obj.get("id")
        if not isinstance(rid, str):
            rid = None
        if not isinstance(obj.get("type"), str):
            return ("bad", rid, "missing or non-string field 'type'")
        return ("frame", obj)


def _recover_id(text):
    """The id of a frame that cannot be served, read leniently (text is the frame decoded with
    replacement; it may not even be JSON), or None: the refusal then carries this id, so the
    host matches it at once instead of waiting out its deadline."""
    try:
        obj = json_loads(text)
    except Exception:
        obj = None
    if isinstance(obj, dict):
        rid = obj.get("id")
        return rid if isinstance(rid, str) else None
    import re
    m = re.search(r'"id"\s*:\s*("(?:[^"\\\x00-\x1f]|\\.){1,256}")', text)
    if m is None:
        return None
    try:
        rid = json_loads(m.group(1))
    except Exception:
        return None
    return rid if isinstance(rid, str) else None


# --------------------------------------------------------------------------------------------
# The driver

def _error_dict(type_name, message, traceback_text=None):
    line = type_name + (": " + message if message else "")
    return {"type": type_name, "message": message,
            "traceback": traceback_text if traceback_text is not None else line + "\n",
            "line": line}


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_BAD_SCOPE = object()  # parse_scope's "already answered with an error"

# What split_cell leaves to the AST: line ends other than LF, form feeds (they reset the
# indentation count), and future statements (they would not reach a part compiled apart).
_SPLIT_AVOID = ("\r", "\f", "\v", "__future__")
SPLIT_TRIES = 3


# compile() without compile(): the first call of the builtin in a process makes Python's AST
# types (PyAST_Check, about a millisecond, even for a plain source string), while exec() and
# eval() of a string compile through the same C path without them.  compile_source has exec()
# compile the source and stops the frame before its first instruction: a trace function raises
# at the frame's "call" event, which carries the code object; _imp._fix_co_filename then names
# it (and the code it holds) after the cell.  A probe at start-up checks that the frame really
# stops; without that, or while a trace function of the code's own is set, it is compile().

class _Compiled(BaseException):
    pass


def _stop_at_call(frame, event, arg):
    raise _Compiled(frame.f_code)


def _compile_by_exec(source, filename, mode):
    run = exec if mode == "exec" else eval
    sys.settrace(_stop_at_call)
    try:
        run(source, {})
    except _Compiled as c:
        code = c.args[0]
    except SyntaxError as e:
        if e.filename == "<string>":
            e.filename = filename
        raise
    else:
        code = None
    finally:
        sys.settrace(None)
    if code is None:
        raise RuntimeError("exec compiled nothing")
    _fix_co_filename(code, filename)
    return code


def _compile_builtin(source, filename, mode):
    return compile(source, filename, mode, 0, True)


def _probe_compile_by_exec():
    """compile_source's way, when it works here: it must stop before running anything."""
    global _fix_co_filename
    try:
        import _imp
        _fix_co_filename = _imp._fix_co_filename
        scratch = {}
        sys.settrace(_stop_at_call)
        try:
            exec("__rlm_ran__ = 1", scratch)
        except _Compiled as c:
            code = c.args[0]
        else:
            code = None
        finally:
            sys.settrace(None)
        if code is None or "__rlm_ran__" in scratch:
            return None
        _fix_co_filename(code, "<rlm-probe>")
        ns = {}
        exec(code, ns)
        if ns.get("__rlm_ran__") != 1 or code.co_filename != "<rlm-probe>":
            return None
        return _compile_by_exec
    except Exception:
        return None


_fix_co_filename = None
_compile_fast = None
_ast_ready = False     # compile() made its AST types: no need for _compile_fast any more
WARM_IDLE_S = 0.005    # idle this long between cells, the driver makes them (warm_when_idle)
WARM_AFTER_CELLS = 8   # or after this many cells, idle or not


def compile_source(source, filename, mode):
    """compile(source, filename, mode) with no flags and no inherited future statements."""
    if _compile_fast is not None and not _ast_ready and sys.gettrace() is None:
        return _compile_fast(source, filename, mode)
    return _compile_builtin(source, filename, mode)


# Words that cannot begin an expression, only a statement.
_STATEMENT_WORDS = frozenset(("if", "for", "while", "def", "class", "with", "try", "import",
                              "from", "return", "del", "pass", "break", "continue", "raise",
                              "global", "nonlocal", "assert", "async"))
_ASSIGN_NOT = frozenset("<>!=:")  # before `=`: a comparison or `:=`, not an assignment


def _no_expression(line):
    """Whether a statement starting with this line (at column 0) is surely no expression: it
    starts with a statement keyword or a decorator, or its first `=` outside brackets and
    strings is an assignment's (`x = 1`, `a.b += 2`; not `==`, `<=`, `:=`, a lambda's
    default).  False means "compile it and see", so a wrong False only costs time."""
    if line[:1] == "@":
        return True
    i = 0
    n = len(line)
    while i < n and (line[i].isalnum() or line[i] == "_"):
        i += 1
    if line[:i] in _STATEMENT_WORDS:
        return True
    for j in range(i, n):
        c = line[j]
        if c == "=":
            return (line[j + 1:j + 2] != "=" and line[j - 1] not in _ASSIGN_NOT
                    and "lambda" not in line[:j])
        if c in "([{'\"#;\\":
            return False
    return False


def split_cell(code, filename):
    """The cell compiled as compile_cell_ast does, without the AST, or None: use the AST.

    The AST costs about a millisecond per process (the _ast types, made on first use) and
    doubles a cell's compile time, so the last top-level statement is found from the text: it
    starts on the last line that begins at column 0 (not blank, not a comment) before which
    the text compiles on its own, i.e. is whole statements (a line inside brackets, a string
    or a backslash continuation fails that, and the one before it is tried).  From there to
    the end is exactly one statement: if it compiles as an expression, that is the trailing
    expression, compiled with its own line numbers; if not, and it holds no `;`, it is some
    other statement and the cell is compiled whole.  Anything less clear goes to the AST."""
    for c in _SPLIT_AVOID:
        if c in code:
            return None
    lines = code.split("\n")
    k = len(lines)
    for _ in range(SPLIT_TRIES):
        k -= 1
        while k >= 0 and (not lines[k] or lines[k][0] in " \t#"):
            k -= 1
        if k < 0:
            return None
        head = None
        if k:
            try:
                head = compile_source("\n".join(lines[:k]) + "\n", filename, "exec")
            except (SyntaxError, ValueError):
                continue  # line k is inside the statement before it
        tail = "\n" * k + "\n".join(lines[k:])
        expr = None
        if not _no_expression(lines[k]):
            try:
                expr = compile_source(tail, filename, "eval")
            except (SyntaxError, ValueError):
                pass
        if expr is not None:
            return head, expr  # head None: the cell is that expression alone
        if ";" in tail:
            return None  # maybe `a = 1; a`
        return compile_source(code, filename, "exec"), None
    return None


class Driver(object):
    def __init__(self, in_fd, out_fd, volume, devnull_fd):
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.volume = volume
        self.devnull_fd = devnull_fd
        self.pid = os.getpid()
        try:
            os.register_at_fork(after_in_child=_after_fork)
        except AttributeError:  # pragma: no cover - Python < 3.7
            pass
        self.main_ident = _thread.get_ident()
        self.reader = FrameReader(in_fd)
        self.call_lock = _thread.allocate_lock()
        self.call_seq = 0
        self.abandoned_calls = set()  # ids of calls whose caller was interrupted before the reply
        self.exec_id = None
        self.output_names = None
        self.submitted = None
        self.user_running = False
        self.timed_out = False
        self.timeout_message = ""
        self.deadline = None  # time.monotonic() deadline of the running cell, None: no timeout
        self.crit = 0
        self.pending = None
        self.cell = 0
        self.sources = {}
        self.buffers = {}
        self.reserve = bytearray(RESERVE_BYTES)
        self.print = builtins.print
        self.stdout_obj = None
        self.stderr_obj = None
        self.stdin_obj = None
        self.out = Stream(1)
        self.err = Stream(2)
        self.out.driver = self.err.driver = self
        self._select = None
        self.reserved = self._make_reserved()
        self.tools = {}     # host tool name -> the function that calls it (exec's `tools`)
        self.driver_module = sys.modules.get(__name__)  # keep alive once __main__ is replaced
        self.ns = None
        self.new_namespace()
        self.scopes = {}    # scope name -> module whose dict is that child namespace
        self.active = []    # scopes of the cells running now, outermost first (None: main)

    # ---------------------------------------------------------------- stdio and namespace

    def fix_stdio(self):
        """Re-point fds 0/1/2 and restore sys.std* (user code may close or replace them)."""
        try:
            repoint_fd(self.devnull_fd, 0)
        except OSError:
            pass
        self.out.repoint()
        self.err.repoint()
        for name in ("stdout", "stderr"):
            s = getattr(sys, name, None)
            if s is not None:
                try:
                    s.flush()
                except BaseException:
                    pass
        if self.stdout_obj is None or self.stdout_obj.closed:
            self.stdout_obj = stream_file(self.out)
        if self.stderr_obj is None or self.stderr_obj.closed:
            self.stderr_obj = stream_file(self.err)
        if self.stdin_obj is None or self.stdin_obj.closed:
            self.stdin_obj = open(0, "r", encoding="utf-8", errors="replace", closefd=False)
        sys.stdout = sys.__stdout__ = self.stdout_obj
        sys.stderr = sys.__stderr__ = self.stderr_obj
        sys.stdin = sys.__stdin__ = self.stdin_obj
        builtins.print = self.print

    def pending_output(self):
        """Whether the stdout and stderr pipes hold unread bytes, in one system call."""
        try:
            ready = self.out._select([self.out.rfd, self.err.rfd], [], [], 0)[0]
        except (OSError, ValueError):
            return True, True
        return self.out.rfd in ready, self.err.rfd in ready

    def install_signals(self):
        # getsignal reads Python's own table: no system call when nothing changed.
        try:
            if signal.getsignal(signal.SIGINT) != self._on_sigint:
                signal.signal(signal.SIGINT, self._on_sigint)
            if signal.getsignal(signal.SIGALRM) != self._on_alarm:
                signal.signal(signal.SIGALRM, self._on_alarm)
        except (ValueError, OSError):
            pass

    def new_namespace(self):
        self.ns_module = type(sys)("__main__")
        self.ns = self.ns_module.__dict__
        self.ns["__builtins__"] = builtins
        sys.modules["__main__"] = self.ns_module
        self.ns.update(self.reserved)

    def scope_namespace(self, scope):
        """The namespace of a scope (None: the main one), made empty on first use.  A scope's
        module says __name__ == "__main__" (so `if __name__ == "__main__":` runs as it does in
        the main namespace) but is not sys.modules["__main__"]: that stays the main one."""
        if scope is None:
            return self.ns
        mod = self.scopes.get(scope)
        if mod is None:
            mod = self.scopes[scope] = type(sys)("__main__")
            mod.__dict__["__builtins__"] = builtins
            mod.__dict__.update(self.reserved)
        return mod.__dict__

    def restore_namespace(self, ns=None):
        if ns is None:
            ns = self.ns
        ns.update(self.reserved)
        if self.tools:
            ns.update(self.tools)
        ns.pop("print", None)
        builtins.print = self.print
        sys.modules["__main__"] = self.ns_module

    def _make_reserved(self):
        drv = self

        def SUBMIT(*values, **fields):
            """End the exec and submit fields: SUBMIT(answer=...) or SUBMIT(value, ...)."""
            drv.submit(values, fields)

        def llm_query(prompt, model=None):
            """Ask a sub-LLM; returns its answer (a string)."""
            if not isinstance(prompt, str):
                raise TypeError("llm_query: prompt must be a str, not %s" % type(prompt).__name__)
            if model is not None and not isinstance(model, str):
                raise TypeError("llm_query: model must be a str or None")
            return drv.host_call("llm_query", [prompt], {"model": model})

        def llm_query_batched(prompts, model=None):
            """Ask a sub-LLM several prompts at once; returns the list of answers."""
            if isinstance(prompts, (str, bytes)) or not hasattr(prompts, "__iter__"):
                raise TypeError("llm_query_batched: prompts must be a list of str")
            prompts = list(prompts)
            for p in prompts:
                if not isinstance(p, str):
                    raise TypeError("llm_query_batched: prompts must be a list of str, found %s"
                                    % type(p).__name__)
            if model is not None and not isinstance(model, str):
                raise TypeError("llm_query_batched: model must be a str or None")
            return drv.host_call("llm_query_batched", [prompts], {"model": model})

        def rlm_query(prompt, context=None):
            """Run a child RLM on prompt (and optional context); returns its answer."""
            if not isinstance(prompt, str):
                raise TypeError("rlm_query: prompt must be a str, not %s" % type(prompt).__name__)
            return drv.host_call("rlm_query", [prompt], {"context": context})

        def add_buffer(name, value):
            """Append value to the buffer `name`."""
            drv.buffers.setdefault(name, []).append(value)

        def get_buffer(name):
            """A copy of the buffer `name` (an empty list if there is none)."""
            return list(drv.buffers.get(name, ()))

        def clear_buffer(name=None):
            """Clear the buffer `name`, or every buffer when name is None."""
            if name is None:
                drv.buffers.clear()
            else:
                drv.buffers.pop(name, None)

        return {"SUBMIT": SUBMIT, "llm_query": llm_query, "llm_query_batched": llm_query_batched,
                "rlm_query": rlm_query, "add_buffer": add_buffer, "get_buffer": get_buffer,
                "clear_buffer": clear_buffer, "VOLUME": self.volume}

    def set_tools(self, names):
        """Makes the host tools exactly `names` (an exec's `tools`): a new name gets a function
        that sends a `call` frame; a name no longer listed is removed from every namespace
        that still holds its function."""
        if not names and not self.tools:  # the common case, in one test
            return
        if len(names) == len(self.tools) and all(n in self.tools for n in names):
            return
        old, self.tools = self.tools, {}
        for name in names:
            fn = old.get(name)
            self.tools[name] = fn if fn is not None else _host_tool(self, name)
        for name, fn in old.items():
            if name in self.tools:
                continue
            for ns in [self.ns] + [m.__dict__ for m in self.scopes.values()]:
                if ns.get(name) is fn:
                    del ns[name]

    def bad_tool_names(self, names):
        """Why an exec's `tools` field is unusable, or None."""
        if not isinstance(names, list):
            return "exec: field 'tools' must be a list of strings or null"
        import keyword
        for name in names:
            if (not isinstance(name, str) or not name.isidentifier() or not name.isascii()
                    or keyword.iskeyword(name) or name in RESERVED or name == "print"
                    or (name.startswith("__") and name.endswith("__"))):
                return "exec: invalid tool name %r" % (name,)
        return None

    # ---------------------------------------------------------------- signals

    def _on_sigint(self, signum, frame):
        if self.user_running:
            self._raise_or_defer(KeyboardInterrupt())

    def _on_alarm(self, signum, frame):
        deadline = self.deadline
        if deadline is None:  # no cell with a timeout runs: a timer arm_timer left armed
            try:
                signal.setitimer(signal.ITIMER_REAL, 0, 0)
            except (ValueError, OSError):
                pass
            return
        left = deadline - time.monotonic()
        if left > 0:  # armed for an earlier cell: wait for this one's deadline
            signal.setitimer(signal.ITIMER_REAL, left, TIMER_INTERVAL)
            return
        if self.user_running:
            self.timed_out = True
            self._raise_or_defer(_Timeout(self.timeout_message))

    def arm_timer(self, timeout):
        """Makes SIGALRM come at the cell's deadline, now + timeout (None: no timeout), or
        earlier.  The timer is not stopped after a cell (that would cost two system calls per
        cell): a timer still armed from an earlier cell is kept when it fires no later than
        this deadline, since _on_alarm then sets it again for the time left; otherwise (it
        fires later, it is stopped, or user code set it to its own interval) it is set anew.
        One getitimer per cell checks that, so a timer that user code stopped or moved
        cannot take a later cell's timeout away.  Between cells, _on_alarm stops it."""
        if timeout is None:
            self.deadline = None
            return
        self.deadline = time.monotonic() + timeout
        left, interval = signal.getitimer(signal.ITIMER_REAL)
        if not 0 < left <= timeout or interval != TIMER_INTERVAL:
            signal.setitimer(signal.ITIMER_REAL, timeout, TIMER_INTERVAL)

    def _raise_or_defer(self, exc):
        if self.crit:
            if self.pending is None:
                self.pending = exc
            return
        raise exc

    def _enter_crit(self, main):
        if main:
            self.crit += 1

    def _leave_crit(self, main):
        if main:
            self.crit -= 1
            if not self.crit and self.pending is not None:
                exc, self.pending = self.pending, None
                if self.user_running:
                    raise exc

    # ---------------------------------------------------------------- channel

    def send(self, obj):
        self.send_bytes(encode_frame(obj))

    def send_bytes(self, data):
        try:
            write_all(self.out_fd, data)
        except OSError as e:
            fatal("cannot write to the host: %s" % (e,))
            os._exit(1)  # the host is gone

    def protocol_error(self, rid, message):
        """Refuses a frame: the host tells a refusal from a cell's own error by `refused`."""
        frame = self.result_frame(rid, error=_error_dict("ProtocolError", message))
        frame["refused"] = True
        self.send(frame)

    def next_frame(self):
        """The next item from the channel (blocking): ("frame", dict), ("bad", id, message)
        or ("eof",)."""
        reader = self.reader
        while True:
            item = reader.parse()
            if item is not None:
                return item
            if not _ast_ready:
                self.warm_when_idle()
            data = os.read(self.in_fd, READ_CHUNK)
            reader.feed(data)
            if not data:
                return ("eof",)

    def warm_when_idle(self):
        """Makes Python's AST types (the first compile() of a process, ~1 ms; until then
        compile_source goes through exec, a few microseconds dearer per cell) when nothing
        comes for WARM_IDLE_S, or after WARM_AFTER_CELLS cells whatever comes: in an RLM run
        the wait for the model is idle time; a host sending cells back to back pays once."""
        global _ast_ready
        if self.cell < WARM_AFTER_CELLS:
            if self._select is None:
                self._select = self.out._select
            try:
                if self._select([self.in_fd], [], [], WARM_IDLE_S)[0]:
                    return
            except (OSError, ValueError):
                return
        compile("", "<rlm-driver>", "exec", 0, True)
        _ast_ready = True

    def next_frame_waiting(self, main):
        """next_frame for a host call, called inside the call's critical section.  On the main
        thread the section is left only while select() waits for bytes, so a timeout or
        SIGINT lands there (or is deferred to that point), never between reading bytes and
        handling the frame they hold."""
        reader = self.reader
        while True:
            item = reader.parse()
            if item is not None:
                return item
            if main:
                if self._select is None:
                    import select
                    self._select = select.select
                self.crit -= 1
                try:
                    if not self.crit and self.pending is not None:
                        exc, self.pending = self.pending, None
                        if self.user_running:
                            raise exc
                    self._select([self.in_fd], [], [])
                finally:
                    self.crit += 1
            data = os.read(self.in_fd, READ_CHUNK)
            reader.feed(data)
            if not data:
                return ("eof",)

    @staticmethod
    def result_frame(rid, stdout="", stderr="", stdout_chars=0, stderr_chars=0, truncated=False,
                     error=None, submit=None, value=None, timed_out=False, duration_ms=0.0):
        return {"type": "result", "id": rid, "stdout": stdout, "stderr": stderr,
                "stdout_chars": stdout_chars, "stderr_chars": stderr_chars,
                "truncated": truncated, "error": error, "submit": submit, "value": value,
                "timed_out": timed_out, "duration_ms": duration_ms}

    # ---------------------------------------------------------------- host calls

    def host_call(self, name, args, kwargs):
        if os.getpid() != self.pid:
            raise RuntimeError("%s is not available in a forked process" % name)
        main = _thread.get_ident() == self.main_ident
        with self.call_lock:
            if self.exec_id is None:
                raise RuntimeError("%s called outside an exec" % name)
            self.call_seq += 1
            cid = "c%d" % self.call_seq
            frame = {"type": "call", "id": cid, "exec_id": self.exec_id, "name": name,
                     "args": args, "kwargs": kwargs, "nestable": main}
            try:
                text = json_dumps(frame)
            except (TypeError, ValueError, RecursionError) as e:
                msg = "%s: arguments are not JSON serializable (%s)" % (name, e)
                raise TypeError(msg) from None
            data = RS + _encode_text(text) + LF
            answered = False
            self._enter_crit(main)
            try:
                try:
                    write_all(self.out_fd, data)
                except OSError as e:
                    fatal("cannot write to the host: %s" % (e,))
                    os._exit(1)
                data = frame = None
                while True:
                    item = self.next_frame_waiting(main)
                    if item[0] == "eof":
                        os._exit(0)
                    if item[0] == "bad":
                        if item[1] == cid:  # the reply itself cannot be read: the call fails
                            answered = True
                            raise RuntimeError("%s: the host's reply could not be read: %s"
                                               % (name, item[2]))
                        self.protocol_error(item[1], item[2] + " (while waiting for reply %s)"
                                            % cid)
                        continue
                    msg = item[1]
                    item = None
                    if msg["type"] != "reply":
                        self.serve_while_waiting(msg, cid, main)
                        msg = None
                        continue
                    rid = msg.get("id")
                    rid = rid if isinstance(rid, str) else None
                    if rid in self.abandoned_calls:
                        self.abandoned_calls.discard(rid)   # late answer to an interrupted call
                        continue
                    if rid != cid:
                        self.protocol_error(rid, "unexpected 'reply' frame (id %r) while waiting "
                                                 "for reply %s" % (rid, cid))
                        continue
                    answered = True
                    ok = msg.get("ok")
                    if ok is True:
                        return msg.get("value")
                    if ok is False:
                        err = msg.get("error")
                        if not isinstance(err, str):
                            err = "%s failed" % name if err is None else json_dumps(_sanitize(err))
                        raise RuntimeError(err)
                    self.protocol_error(cid, "reply field 'ok' must be a boolean")
                    raise RuntimeError("%s: malformed reply from the host" % name)
            finally:
                if not answered:
                    self.abandoned_calls.add(cid)
                self._leave_crit(main)

    # ---------------------------------------------------------------- nested cells

    def serve_while_waiting(self, msg, cid, main):
        """A frame other than a reply arrived while host call cid waits (the host answers a
        call by running child cells first, see PROTOCOL.md "Nested cells")."""
        kind = msg["type"]
        rid = msg.get("id")
        if not isinstance(rid, str):
            return self.protocol_error(None, "%s: missing or non-string field 'id'" % (kind,))
        if kind == "ping":
            return self.send({"type": "pong", "id": rid})
        if kind not in ("exec", "reset", "drop_scope"):
            return self.protocol_error(rid, "unexpected %r frame (id %r) while waiting for "
                                            "reply %s" % (kind, rid, cid))
        scope = self.parse_scope(msg, rid)
        if scope is _BAD_SCOPE:
            return None
        if scope is None:
            return self.protocol_error(rid, "%s without a scope while waiting for reply %s: "
                                            "the main namespace is busy" % (kind, cid))
        if scope in self.active:
            return self.protocol_error(rid, "%s: scope %r is running a cell further up the "
                                            "stack" % (kind, scope))
        if kind != "exec":
            return self.scope_request(kind, rid, scope)
        if not main:
            return self.protocol_error(rid, "exec: a nested cell can only run while a cell's "
                                            "main thread waits in a host call (call %s came "
                                            "from another thread)" % (cid,))
        return self.serve_nested(msg)

    def parse_scope(self, msg, rid):
        """msg's scope (None: the main namespace), or _BAD_SCOPE after answering an error."""
        scope = msg.get("scope")
        if scope is None:
            return None
        if (not isinstance(scope, str) or not 0 < len(scope) <= SCOPE_MAX
                or not SCOPE_CHARS.issuperset(scope)):
            self.protocol_error(rid, "%s: field 'scope' must be null or 1 to %d characters of "
                                     "[A-Za-z0-9_.-]" % (msg["type"], SCOPE_MAX))
            return _BAD_SCOPE
        return scope

    def scope_request(self, kind, rid, scope):
        """reset or drop_scope of one scope (not running)."""
        if kind == "reset":
            self.scopes.pop(scope, None)
            self.scope_namespace(scope)
            self.send({"type": "reset_done", "id": rid})
        else:
            self.scopes.pop(scope, None)
            self.send({"type": "scope_dropped", "id": rid})

    def serve_nested(self, msg):
        """Runs a child cell while the current cell's main thread waits in a host call.

        Called from host_call on the main thread, holding call_lock, inside the call's
        critical section.  The waiting cell is paused: its per-cell state, its interval timer,
        its stdio objects and fds 1/2, its signal handlers and its output capture are set
        aside for the child and put back afterwards.  The child runs with its own timeout,
        capped at the time the waiting cell has left; if that time ran out meanwhile, the timer
        fires again at once, so the waiting cell times out as soon as the child is done."""
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        deadline = self.deadline
        if deadline is not None:
            left = max(deadline - time.monotonic(), 1e-6)
        saved = (self.exec_id, self.output_names, self.submitted, self.timed_out,
                 self.timeout_message, self.pending, self.crit, self.user_running)
        stdio = (sys.stdout, sys.stderr, sys.stdin, builtins.print)
        captures = (self.out.current, self.err.current)
        handlers = self.save_handlers()
        fds = self.save_std_fds()
        self.user_running = False
        self.timed_out = False
        self.pending = None
        self.crit = 0
        try:
            for s in (sys.stdout, sys.stderr):  # the waiting cell's buffered text is its own
                try:
                    s.flush()
                except BaseException:
                    pass
            self.fix_stdio()
            self.install_signals()
            try:
                self.do_exec(msg, True, left if deadline is not None else None)
            except BaseException as e:
                self.internal_error(msg, e)
        finally:
            msg = None
            for stream, cap in zip((self.out, self.err), captures):
                if stream.current is not cap:  # the child failed before ending its capture
                    with stream.lock:
                        stream.current = cap
            self.restore_std_fds(fds)
            sys.stdout, sys.stderr, sys.stdin, builtins.print = stdio
            self.restore_handlers(handlers)
            (self.exec_id, self.output_names, self.submitted, self.timed_out,
             self.timeout_message, self.pending, self.crit, self.user_running) = saved
            self.deadline = deadline
            if deadline is not None:
                rest = deadline - time.monotonic()
                signal.setitimer(signal.ITIMER_REAL, rest if rest > 1e-6 else 1e-6,
                                 TIMER_INTERVAL)

    @staticmethod
    def save_handlers():
        try:
            return (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGALRM))
        except (ValueError, OSError):
            return (None, None)

    @staticmethod
    def restore_handlers(handlers):
        for signum, handler in zip((signal.SIGINT, signal.SIGALRM), handlers):
            try:
                if handler is not None and signal.getsignal(signum) != handler:
                    signal.signal(signum, handler)
            except (ValueError, OSError, TypeError):
                pass

    def save_std_fds(self):
        """Copies of fds 1/2 where the waiting cell pointed them elsewhere than the capture
        pipes (a child's output must reach the child's capture)."""
        saved = []
        for stream in (self.out, self.err):
            try:
                st = os.fstat(stream.target_fd)
                mine = os.fstat(stream.wfd)
                if (st.st_ino, st.st_dev) != (mine.st_ino, mine.st_dev):
                    saved.append((stream.target_fd, dup_high(stream.target_fd)))
            except OSError:
                pass
        return saved

    @staticmethod
    def restore_std_fds(saved):
        for target, copy in saved:
            try:
                os.dup2(copy, target)
            except OSError:
                pass
            try:
                os.close(copy)
            except OSError:
                pass

    # ---------------------------------------------------------------- SUBMIT

    def submit(self, values, fields):
        if _thread.get_ident() != self.main_ident or self.exec_id is None:
            raise RuntimeError("SUBMIT can only be called from the exec's main thread")
        self.submitted = None
        names = self.output_names
        payload = {}
        if values:
            if names:
                if len(values) != len(names):
                    raise TypeError("SUBMIT expected %d positional values (%s), got %d"
                                    % (len(names), ", ".join(names), len(values)))
                payload = dict(zip(names, values))
            elif len(values) == 1:
                payload = {"output": values[0]}
            else:
                payload = {"output": list(values)}
        for k, v in fields.items():
            if k in payload:
                raise TypeError("SUBMIT got multiple values for field %r" % k)
            payload[k] = v
        clean = {}
        for k, v in payload.items():
            try:
                clean[k] = json_loads(json_dumps(v))
            except (TypeError, ValueError, RecursionError, OverflowError) as e:
                raise TypeError("SUBMIT field %r is not JSON serializable (%s)"
                                % (k, self._unserializable(v, e))) from None
        self.submitted = clean
        raise _Submit()

    @staticmethod
    def _unserializable(value, exc):
        """What to name in the SUBMIT error: the offending type, as precisely as we can."""
        msg = str(exc)
        if msg.startswith("Object of type ") and msg.endswith(" is not JSON serializable"):
            return msg[len("Object of type "):-len(" is not JSON serializable")]
        if isinstance(exc, RecursionError) or "ircular" in msg:
            return "circular reference"
        if "float" in msg:
            if isinstance(value, float):
                return "float %s" % _safe_repr(value)
            return "non-finite float"
        return type(value).__name__

    # ---------------------------------------------------------------- exec

    def register_source(self, filename, source):
        self.sources[filename] = source
        lc = sys.modules.get("linecache")
        cache = getattr(lc, "cache", None)
        if isinstance(cache, dict):
            cache[filename] = (len(source), None, source.splitlines(True), filename)

    def _linecache_add(self, lc):
        cache = getattr(lc, "cache", None)
        if not isinstance(cache, dict):
            return
        for fn, src in self.sources.items():
            if fn not in cache:
                cache[fn] = (len(src), None, src.splitlines(True), fn)

    def compile_cell(self, code, filename):
        """(code of the cell, code of its trailing expression or None)."""
        split = split_cell(code, filename)
        return split if split is not None else self.compile_cell_ast(code, filename)

    @staticmethod
    def compile_cell_ast(code, filename):
        import _ast
        tree = compile(code, filename, "exec", _ast.PyCF_ONLY_AST, True)
        body = tree.body
        if body and isinstance(body[-1], _ast.Expr):
            last = body.pop()
            expr = compile(_ast.Expression(body=last.value), filename, "eval", 0, True)
        else:
            expr = None
        mod = compile(_ast.Module(body=body, type_ignores=[]), filename, "exec", 0, True)
        return mod, expr

    def format_error(self, exc, limit):
        type_name = type(exc).__name__
        try:
            message = str(exc)
        except BaseException:
            message = "<exception str() failed>"
        try:
            text = self._format_traceback(exc)
        except BaseException:
            text = type_name + (": " + message if message else "") + "\n"
        line = ""
        for candidate in reversed(text.splitlines()):
            if candidate.strip():
                line = candidate.rstrip()
                break
        cap = max(limit, ERROR_TEXT_MIN_CAP)
        return {"type": type_name, "message": cap_text(message, cap)[0],
                "traceback": cap_text(text, cap)[0], "line": cap_text(line, cap)[0]}

    def _format_traceback(self, exc):
        import linecache
        import traceback
        self._linecache_add(linecache)
        te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
        seen = set()
        todo = [te]
        while todo:
            t = todo.pop()
            if t is None or id(t) in seen:
                continue
            seen.add(id(t))
            frames = [f for f in t.stack if str(f.filename).startswith("<cell-")]
            if len(frames) != len(t.stack):
                t.stack = traceback.StackSummary.from_list(frames)
            if not frames:
                t.exc_traceback = None
            todo.append(getattr(t, "__cause__", None))
            todo.append(getattr(t, "__context__", None))
            todo.extend(getattr(t, "exceptions", None) or ())
        return "".join(te.format())

    def bad_var_name(self, name):
        import keyword
        if not isinstance(name, str) or not name.isidentifier():
            return "invalid variable name %r: not an identifier" % (name,)
        if keyword.iskeyword(name):
            return "invalid variable name %r: is a keyword" % (name,)
        if name in RESERVED or (name.startswith("__") and name.endswith("__")):
            return "invalid variable name %r: reserved" % (name,)
        if name in self.tools:
            return "invalid variable name %r: reserved (a host tool)" % (name,)
        return None

    def do_exec(self, msg, nested=False, time_left=None):
        """Serves an exec frame.  nested: a child cell run by serve_nested; time_left: the
        seconds the waiting cell's timer had left (None: it has none)."""
        rid = msg["id"]
        scope = self.parse_scope(msg, rid)
        if scope is _BAD_SCOPE:
            return None
        code = msg.get("code")
        if not isinstance(code, str):
            return self.protocol_error(rid, "exec: field 'code' must be a string")
        if code[:1] == "\ufeff":  # a UTF-8 BOM: Python accepts it at the start of a file
            code = code[1:]
        variables = msg.get("vars")
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            return self.protocol_error(rid, "exec: field 'vars' must be an object or null")
        names = msg.get("output_names")
        if names is not None and (not isinstance(names, list)
                                  or not all(isinstance(n, str) for n in names)):
            return self.protocol_error(rid, "exec: field 'output_names' must be a list of "
                                            "strings or null")
        timeout = msg.get("timeout_s")
        if timeout is not None and (not _is_number(timeout) or not 0 < timeout < 1e9):
            return self.protocol_error(rid, "exec: field 'timeout_s' must be a positive number "
                                            "or null")
        max_output = msg.get("max_output")
        if max_output is None:
            max_output = DEFAULT_MAX_OUTPUT
        if not isinstance(max_output, int) or isinstance(max_output, bool) or max_output < 0:
            return self.protocol_error(rid, "exec: field 'max_output' must be a non-negative "
                                            "integer")
        raw_output = msg.get("raw_output") is True
        want_locals = msg.get("locals")
        if want_locals is not None and not isinstance(want_locals, bool):
            return self.protocol_error(rid, "exec: field 'locals' must be a boolean or null")
        tools = msg.get("tools")
        if tools is None:
            tools = ()
        elif self.bad_tool_names(tools):
            return self.protocol_error(rid, self.bad_tool_names(tools))
        self.set_tools(tools)
        for name in variables:
            problem = self.bad_var_name(name)
            if problem:
                return self.send(self.result_frame(rid, error=_error_dict("ValueError", problem)))

        t0 = time.monotonic()
        self.cell += 1
        filename = "<cell-%d>" % self.cell
        self.register_source(filename, code)
        ns = self.scope_namespace(scope)
        if self.tools:
            ns.update(self.tools)
        # Signals and stdio were restored at the end of the previous cell (and at start-up),
        # or by serve_nested.
        out_pending, err_pending = self.pending_output()
        resume_out = self.out.current if nested else None
        resume_err = self.err.current if nested else None
        cap_out = self.out.begin(max_output, out_pending)
        cap_err = self.err.begin(max_output, err_pending)

        ns.update(variables)
        variables = msg = None
        self.output_names = names or None
        self.submitted = None
        self.timed_out = False
        self.pending = None
        self.crit = 0
        if timeout is not None:
            self.timeout_message = "execution exceeded %g s" % timeout
        if time_left is not None and (timeout is None or time_left < timeout):
            timeout = time_left
            self.timeout_message = ("execution exceeded %g s: the time its calling cell had "
                                    "left" % timeout)
        error = None
        value = None
        self.exec_id = rid
        self.call_lock.release()
        self.active.append(scope)
        try:
            error, value = self.run_cell(code, filename, timeout, ns)
        except BaseException as e:  # a signal landing in the driver's own epilogue
            error, value = e, None
        finally:
            self.user_running = False
            del self.active[-1]
            if os.getpid() != self.pid:  # a forked child finished the cell: it must never
                for s in (sys.stdout, sys.stderr):  # talk to the host
                    try:
                        s.flush()
                    except BaseException:
                        pass
                os._exit(0)
            self.call_lock.acquire()
            self.exec_id = None
        code = None

        if isinstance(error, MemoryError):
            self.reserve = None
        timed_out = self.timed_out
        if timed_out and error is None:
            error = _Timeout(self.timeout_message)
        self.user_running = False
        self.pending = None

        self.restore_namespace(ns)
        user_vars = user_locals(ns, self.tools) if want_locals else None
        ns = None
        self.install_signals()
        self.fix_stdio()
        # Both locks first, then one poll: a byte the poll misses was not written yet.
        with self.out.lock, self.err.lock:
            out_pending, err_pending = self.pending_output()
        self.out.end(cap_out, out_pending, resume_out)
        self.err.end(cap_err, err_pending, resume_err)
        stdout, stdout_chars, t1 = cap_out.text()
        stderr, stderr_chars, t2 = cap_err.text()
        cap_out = cap_err = None

        err_dict = None
        if error is not None:
            err_dict = self.format_error(error, max_output)
            error = None
        if value is not None:
            value = cap_text(value, max_output)[0]
        duration = round((time.monotonic() - t0) * 1000.0, 3)
        if user_vars is None:
            encode = (encode_result_raw if raw_output and len(stdout) + len(stderr)
                      >= RAW_OUTPUT_MIN else encode_result)
            self.send_bytes(encode(rid, stdout, stderr, stdout_chars, stderr_chars, t1 or t2,
                                   err_dict, self.submitted, value, timed_out, duration))
        else:
            frame = self.result_frame(rid, stdout, stderr, stdout_chars, stderr_chars, t1 or t2,
                                      err_dict, self.submitted, value, timed_out, duration)
            frame["locals"] = user_vars
            self.send(frame)
            frame = user_vars = None
        self.submitted = None
        self.output_names = None
        if self.reserve is None:
            try:
                self.reserve = bytearray(RESERVE_BYTES)
            except MemoryError:
                pass

    def run_cell(self, code, filename, timeout, ns):
        """Compile and run one cell in namespace ns.  Returns (exception or None, repr of the
        value or None)."""
        try:
            mod, expr = self.compile_cell(code, filename)
        except BaseException as e:
            if isinstance(e, (ValueError, SyntaxError)) and "\0" in code:
                at = code.index("\0")
                return SyntaxError("source code cannot contain a NUL character (character %d, "
                                   "line %d)" % (at, code.count("\n", 0, at) + 1)), None
            if isinstance(e, SyntaxError) and e.text is None and e.filename == filename:
                try:  # errors found after parsing (e.g. 'return' outside function)
                    e.text = code.splitlines()[e.lineno - 1] + "\n"
                except Exception:
                    pass
            return e, None
        value = None
        try:
            self.user_running = True
            try:
                self.arm_timer(timeout)
                if mod is not None:
                    exec(mod, ns)
                if expr is not None:
                    v = eval(expr, ns)
                    if v is not None:
                        value = repr(v)
                    v = None
            finally:
                self.user_running = False
                self.deadline = None  # the timer is left running: see arm_timer
        except _Submit:
            self.user_running = False
            return None, None
        except BaseException as e:
            self.user_running = False
            if isinstance(e, MemoryError):
                self.reserve = None
            return e, None
        return None, value

    # ---------------------------------------------------------------- main loop

    def ready(self):
        self.send({"type": "ready", "protocol": PROTOCOL_VERSION, "driver_version": __version__,
                   "python_version": "%d.%d.%d" % tuple(sys.version_info[:3]),
                   "pid": self.pid, "volume": self.volume})

    def serve(self):
        self.call_lock.acquire()
        while True:
            item = self.next_frame()
            if item[0] == "eof":
                os._exit(0)
            if item[0] == "bad":
                self.protocol_error(item[1], item[2])
                continue
            msg = item[1]
            item = None
            try:
                self.dispatch(msg)
            except BaseException as e:
                del self.active[:]
                self.internal_error(msg, e)
            msg = None

    def internal_error(self, msg, exc):
        self.reserve = None
        try:
            import traceback
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        except BaseException:
            text = None
        rid = msg.get("id") if isinstance(msg, dict) else None
        try:
            message = "%s: %s" % (type(exc).__name__, exc)
        except BaseException:
            message = type(exc).__name__
        self.user_running = False
        self.exec_id = None
        if not self.call_lock.locked():
            self.call_lock.acquire()
        self.send(self.result_frame(rid if isinstance(rid, str) else None,
                                    error=_error_dict("DriverError", message, text)))
        try:
            self.reserve = bytearray(RESERVE_BYTES)
        except MemoryError:
            pass

    def dispatch(self, msg):
        kind = msg["type"]
        rid = msg.get("id")
        if not isinstance(rid, str):
            return self.protocol_error(None, "%s: missing or non-string field 'id'" % (kind,))
        if kind == "exec":
            self.do_exec(msg)
        elif kind == "ping":
            self.send({"type": "pong", "id": rid})
        elif kind in ("reset", "drop_scope"):
            scope = self.parse_scope(msg, rid)
            if scope is _BAD_SCOPE:
                return
            if scope is not None:
                self.scope_request(kind, rid, scope)
            elif kind == "drop_scope":
                self.protocol_error(rid, "drop_scope: field 'scope' must be a string (the main "
                                         "namespace cannot be dropped)")
            else:
                self.new_namespace()
                self.restore_namespace()
                self.fix_stdio()
                self.send({"type": "reset_done", "id": rid})
        elif kind == "shutdown":
            self.send({"type": "bye", "id": rid})
            os._exit(0)
        elif kind == "reply":
            if rid in self.abandoned_calls:  # late answer to a call interrupted by a timeout
                self.abandoned_calls.discard(rid)
            else:
                self.protocol_error(rid, "unexpected reply frame: no host call is waiting")
        else:
            self.protocol_error(rid, "unknown frame type %r" % (kind,))


# --------------------------------------------------------------------------------------------
# `site`, on demand.  Hosts may start the driver with -S: `site` (the site-packages entries of
# sys.path, their .pth files, sitecustomize) is then run the first time a cell needs it, not at
# start-up, where it costs a quarter of the interpreter's start.  A cell "needs it" when it
# imports a module that no finder finds without it, or one of _SITE_FIRST (which read sys.path
# or site's results); a cell that imports only the standard library never pays for it.

_SITE_FIRST = frozenset(("site", "sitecustomize", "usercustomize", "sysconfig", "pkgutil",
                         "pkg_resources", "importlib.metadata", "importlib_metadata",
                         "importlib.resources"))


class _LazySite(object):
    """A meta path finder that runs site.main() once, then finds nothing.  One sits first in
    sys.meta_path (for _SITE_FIRST) and one last (for modules nobody else found, which it then
    looks for again with site's sys.path and finders).  They stay in sys.meta_path once done:
    removing an entry while the import system walks the list would make it skip the next."""

    lock = _thread.allocate_lock()
    done = False
    driver = None

    def __init__(self, last):
        self.last = last

    def find_spec(self, name, path=None, target=None):
        if _LazySite.done or (not self.last and name not in _SITE_FIRST):
            return None
        _LazySite.load()
        if not self.last:
            return None
        for finder in list(sys.meta_path):
            if isinstance(finder, _LazySite):
                continue
            find = getattr(finder, "find_spec", None)
            if find is not None:
                spec = find(name, path, target)
                if spec is not None:
                    return spec
        return None

    @classmethod
    def load(cls):
        """site.main() (once; any thread), inside the cell's critical section: a timeout or an
        interrupt that comes meanwhile is raised when it is done, never half way through."""
        drv = cls.driver
        main = drv is not None and _thread.get_ident() == drv.main_ident
        with cls.lock:
            if cls.done:
                return
            cls.done = True
            if drv is not None:
                drv._enter_crit(main)
            try:
                cwd_first = sys.path[:1] == [""]
                if cwd_first:  # site would make "" the absolute path of today's cwd
                    del sys.path[0]
                try:
                    import site
                    site.main()
                except Exception as e:
                    fatal("site failed: %s: %s" % (type(e).__name__, e))
                finally:
                    if cwd_first:
                        sys.path.insert(0, "")
            finally:
                if drv is not None:
                    drv._leave_crit(main)


def lazy_site(drv):
    """Puts the _LazySite finders in place when the interpreter started without `site` (-S),
    and the builtins site would have made at once (exit, quit, help)."""
    if not sys.flags.no_site:
        return
    try:
        import _sitebuiltins
        builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
        builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")
        builtins.help = _sitebuiltins._Helper()
    except Exception:
        pass
    _LazySite.driver = drv
    sys.meta_path.insert(0, _LazySite(False))
    sys.meta_path.append(_LazySite(True))


# --------------------------------------------------------------------------------------------
# start-up

USAGE = "usage: driver.py [--in-fd N --out-fd M] [--volume PATH] [--workdir PATH]\n"


def parse_args(argv):
    opts = {"in_fd": None, "out_fd": None, "volume": None, "workdir": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            sys.stdout.write(USAGE)
            sys.exit(0)
        key, eq, val = arg.partition("=")
        name = {"--in-fd": "in_fd", "--out-fd": "out_fd", "--volume": "volume",
                "--workdir": "workdir"}.get(key)
        if name is None:
            raise ValueError("unknown argument %r" % arg)
        if not eq:
            i += 1
            if i >= len(argv):
                raise ValueError("%s needs a value" % key)
            val = argv[i]
        if name in ("in_fd", "out_fd"):
            try:
                val = int(val)
            except ValueError:
                raise ValueError("%s needs an integer, got %r" % (key, val))
            if val < 0:
                raise ValueError("%s needs a non-negative integer" % key)
        opts[name] = val
        i += 1
    return opts


def main(argv=None):
    try:
        opts = parse_args(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        sys.stderr.write("driver.py: %s\n%s" % (e, USAGE))
        return 2
    in_src = 0 if opts["in_fd"] is None else opts["in_fd"]
    out_src = 1 if opts["out_fd"] is None else opts["out_fd"]
    try:
        in_fd = dup_high(in_src)
        out_fd = dup_high(out_src)
    except OSError as e:
        sys.stderr.write("driver.py: bad channel fd: %s\n" % (e,))
        return 2
    for src in {in_src, out_src}:
        if src > 2:
            try:
                os.close(src)
            except OSError:
                pass
    if opts["workdir"] is not None:
        try:
            os.chdir(opts["workdir"])
        except OSError as e:
            sys.stderr.write("driver.py: cannot chdir to %r: %s\n" % (opts["workdir"], e))
            return 2

    # The driver's own stderr (the backend's log of it) is kept on a private fd: once fd 2 is a
    # capture pipe, this is where the driver's own fatal errors can still be told.
    global _log_fd
    try:
        _log_fd = dup_high(2)
    except OSError:
        _log_fd = None

    # fds 0, 1, 2: /dev/null first (so the pipes below never land on 0-2), then the pipes
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    devnull_fd = dup_high(null)
    if null > 2:
        os.close(null)

    sys.argv = [""]
    here = __file__ if __file__.startswith("/") else os.getcwd() + "/" + __file__
    if sys.path and sys.path[0] == here.rpartition("/")[0]:
        sys.path[0] = ""
    try:
        drv = Driver(in_fd, out_fd, opts["volume"], devnull_fd)
        drv.fix_stdio()
        drv.install_signals()
        drv.out.start()
        drv.err.start()
        lazy_site(drv)
        global _compile_fast, _ast_ready
        _compile_fast = _probe_compile_by_exec()
        drv.ready()
        if _compile_fast is None:
            # The first compile() of a process makes Python's AST types (about a millisecond):
            # done once the host has its "ready", so the host works on its first request
            # meanwhile, and a sandbox started ahead pays it before it is taken over.
            compile("", "<rlm-driver>", "exec", 0, True)
            _ast_ready = True
        drv.serve()
    except BaseException as e:
        import traceback
        fatal("driver failed: " + "".join(traceback.format_exception(type(e), e,
                                                                     e.__traceback__)))
        os._exit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
