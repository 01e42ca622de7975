"""rlm - Recursive Language Model sandboxes from Python, over librlm (ctypes, no dependency).

    import rlm
    with rlm.LocalInterpreter() as interp:          # or DaytonaInterpreter, ModalInterpreter
        r = interp.execute("SUBMIT(answer=sum(range(10)))")
        print(r.answer)                               # 45

    answer = rlm.run("What is 6 * 7?", llm="openai", model="gpt-4o-mini").answer

rlm.eval runs a task file on a pool, as `rlm eval` does. rlm.aio has the same classes
with coroutine methods; rlm.adapters has dspy's CodeInterpreter shape and rllm's
CodeToolOutput. rlm.library_path() says which librlm was loaded: the file
RLM_LIBRARY names, else the one installed with this package, else the one next to an `rlm`
on PATH, else a source checkout's build/lib, else the dynamic loader's choice.
"""
from . import _lib
from ._eval import EvalSummary, eval, report as eval_report, score as eval_score
from ._result import CommandResult, ExecError, Result, ToolOutput, tool_output
from .errors import (AuthError, BackendError, BudgetError, CancelledError, ClosedError,
                     ConfigError, Error, InvalidArgumentError, LibraryError, LocalIOError,
                     NoMemoryError, NotFoundError, NotSupportedError, PluginError,
                     ProtocolError, QuotaError, RLMTimeoutError, StateLostError,
                     TransientError)
from .interpreter import (DaytonaInterpreter, Interpreter, LocalInterpreter,
                          ModalInterpreter)
from .pool import Pool
from .run import CancelFlag, RunResult, run

__version__ = "0.1.0"

__all__ = [
    "Interpreter", "LocalInterpreter", "DaytonaInterpreter", "ModalInterpreter", "Result",
    "ExecError", "CommandResult", "ToolOutput", "tool_output", "run", "RunResult", "CancelFlag",
    "Pool", "eval", "EvalSummary", "eval_score", "eval_report",
    "library_path", "library_version", "backends",
    "Error", "InvalidArgumentError", "NoMemoryError", "NotFoundError", "NotSupportedError",
    "ConfigError", "PluginError", "RLMTimeoutError", "AuthError", "QuotaError",
    "TransientError", "BackendError", "ProtocolError", "StateLostError", "BudgetError",
    "LocalIOError", "CancelledError", "ClosedError", "LibraryError",
]


def library_path():
    """The path of the librlm this package loaded (loading it if needed)."""
    from . import _core
    _core.lib()
    return _lib.path()


def library_version():
    """librlm's version string."""
    from . import _core
    return _core.lib().rlm_version().decode()


def backends(config=None):
    """The backend plugins librlm finds: [{name, file, abi, summary, capabilities, options}]
    (what `rlm backends` lists), with config files and the environment applied."""
    from . import _core
    cfg = _core.Config()
    try:
        cfg.load_layers(config)
        return [p for p in _core.plugins(cfg) if p.get("kind") == "backend"]
    finally:
        cfg.close()
