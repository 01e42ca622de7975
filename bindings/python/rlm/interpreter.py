"""interpreter.py - a persistent Python REPL in a sandbox: rlm.Interpreter and the named shapes
Python RLM users already write (LocalInterpreter, DaytonaInterpreter, ModalInterpreter).

    with rlm.DaytonaInterpreter(volume_name="memory", timeout=600) as interp:
        result = interp.execute("SUBMIT(answer=6 * 7)")
        print(result.answer)

Each keyword option maps onto the backend's own option of that name (`rlm backends describe
NAME`), onto a key of the config's `limits` section, or onto an alias (timeout,
execute_timeout); anything else is a TypeError naming the nearest option. Config files and
environment variables apply first, as for the `rlm` command.

Threads: the GIL is released while librlm works, so interpreters on different threads run in
parallel. One interpreter serves one call at a time (calls from other threads wait), except
interrupt() and cancel(), which are meant to come from another thread. On the local backend
a sandbox dies with the thread that started it (Linux's parent-death signal follows the
thread): start interpreters on threads that outlive them (rlm.aio does this for you).
"""
import ctypes
import json
import os
import threading
import weakref

from . import _core, _lib, errors
from ._hostcalls import HostCalls, check_tool_name, describe
from ._result import CommandResult, Result

# Keywords every interpreter takes beside the backend's options.
PACKAGE_KEYWORDS = ("tools", "llm", "sub_lm", "config", "output_names")


def _close_handle(handle):
    _lib.load().rlm_interp_close(handle)


