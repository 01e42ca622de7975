"""_lib.py - librlm through ctypes: where the library is found, and the few C declarations the
package calls.

The mirror is kept small: run results, statuses and pool statistics cross as JSON
(rlm_run_result_to_json, rlm_interp_status_json, rlm_pool_stats_json). Declared here, exactly
as include/rlm/*.h lays them out, are the structs the package fills in (rlm_error,
rlm_exec_options, rlm_run_options, rlm_pool_options, rlm_eval_options) and those it reads
field by field: rlm_result (read lazily, field by field, because a cell's round trip is tens
of microseconds and a JSON detour would add a third to it), rlm_command_output,
rlm_eval_summary. Versioned structs are stamped with their ctypes size, which equals the C
sizeof because the fields are the same in the same order.

ctypes releases the GIL for the whole of every foreign call, so C work on one thread never
stops Python code (or another interpreter's C work) on the others.
"""
import ctypes
import os
import shutil
import sys
import threading

from . import _paths

c_int, c_long, c_double, c_size_t = ctypes.c_int, ctypes.c_long, ctypes.c_double, ctypes.c_size_t
c_char_p, c_void_p, c_uint = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint
POINTER, byref = ctypes.POINTER, ctypes.byref

ERROR_MESSAGE_MAX = 1024
ERROR_REQUEST_ID_MAX = 128
POOL_REUSE = 1


class Error(ctypes.Structure):
    """rlm_error (rlm/error.h): fixed buffers, zero-initialised by ctypes."""
    _fields_ = [("code", c_int), ("http_status", c_long),
                ("message", ctypes.c_char * ERROR_MESSAGE_MAX),
                ("request_id", ctypes.c_char * ERROR_REQUEST_ID_MAX)]


class ExecOptions(ctypes.Structure):
    """rlm_exec_options (rlm/interp.h)."""
    _fields_ = [("struct_size", c_uint), ("vars_json", c_char_p),
                ("output_names", POINTER(c_char_p)), ("timeout_s", c_double),
                ("max_output_chars", c_long), ("scope", c_char_p), ("locals", c_int)]


class ExecErrorStruct(ctypes.Structure):
    """rlm_exec_error (rlm/interp.h)."""
    _fields_ = [("type", c_char_p), ("message", c_char_p), ("traceback", c_char_p),
                ("line", c_char_p)]


class ResultStruct(ctypes.Structure):
    """rlm_result (rlm/interp.h): allocated by the library, read here field by field (fields
    are only ever appended, so this prefix stays valid)."""
    _fields_ = [("stdout_text", c_void_p), ("stderr_text", c_void_p),
                ("stdout_chars", c_size_t), ("stderr_chars", c_size_t), ("truncated", c_int),
                ("error", c_void_p), ("submit_json", c_char_p),
                ("value", c_char_p), ("timed_out", c_int), ("state_lost", c_int),
                ("duration_ms", c_double), ("host_calls", c_uint), ("stdout_len", c_size_t),
                ("stderr_len", c_size_t), ("locals_json", c_char_p)]


class CommandOutput(ctypes.Structure):
    """rlm_command_output (rlm/interp.h)."""
    _fields_ = [("exit_code", c_int), ("timed_out", c_int), ("stdout_data", c_void_p),
                ("stdout_len", c_size_t), ("stderr_data", c_void_p), ("stderr_len", c_size_t)]


class LlmMessage(ctypes.Structure):
    """rlm_llm_message (rlm/plugin.h)."""
    _fields_ = [("role", c_char_p), ("content", c_char_p)]


# int (*)(void *ctx, const char *name, const char *args_json, const char *kwargs_json,
#         char **value_json, char **error_message): rlm_call_handler, also a tool's type.
CALL_HANDLER = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p, c_char_p,
                                POINTER(c_void_p), POINTER(c_void_p))
# int (*)(void *ctx, const rlm_llm_message *msgs, size_t n, const char *model, char **text,
#         rlm_error *err): rlm_llm_fn.
LLM_FN = ctypes.CFUNCTYPE(c_int, c_void_p, POINTER(LlmMessage), c_size_t, c_char_p,
                          POINTER(c_void_p), POINTER(Error))
# void (*)(void *ctx, const rlm_run_iteration *it): rlm_run_progress_fn (the iteration is
# read through rlm_run_iteration's leading fields only).
PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)


