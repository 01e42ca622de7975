"""pool.py - rlm.Pool: many tasks, a bounded number of sandboxes (rlm/pool.h).

    with rlm.Pool("daytona", max_live=8, warm=2) as pool:
        def task(code):
            with pool.interpreter() as interp:        # a fresh sandbox, given back after
                return interp.execute(code).stdout
        results = list(concurrent.futures.ThreadPoolExecutor(32).map(task, codes))

The pool caps live sandboxes (max_live, counting those being created and shut down), spaces
creations (creates_per_s, shared by every rlm process of the user), keeps `warm` sandboxes
ready, and shuts each one down when it is given back (reuse=True keeps it for the next task
with a fresh namespace). Sandboxes are opened on the pool's own threads, so any thread may
lease one.
"""
import contextlib
import ctypes
import json
import threading
import weakref

from . import _core, _lib, errors
from ._hostcalls import HostCalls
from .interpreter import Interpreter

POOL_KEYWORDS = ("max_live", "warm", "creates_per_s", "run_id", "limiter_dir", "config")


def _close_pool(handle):
    _lib.load().rlm_pool_close(handle)


class _Leased(Interpreter):
    """An interpreter handed out by a pool: shutdown gives it back instead of closing it."""

    def __init__(self, pool, handle, flags, tools, llm):
        self._name = "rlm.Pool interpreter"
        self._cfg = pool._cfg
        self.backend = pool.backend
        self.output_names = None
        self._hostcalls = HostCalls(tools, llm, self._limit("max_llm_calls"))
        self._lock = threading.RLock()
        self._closed = False
        self._out, self._err = _lib.c_void_p(), _lib.Error()
        self._pool = pool
        self._flags = flags
        self._adopt(handle, weakref.finalize(self, pool._release, handle, flags))

    def start(self):
        if self._handle is None:
            raise errors.ClosedError("this pool interpreter was given back; lease another "
                                     "with pool.interpreter()")
        return self

    def shutdown(self, reuse=None):
        """Gives the sandbox back to the pool (idempotent)."""
        with self._lock:
            fin, self._finalizer, handle = self._finalizer, None, self._handle
            self._handle = None
            self._closed = True
            if fin is not None:
                fin.detach()
                flags = self._flags if reuse is None else (_lib.POOL_REUSE if reuse else 0)
                if handle and (flags & _lib.POOL_REUSE):
                    # A reused sandbox must not keep this lease's tools or handler.
                    L = _lib.load()
                    for name in list(self._registered):
                        L.rlm_interp_register_tool(handle, name.encode(), None,
                                                   _lib.CALL_HANDLER(), None, _lib.Error())
                    L.rlm_interp_set_call_handler(handle, _lib.CALL_HANDLER(), None)
                self._pool._release(handle, flags)

    close = shutdown


class Pool:
    """A pool of sandboxes on one backend. backend and **options as for rlm.Interpreter;
    max_live, warm, creates_per_s override the config's `pool` section (else the backend's
    defaults); run_id labels every sandbox (rlm backends gc NAME --run ID)."""

    def __init__(self, backend=None, *, max_live=None, warm=None, creates_per_s=None,
                 run_id=None, limiter_dir=None, config=None, **options):
        self._cfg, self.backend = _core.make_config(backend, options, config, "rlm.Pool()",
                                                    POOL_KEYWORDS)
        L = _core.lib()
        o = _lib.PoolOptions()
        o.struct_size = ctypes.sizeof(_lib.PoolOptions)
        o.warm = -1
        if max_live is not None:
            o.max_live = int(max_live)
        if warm is not None:
            o.warm = int(warm)
        if creates_per_s is not None:
            o.creates_per_s = float(creates_per_s)
        if run_id is not None:
            o.run_id = run_id.encode()
        if limiter_dir is not None:
            o.limiter_dir = str(limiter_dir).encode()
        handle = _lib.c_void_p()
        err = _lib.Error()
        _core.check(L.rlm_pool_open(self._cfg.handle, o, handle, err), err)
        self._handle = handle.value
        self._finalizer = weakref.finalize(self, _close_pool, self._handle)
        self._leased = weakref.WeakSet()
        self._lock = threading.Lock()

    def _live(self):
        if self._handle is None:
            raise errors.ClosedError("the pool was closed")
        return self._handle

    def _release(self, handle, flags):
        _lib.load().rlm_pool_release(self._live(), handle, flags)

    def acquire(self, timeout=None, *, reuse=False, tools=None, llm=None):
        """An interpreter of the pool (call its shutdown() to give it back), waiting at most
        timeout seconds (None: no limit) for a slot and its creation."""
        out = _lib.c_void_p()
        err = _lib.Error()
        rc = _lib.load().rlm_pool_acquire(self._live(), float(timeout or 0), out, err)
        _core.check(rc, err)
        interp = _Leased(self, out.value, _lib.POOL_REUSE if reuse else 0, tools, llm)
        self._leased.add(interp)
        return interp

    @contextlib.contextmanager
    def interpreter(self, timeout=None, *, reuse=False, tools=None, llm=None):
        """with pool.interpreter() as interp: ... -- leases a sandbox and gives it back."""
        interp = self.acquire(timeout, reuse=reuse, tools=tools, llm=llm)
        try:
            yield interp
        finally:
            interp.shutdown()

    @property
    def run_id(self):
        return _lib.load().rlm_pool_run_id(self._live()).decode()

    def stats(self):
        """{backend, run_id, max_live, creates_per_s, warm, live, creating, idle, busy,
        closing, waiting, peak_live, created, create_failures, closed}"""
        return json.loads(_lib.take_string(_lib.load().rlm_pool_stats_json(self._live())))

    def cancel(self):
        """Wakes waiting acquires (rlm.CancelledError) and cancels what is leased. Any
        thread."""
        if self._handle is not None:
            _lib.load().rlm_pool_cancel(self._handle)

    def close(self):
        """Gives back what is still leased, shuts every sandbox down, frees the pool."""
        with self._lock:
            if self._handle is None:
                return
            for interp in list(self._leased):
                interp.shutdown()
            fin, self._finalizer = self._finalizer, None
            fin()
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