class Interpreter:
    """A sandboxed REPL on any backend. See the module docstring.

    backend       "local", "daytona", "modal" (None: the config's, else local)
    tools         {"name": callable}: callable from sandbox code as name(...), on every
                  backend; arguments and results travel as JSON
    llm           callable(prompt[, model=]) -> str answering llm_query / llm_query_batched
                  (sub_lm is an alias, as in fleet-rlm; a dspy.LM works as it is)
    config        a dict merged over the config files, or the path of a JSON config file
    output_names  names that positional SUBMIT values map onto
    **options     backend options, limits keys, timeout=, execute_timeout=
    """

    _fixed_backend = None

    def __init__(self, backend=None, *, tools=None, llm=None, sub_lm=None, config=None,
                 output_names=None, **options):
        if self._fixed_backend is not None and backend is not None:
            raise TypeError("%s() runs on %s; use rlm.Interpreter(backend=...) for another"
                            % (type(self).__name__, self._fixed_backend))
        self._name = type(self).__name__
        self._cfg, self.backend = _core.make_config(
            backend if backend is not None else self._fixed_backend, options,
            config, self._name + "()", PACKAGE_KEYWORDS)
        self.output_names = list(output_names) if output_names else None
        self._hostcalls = HostCalls(tools, llm if llm is not None else sub_lm,
                                    self._limit("max_llm_calls"))
        self._lock = threading.RLock()
        self._handle = None
        self._finalizer = None
        self._closed = False
        self._out, self._err = _lib.c_void_p(), _lib.Error()

    # ---- lifecycle ----
    def _limit(self, key):
        v = (self._cfg.get("limits") or {}).get(key)
        return int(v) if isinstance(v, (int, float)) else None

    @property
    def tools(self):
        """The tools dict (name -> callable). Changes apply from the next execute()."""
        return self._hostcalls.tools

    @property
    def started(self):
        return self._handle is not None

    def start(self):
        """Creates the sandbox and starts the REPL in it. Idempotent; after shutdown() it
        opens a new sandbox."""
        with self._lock:
            if self._handle is not None:
                return self
            L = _core.lib()
            handle = _lib.c_void_p()
            err = _lib.Error()
            _core.check(L.rlm_interp_open(self._cfg.handle, _lib.byref(handle),
                                          _lib.byref(err)), err)
            self._adopt(handle.value, weakref.finalize(self, _close_handle, handle.value))
            return self

    def _adopt(self, handle, finalizer):
        self._handle = handle
        self._finalizer = finalizer
        self._closed = False
        self._registered = {}
        L = _lib.load()
        L.rlm_interp_set_call_handler(handle, self._hostcalls.c_handler, None)
        self._sync_tools()

    def _sync_tools(self):
        """Registers tools added since the last cell and unregisters removed ones."""
        want = self._hostcalls.tools
        if self._registered.keys() == want.keys():
            return
        L = _lib.load()
        for name in list(self._registered):
            if name not in want:
                err = _lib.Error()
                _core.check(L.rlm_interp_register_tool(self._handle, name.encode(), None,
                                                       _lib.CALL_HANDLER(), None,
                                                       _lib.byref(err)), err)
                del self._registered[name]
        for name, fn in list(want.items()):
            if name in self._registered:
                continue
            check_tool_name(name)
            err = _lib.Error()
            _core.check(L.rlm_interp_register_tool(
                self._handle, name.encode(), describe(name, getattr(fn, "__wrapped__", fn))
                .encode("utf-8", "replace"), self._hostcalls.c_handler, None,
                _lib.byref(err)), err)
            self._registered[name] = fn

    def shutdown(self):
        """Shuts the sandbox down (idempotent). Later calls raise rlm.ClosedError until
        start() opens a new one."""
        with self._lock:
            fin, self._finalizer, self._handle = self._finalizer, None, None
            self._closed = True
            if fin is not None:
                fin()

    close = shutdown

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.shutdown()

    def _live(self):
        if self._handle is None:
            if self._closed:
                raise errors.ClosedError("%s was shut down; start() opens a new sandbox"
                                         % self._name)
            self.start()
        return self._handle

    # ---- cells ----
    def execute(self, code, variables=None, *, timeout=None, output_names=None,
                max_output_chars=None):
        """Runs code as one cell and returns a Result. variables ({name: value}, JSON-encoded;
        what json cannot encode goes as its str()) are set first. A failure of the code is in
        result.error, never raised; only infrastructure faults raise rlm.Error."""
        if not isinstance(code, str):
            raise TypeError("code must be a str, not %s" % type(code).__name__)
        names = output_names if output_names is not None else self.output_names
        opts = None
        if variables or names or timeout is not None or max_output_chars is not None:
            opts = _lib.ExecOptions()
            opts.struct_size = ctypes.sizeof(_lib.ExecOptions)
            if variables:
                opts.vars_json = json.dumps(dict(variables), default=str).encode()
            if names:
                arr = (_lib.c_char_p * (len(names) + 1))(*[n.encode() for n in names], None)
                opts.output_names = ctypes.cast(arr, ctypes.POINTER(_lib.c_char_p))
            if timeout is not None:
                opts.timeout_s = float(timeout)
            if max_output_chars is not None:
                opts.max_output_chars = int(max_output_chars)
        # A lone surrogate goes through as invalid UTF-8: the library says where it is.
        code_b = code.encode("utf-8", "surrogatepass")
        out, err = self._out, self._err  # reused: a call holds the lock while it uses them
        with self._lock:
            handle = self._handle or self._live()
            if self._registered.keys() != self._hostcalls.tools.keys():
                self._sync_tools()
            rc = _lib._lib.rlm_interp_execute_ex(handle, code_b, opts, out, err)
            if rc:
                _core.raise_error(rc, err)
            return Result(out.value)

    def execute_file(self, path, variables=None, **kwargs):
        """Runs a local Python file as one cell."""
        with open(path, encoding="utf-8") as f:
            return self.execute(f.read(), variables, **kwargs)

    # ---- files and commands ----
    def upload(self, data_or_path, remote):
        """Writes to a sandbox path (relative: the work directory; parents are made).
        bytes-like: those bytes; str or os.PathLike: a local file, or a local directory
        (copied file by file under remote)."""
        if isinstance(data_or_path, (bytes, bytearray, memoryview)):
            self._upload_bytes(bytes(data_or_path), remote)
            return
        if not isinstance(data_or_path, (str, os.PathLike)):
            raise TypeError("upload takes bytes or a local path, not %s"
                            % type(data_or_path).__name__)
        local = os.fspath(data_or_path)
        if os.path.isdir(local):
            for root, _, files in os.walk(local):
                for name in sorted(files):
                    full = os.path.join(root, name)
                    rel = os.path.relpath(full, local).replace(os.sep, "/")
                    with open(full, "rb") as f:
                        self._upload_bytes(f.read(), remote.rstrip("/") + "/" + rel)
            return
        with open(local, "rb") as f:
            self._upload_bytes(f.read(), remote)

    def _upload_bytes(self, data, remote):
        err = _lib.Error()
        with self._lock:
            rc = _lib.load().rlm_interp_upload(self._live(), data, len(data),
                                               os.fsencode(remote), err)
        _core.check(rc, err)

    def download(self, remote):
        """The bytes of a sandbox file."""
        L = _lib.load()
        data, n, err = _lib.c_void_p(), _lib.c_size_t(), _lib.Error()
        with self._lock:
            rc = L.rlm_interp_download(self._live(), os.fsencode(remote), data, n, err)
        _core.check(rc, err)
        try:
            return ctypes.string_at(data, n.value)
        finally:
            L.rlm_free(data)

    def run_command(self, argv, cwd=None, timeout=None):
        """Runs a command in the sandbox outside the REPL: argv a list, or a str run by sh -c.
        Returns a CommandResult (exit_code, stdout, stderr, timed_out)."""
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        argv = [os.fsencode(a) for a in argv]
        if not argv:
            raise ValueError("run_command: empty argv")
        L = _lib.load()
        arr = (_lib.c_char_p * (len(argv) + 1))(*argv, None)
        out = ctypes.POINTER(_lib.CommandOutput)()
        err = _lib.Error()
        with self._lock:
            rc = L.rlm_interp_run_command(self._live(), arr,
                                          os.fsencode(cwd) if cwd is not None else None,
                                          float(timeout or 0), out, err)
        _core.check(rc, err)
        try:
            o = out.contents
            return CommandResult(o.exit_code, ctypes.string_at(o.stdout_data, o.stdout_len),
                                 ctypes.string_at(o.stderr_data, o.stderr_len),
                                 bool(o.timed_out))
        finally:
            L.rlm_command_output_free(out)

    # ---- control ----
    def interrupt(self):
        """Interrupts the running cell (KeyboardInterrupt in the user's code). Meant to be
        called from another thread; does not wait for the cell."""
        handle = self._handle
        if handle is None:
            return
        err = _lib.Error()
        _core.check(_lib.load().rlm_interp_interrupt(handle, err), err)

    def cancel(self):
        """Cancels what the interpreter does and will do: the running call raises
        rlm.CancelledError within about 100 ms, and so does every later one until shutdown.
        Safe from any thread."""
        handle = self._handle
        if handle is not None:
            _lib.load().rlm_interp_cancel(handle)

    def reset(self):
        """A fresh namespace (buffers, files and the volume are kept)."""
        err = _lib.Error()
        with self._lock:
            rc = _lib.load().rlm_interp_reset(self._live(), err)
        _core.check(rc, err)

    def status(self):
        """A dict: backend, plugin file, capabilities, running, driver versions, and the
        backend's own status. Does not start a sandbox."""
        with self._lock:
            if self._handle is None:
                return {"backend": self.backend, "started": False,
                        "closed": self._closed, "library": _lib.path()}
            doc = json.loads(_lib.take_string(
                _lib.load().rlm_interp_status_json(self._handle)) or "{}")
        doc["started"] = True
        doc["library"] = _lib.path()
        return doc

    def __repr__(self):
        state = "started" if self._handle else ("shut down" if self._closed else "not started")
        return "<%s backend=%s %s>" % (self._name, self.backend, state)