class RunOptions(ctypes.Structure):
    """rlm_run_options (rlm/run.h)."""
    _fields_ = [("struct_size", c_uint), ("task", c_char_p), ("context", c_void_p),
                ("context_len", c_size_t), ("context_file", c_char_p),
                ("trajectory_path", c_char_p), ("max_iterations", c_long),
                ("max_llm_calls", c_long), ("max_depth", c_long), ("max_output_chars", c_long),
                ("execute_timeout_s", c_double), ("llm_call_timeout_s", c_double),
                ("interp", c_void_p), ("on_iteration", PROGRESS_FN), ("progress_ctx", c_void_p),
                ("cancel", POINTER(c_int)), ("timeout_s", c_double),
                ("llm", LLM_FN), ("llm_ctx", c_void_p)]


class RunIteration(ctypes.Structure):
    """rlm_run_iteration (rlm/run.h)."""
    _fields_ = [("depth", c_int), ("iteration", c_int), ("max_iterations", c_int),
                ("blocks", c_int), ("submitted", c_int), ("fallback", c_int),
                ("iteration_s", c_double), ("llm_s", c_double), ("exec_s", c_double),
                ("prompt_tokens", c_long), ("completion_tokens", c_long),
                ("llm_calls_used", c_long), ("llm_calls_max", c_long)]


class PoolOptions(ctypes.Structure):
    """rlm_pool_options (rlm/pool.h)."""
    _fields_ = [("struct_size", c_uint), ("max_live", c_long), ("creates_per_s", c_double),
                ("warm", c_long), ("run_id", c_char_p), ("limiter_dir", c_char_p)]


class EvalProgress(ctypes.Structure):
    """rlm_eval_progress (rlm/eval.h)."""
    _fields_ = [("total", c_long), ("done", c_long), ("ok", c_long), ("task_error", c_long),
                ("infra_error", c_long), ("kept", c_long), ("finished", c_long),
                ("to_run", c_long), ("mean_score", c_double), ("elapsed_s", c_double),
                ("eta_s", c_double), ("id", c_char_p), ("status", c_char_p),
                ("error", c_char_p), ("score", c_double), ("duration_s", c_double),
                ("attempt", c_int)]


EVAL_PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, POINTER(EvalProgress))


class EvalOptions(ctypes.Structure):
    """rlm_eval_options (rlm/eval.h)."""
    _fields_ = [("struct_size", c_uint), ("tasks_path", c_char_p), ("out_dir", c_char_p),
                ("concurrency", c_long), ("task_timeout_s", c_double), ("scorer", c_char_p),
                ("limit", c_long), ("shard_index", c_long), ("shard_count", c_long),
                ("retries", c_long), ("dry_run", c_int), ("scorer_timeout_s", c_double),
                ("acquire_timeout_s", c_double), ("pool", POINTER(PoolOptions)),
                ("cancel", POINTER(c_int)), ("on_progress", EVAL_PROGRESS_FN),
                ("progress_ctx", c_void_p), ("llm", LLM_FN), ("llm_ctx", c_void_p)]


class EvalSummary(ctypes.Structure):
    """rlm_eval_summary (rlm/eval.h); allocated by the library, only read here."""
    _fields_ = [("total", c_long), ("ok", c_long), ("task_error", c_long),
                ("infra_error", c_long), ("missing", c_long), ("kept", c_long),
                ("to_run", c_long), ("finished", c_long), ("scored", c_long),
                ("mean_score", c_double), ("p50_s", c_double), ("p95_s", c_double),
                ("tokens_in", c_long), ("tokens_out", c_long), ("llm_calls", c_long),
                ("wall_s", c_double), ("tasks_per_min", c_double), ("cancelled", c_int),
                ("stop_code", c_int), ("stop_message", ctypes.c_char * ERROR_MESSAGE_MAX),
                ("unusable", c_int), ("results_path", c_char_p), ("workers", c_long),
                ("max_live", c_long), ("creates_per_s", c_double),
                ("run_id", ctypes.c_char * 40)]


