"""aio.py - the asyncio face: the same interpreters with coroutine methods, run() and Pool.

    async with rlm.aio.DaytonaInterpreter(volume_name="memory") as interp:
        result = await interp.execute("SUBMIT(answer=6 * 7)")

Each interpreter does its blocking work on a thread of its own (one per interpreter, alive
until shutdown): the event loop is never blocked, calls on one interpreter run in order, and
the local backend's sandbox, which dies with the thread that started it, lives as long as the
interpreter. Tools and llm callables may be coroutine functions: they run on the event loop
while the cell that called them waits. interrupt() and cancel() are plain methods (they only
signal). Cancelling the task that awaits a call cancels the interpreter (the running call
stops within about 100 ms; the interpreter is then unusable, as after cancel()).
"""
import asyncio
import concurrent.futures
import functools

from . import interpreter as _sync
from . import pool as _pool
from .run import CancelFlag
from .run import run as _sync_run

__all__ = ["Interpreter", "LocalInterpreter", "DaytonaInterpreter", "ModalInterpreter",
           "run", "Pool"]


def _consume(fut):
    """Reads the outcome of a call whose awaiter was cancelled (the CancelledError it ends
    with is expected), so asyncio does not report it as never retrieved."""
    if not fut.cancelled():
        fut.exception()


class _AsyncBase:
    _sync_class = _sync.Interpreter

    def __init__(self, *args, **kwargs):
        self._adopt(self._sync_class(*args, **kwargs))

    def _adopt(self, inner):
        self._inner = inner
        self._loop = None
        self._executor = None
        inner._hostcalls.loop = lambda: self._loop

    async def _call(self, name, *args, **kwargs):
        loop = self._loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="rlm-%s" % self._inner.backend)
        fut = loop.run_in_executor(self._executor, functools.partial(
            getattr(self._inner, name), *args, **kwargs))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            self._inner.cancel()
            fut.add_done_callback(_consume)
            raise

    @property
    def backend(self):
        return self._inner.backend

    @property
    def tools(self):
        """The tools dict; coroutine functions are welcome. Changes apply from the next
        execute()."""
        return self._inner.tools

    @property
    def started(self):
        return self._inner.started

    async def start(self):
        await self._call("start")
        return self

    async def execute(self, code, variables=None, **kwargs):
        return await self._call("execute", code, variables, **kwargs)

    async def execute_file(self, path, variables=None, **kwargs):
        return await self._call("execute_file", path, variables, **kwargs)

    async def upload(self, data_or_path, remote):
        return await self._call("upload", data_or_path, remote)

    async def download(self, remote):
        return await self._call("download", remote)

    async def run_command(self, argv, cwd=None, timeout=None):
        return await self._call("run_command", argv, cwd, timeout)

    async def reset(self):
        return await self._call("reset")

    async def status(self):
        return await self._call("status")

    async def shutdown(self):
        """Shuts the sandbox down (idempotent) and ends the interpreter's thread."""
        try:
            if self._executor is not None:
                await asyncio.get_running_loop().run_in_executor(self._executor,
                                                                 self._inner.shutdown)
            else:
                self._inner.shutdown()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None

    aclose = shutdown

    def interrupt(self):
        self._inner.interrupt()

    def cancel(self):
        self._inner.cancel()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.shutdown()

    def __repr__(self):
        return "<rlm.aio %r>" % (self._inner,)


class Interpreter(_AsyncBase):
    """rlm.Interpreter with coroutine methods (same arguments)."""
    _sync_class = _sync.Interpreter


class LocalInterpreter(_AsyncBase):
    """rlm.LocalInterpreter with coroutine methods."""
    _sync_class = _sync.LocalInterpreter


class DaytonaInterpreter(_AsyncBase):
    """rlm.DaytonaInterpreter with coroutine methods."""
    _sync_class = _sync.DaytonaInterpreter


class ModalInterpreter(_AsyncBase):
    """rlm.ModalInterpreter with coroutine methods."""
    _sync_class = _sync.ModalInterpreter


async def run(query, context=None, **kwargs):
    """rlm.run on a thread of its own (same arguments); the llm and tools callables may be
    coroutine functions. Cancelling the awaiting task cancels the run."""
    loop = asyncio.get_running_loop()
    flag = kwargs.pop("cancel", None) or CancelFlag()
    if isinstance(kwargs.get("interpreter"), _AsyncBase):
        kwargs["interpreter"] = kwargs["interpreter"]._inner
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rlm-run") as ex:
        fut = loop.run_in_executor(ex, functools.partial(
            _sync_run, query, context, cancel=flag, _loop=lambda: loop, **kwargs))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            flag.cancel()
            fut.add_done_callback(_consume)
            raise


class Pool:
    """rlm.Pool with a coroutine acquire: `async with pool.interpreter() as interp:` gives
    an rlm.aio interpreter (its calls on a thread of its own), handed back on exit."""

    def __init__(self, *args, **kwargs):
        self._pool = _pool.Pool(*args, **kwargs)

    async def acquire(self, timeout=None, **kwargs):
        loop = asyncio.get_running_loop()
        inner = await loop.run_in_executor(None, functools.partial(
            self._pool.acquire, timeout, **kwargs))
        wrapper = Interpreter.__new__(Interpreter)
        wrapper._adopt(inner)
        return wrapper

    def interpreter(self, timeout=None, **kwargs):
        return _Lease(self, timeout, kwargs)

    def stats(self):
        return self._pool.stats()

    @property
    def run_id(self):
        return self._pool.run_id

    def cancel(self):
        self._pool.cancel()

    async def close(self):
        await asyncio.get_running_loop().run_in_executor(None, self._pool.close)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


class _Lease:
    def __init__(self, pool, timeout, kwargs):
        self.pool, self.timeout, self.kwargs = pool, timeout, kwargs

    async def __aenter__(self):
        self.interp = await self.pool.acquire(self.timeout, **self.kwargs)
        return self.interp

    async def __aexit__(self, *exc):
        await self.interp.shutdown()