class LocalInterpreter(Interpreter):
    """The local backend: the REPL as a child process of this one, with rlimits and, where
    the host allows them, namespaces. Resource containment, not a security boundary."""
    _fixed_backend = "local"

    def __init__(self, *, tools=None, llm=None, sub_lm=None, config=None, output_names=None,
                 **options):
        super().__init__(None, tools=tools, llm=llm, sub_lm=sub_lm, config=config,
                         output_names=output_names, **options)


class DaytonaInterpreter(Interpreter):
    """A Daytona sandbox. fleet-rlm's keywords work as they are: repo_url, repo_ref,
    context_paths, volume_name (mounted at /home/daytona/memory, which is VOLUME in the
    sandbox), timeout (the sandbox's lifetime and, by default, each cell's), execute_timeout;
    DAYTONA_API_KEY (and DAYTONA_API_URL) come from the environment."""
    _fixed_backend = "daytona"

    def __init__(self, *, tools=None, llm=None, sub_lm=None, config=None, output_names=None,
                 **options):
        super().__init__(None, tools=tools, llm=llm, sub_lm=sub_lm, config=config,
                         output_names=output_names, **options)


class ModalInterpreter(Interpreter):
    """A Modal sandbox: volume_name (mounted at /data, VOLUME in the sandbox), timeout (the
    sandbox's lifetime and, by default, each cell's), execute_timeout, image, ...; the token
    comes from MODAL_TOKEN_ID / MODAL_TOKEN_SECRET or ~/.modal.toml."""
    _fixed_backend = "modal"

    def __init__(self, *, tools=None, llm=None, sub_lm=None, config=None, output_names=None,
                 **options):
        super().__init__(None, tools=tools, llm=llm, sub_lm=sub_lm, config=config,
                         output_names=output_names, **options)