# name: (restype, argtypes). Strings the library hands over and the caller frees are c_void_p
# (a c_char_p result would be copied and the pointer lost).
_PROTOTYPES = {
    "rlm_version": (c_char_p, []),
    "rlm_strerror": (c_char_p, [c_int]),
    "rlm_status_name": (c_char_p, [c_int]),
    "rlm_free": (None, [c_void_p]),
    "rlm_alloc": (c_void_p, [c_size_t]),
    "rlm_config_new": (c_int, [POINTER(c_void_p), POINTER(Error)]),
    "rlm_config_free": (None, [c_void_p]),
    "rlm_config_merge_json": (c_int, [c_void_p, c_char_p, c_char_p, POINTER(Error)]),
    "rlm_config_load_file": (c_int, [c_void_p, c_char_p, POINTER(Error)]),
    "rlm_config_load_default_files": (c_int, [c_void_p, POINTER(Error)]),
    "rlm_config_apply_env": (c_int, [c_void_p, POINTER(Error)]),
    "rlm_config_set": (c_int, [c_void_p, c_char_p, c_char_p, POINTER(Error)]),
    "rlm_config_validate": (c_int, [c_void_p, POINTER(Error)]),
    "rlm_config_get_json": (c_void_p, [c_void_p, c_char_p]),
    "rlm_plugins_json": (c_void_p, [c_void_p, POINTER(Error)]),
    "rlm_interp_open": (c_int, [c_void_p, POINTER(c_void_p), POINTER(Error)]),
    "rlm_interp_execute_ex": (c_int, [c_void_p, c_char_p, POINTER(ExecOptions),
                                      POINTER(c_void_p), POINTER(Error)]),
    "rlm_interp_upload": (c_int, [c_void_p, c_char_p, c_size_t, c_char_p, POINTER(Error)]),
    "rlm_interp_download": (c_int, [c_void_p, c_char_p, POINTER(c_void_p), POINTER(c_size_t),
                                    POINTER(Error)]),
    "rlm_interp_run_command": (c_int, [c_void_p, POINTER(c_char_p), c_char_p, c_double,
                                       POINTER(POINTER(CommandOutput)), POINTER(Error)]),
    "rlm_command_output_free": (None, [POINTER(CommandOutput)]),
    "rlm_interp_interrupt": (c_int, [c_void_p, POINTER(Error)]),
    "rlm_interp_cancel": (None, [c_void_p]),
    "rlm_interp_reset": (c_int, [c_void_p, POINTER(Error)]),
    "rlm_interp_set_call_handler": (None, [c_void_p, CALL_HANDLER, c_void_p]),
    "rlm_interp_register_tool": (c_int, [c_void_p, c_char_p, c_char_p, CALL_HANDLER, c_void_p,
                                         POINTER(Error)]),
    "rlm_interp_status_json": (c_void_p, [c_void_p]),
    "rlm_interp_close": (None, [c_void_p]),
    "rlm_result_free": (None, [c_void_p]),
    "rlm_result_to_json": (c_void_p, [c_void_p]),
    "rlm_tool_output_from_result": (c_void_p, [c_void_p, c_char_p]),
    "rlm_tool_output_free": (None, [c_void_p]),
    "rlm_tool_output_to_json": (c_void_p, [c_void_p]),
    "rlm_tool_output_to_string_len": (c_void_p, [c_void_p, POINTER(c_size_t)]),
    "rlm_run_options_init": (None, [POINTER(RunOptions)]),
    "rlm_run": (c_int, [c_void_p, POINTER(RunOptions), POINTER(c_void_p), POINTER(Error)]),
    "rlm_run_result_free": (None, [c_void_p]),
    "rlm_run_result_to_json": (c_void_p, [c_void_p]),
    "rlm_pool_open": (c_int, [c_void_p, POINTER(PoolOptions), POINTER(c_void_p),
                              POINTER(Error)]),
    "rlm_pool_acquire": (c_int, [c_void_p, c_double, POINTER(c_void_p), POINTER(Error)]),
    "rlm_pool_release": (None, [c_void_p, c_void_p, c_int]),
    "rlm_pool_run_id": (c_char_p, [c_void_p]),
    "rlm_pool_stats_json": (c_void_p, [c_void_p]),
    "rlm_pool_cancel": (None, [c_void_p]),
    "rlm_pool_close": (None, [c_void_p]),
    "rlm_eval_run": (c_int, [c_void_p, POINTER(EvalOptions), POINTER(POINTER(EvalSummary)),
                             POINTER(Error)]),
    "rlm_eval_summary_free": (None, [POINTER(EvalSummary)]),
    "rlm_eval_score": (c_int, [c_char_p, c_char_p, c_char_p, c_char_p, c_double,
                               POINTER(c_double), POINTER(Error)]),
    "rlm_eval_report": (c_int, [POINTER(c_char_p), c_size_t, c_int, c_char_p,
                                POINTER(c_void_p), POINTER(Error)]),
}

LIBRARY_NAME = "librlm.so.0"
_lock = threading.Lock()
_lib = None
_path = None


class LibraryNotFound(OSError):
    """No librlm could be loaded; the message lists every place that was tried."""


def _candidates():
    """(path, why) in the order they are tried."""
    env = os.environ.get("RLM_LIBRARY")
    if env:
        # An explicit choice is the only one: falling back would hide a wrong setting.
        return [(env, "RLM_LIBRARY")]
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    libdir = _paths.libdir(here)
    if libdir:
        out.append((os.path.join(libdir, LIBRARY_NAME), "the install this package came with"))
    exe = shutil.which("rlm")
    if exe:
        # <prefix>/bin/rlm beside <prefix>/lib[64|/<multiarch>], or a build tree's rlm
        # beside its lib/.
        bindir = os.path.dirname(os.path.realpath(exe))
        multiarch = getattr(sys.implementation, "_multiarch", None)
        subs = ["lib", "lib64"] + ([os.path.join("lib", multiarch)] if multiarch else [])
        for d in [os.path.join(os.path.dirname(bindir), sub) for sub in subs] + [
                os.path.join(bindir, "lib")]:
            out.append((os.path.join(d, LIBRARY_NAME), "next to %s" % exe))
    # A source checkout: bindings/python/rlm -> <repo>/build/lib.
    repo = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    out.append((os.path.join(repo, "build", "lib", LIBRARY_NAME), "the build tree"))
    out.append((LIBRARY_NAME, "the dynamic loader's search path"))
    seen, unique = set(), []
    for path, why in out:
        if path not in seen:
            seen.add(path)
            unique.append((path, why))
    return unique


def _declare(lib):
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def load():
    """The loaded library (loading it on first use)."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path, why in _candidates():
            if os.sep in path and not os.path.exists(path):
                tried.append("%s (%s): no such file" % (path, why))
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                tried.append("%s (%s): %s" % (path, why, e))
                continue
            try:
                _declare(lib)
            except AttributeError as e:
                tried.append("%s (%s): too old for this package (%s)" % (path, why, e))
                continue
            _path = _loaded_path(lib, path)
            _lib = lib
            return lib
        raise LibraryNotFound("cannot load librlm; tried:\n  " + "\n  ".join(tried) +
                              "\nset RLM_LIBRARY to the librlm.so.0 to use")


def _loaded_path(lib, fallback):
    """The file the dynamic loader actually opened (dladdr on one of its functions)."""
    class DlInfo(ctypes.Structure):
        _fields_ = [("dli_fname", c_char_p), ("dli_fbase", c_void_p),
                    ("dli_sname", c_char_p), ("dli_saddr", c_void_p)]
    try:
        libc = ctypes.CDLL(None)
        dladdr = libc.dladdr
        dladdr.argtypes = [c_void_p, POINTER(DlInfo)]
        info = DlInfo()
        if dladdr(ctypes.cast(lib.rlm_version, c_void_p), byref(info)) and info.dli_fname:
            return os.path.abspath(info.dli_fname.decode())
    except (OSError, AttributeError):
        pass
    return os.path.abspath(fallback) if os.sep in fallback else fallback


def path():
    """Where the loaded librlm is (loading it if needed)."""
    load()
    return _path


def take_string(ptr):
    """A str from a malloc'ed C string the caller owns, freed here (None for NULL)."""
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        _lib.rlm_free(ptr)


def dup_bytes(data):
    """data copied into memory librlm frees (rlm_alloc), NUL-terminated: what a callback hands
    over through a char ** out-parameter."""
    p = _lib.rlm_alloc(len(data) + 1)
    if not p:
        raise MemoryError("rlm_alloc(%d) failed" % (len(data) + 1))
    ctypes.memmove(p, data, len(data))
    ctypes.memset(p + len(data), 0, 1)
    return p
