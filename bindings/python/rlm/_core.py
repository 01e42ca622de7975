"""_core.py - what every part of the package shares: turning a failed call into its exception,
JSON out of the library, and the configuration an interpreter, a run or a pool starts from.

A configuration is built the way the `rlm` command builds it: built-in defaults, then the
config file ($RLM_CONFIG, ./rlm.json, ~/.config/rlm/config.json), then the environment
(RLM_BACKEND, DAYTONA_API_KEY, ...), then what the caller passed (config=, backend=, keyword
options), each layer over the one before.
"""
import ctypes
import difflib
import json
import os
import threading

from . import _lib, errors

# Keyword options every backend takes, beside its own (`rlm backends describe NAME`) and the
# keys of the config's `limits` section.
ALIASES = {
    "timeout": "the sandbox's lifetime in seconds (backends.<b>.timeout_s where the backend "
               "has it); also the per-cell timeout unless execute_timeout is given",
    "execute_timeout": "the per-cell timeout in seconds (limits.execute_timeout_s)",
}


def raise_error(rc, err):
    """Raises the exception for a failed call (rc < 0) and its filled rlm_error, which is
    cleared for its next use (interpreters reuse theirs)."""
    message = err.message.decode("utf-8", "replace") if err.message else ""
    if not message:
        message = _lib.load().rlm_strerror(rc).decode()
    http_status, request_id = err.http_status, err.request_id.decode("utf-8", "replace")
    ctypes.memset(ctypes.addressof(err), 0, ctypes.sizeof(err))
    raise errors.from_code(rc, message, http_status, request_id, _lib.path())


def check(rc, err):
    if rc:
        raise_error(rc, err)


def lib():
    """The loaded librlm, or rlm.LibraryError saying where it was looked for."""
    try:
        return _lib.load()
    except _lib.LibraryNotFound as e:
        raise errors.LibraryError(str(e)) from None


def to_json_arg(value):
    """A Python value as the JSON text rlm_config_set takes."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    elif isinstance(value, tuple):
        value = list(value)
    elif isinstance(value, (list,)):
        value = [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value]
    return json.dumps(value)


class Config:
    """An owned rlm_config handle (freed with the object or by close())."""

    def __init__(self):
        L = lib()
        self.handle = _lib.c_void_p()
        err = _lib.Error()
        check(L.rlm_config_new(_lib.byref(self.handle), _lib.byref(err)), err)

    def close(self):
        if self.handle:
            _lib.load().rlm_config_free(self.handle)
            self.handle = _lib.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _call(self, fn, *args):
        err = _lib.Error()
        check(fn(self.handle, *args, _lib.byref(err)), err)

    def load_layers(self, config=None):
        """Files, then the environment, then config= (a dict merged over them, or a path)."""
        L = _lib.load()
        self._call(L.rlm_config_load_default_files)
        self._call(L.rlm_config_apply_env)
        if config is None:
            return
        if isinstance(config, dict):
            self._call(L.rlm_config_merge_json, json.dumps(config).encode(), b"config=")
        elif isinstance(config, (str, os.PathLike)):
            self._call(L.rlm_config_load_file, os.fsencode(config))
        else:
            raise TypeError("config must be a dict or the path of a JSON file, not %s"
                            % type(config).__name__)

    def set(self, key, value):
        self._call(_lib.load().rlm_config_set, key.encode(), to_json_arg(value).encode())

    def get(self, key=""):
        return json.loads(_lib.take_string(_lib.load().rlm_config_get_json(
            self.handle, key.encode())) or "null")


_plugins_lock = threading.Lock()
_plugins_cache = {}


def plugins(cfg):
    """rlm_plugins_json for cfg's plugin path, parsed (cached per plugin path)."""
    key = json.dumps(cfg.get("plugin_path")) + os.environ.get("RLM_PLUGIN_PATH", "")
    with _plugins_lock:
        if key not in _plugins_cache:
            err = _lib.Error()
            p = _lib.load().rlm_plugins_json(cfg.handle, _lib.byref(err))
            if not p:
                raise_error(err.code or errors.NoMemoryError.status_code, err)
            _plugins_cache[key] = json.loads(_lib.take_string(p))
        return _plugins_cache[key]


def backend_options(cfg, backend):
    """{option name: spec} of a backend plugin; ConfigError for an unknown backend."""
    found = [p for p in plugins(cfg) if p.get("kind") == "backend"]
    for p in found:
        if p["name"] == backend:
            if "error" in p:
                raise errors.PluginError("backend %s cannot be loaded: %s" % (backend, p["error"]),
                                         library=_lib.path())
            return {o["name"]: o for o in p.get("options", [])}
    names = sorted(p["name"] for p in found)
    near = difflib.get_close_matches(backend, names, 1)
    raise errors.ConfigError("unknown backend %r%s (backends found: %s)" % (
        backend, "; did you mean %r?" % near[0] if near else "", ", ".join(names)),
        library=_lib.path())


def apply_options(cfg, options, caller, extra_names=()):
    """Sets keyword options on cfg: the aliases, the backend's own options, then the limits
    keys. None means "not given". Unknown names are a TypeError naming the nearest one."""
    backend = cfg.get("backend") or "local"
    specs = backend_options(cfg, backend)
    limits = cfg.get("limits") or {}
    given = {k: v for k, v in options.items() if v is not None}
    if "timeout" in given:
        t = given.pop("timeout")
        if "timeout_s" in specs:
            cfg.set("backends.%s.timeout_s" % backend, t)
        given.setdefault("execute_timeout", t)
    if "execute_timeout" in given:
        cfg.set("limits.execute_timeout_s", given.pop("execute_timeout"))
    for name, value in given.items():
        if name in specs:
            cfg.set("backends.%s.%s" % (backend, name), value)
        elif name in limits:
            cfg.set("limits.%s" % name, value)
        else:
            known = sorted(set(specs) | set(limits) | set(ALIASES) | set(extra_names))
            near = difflib.get_close_matches(name, known, 1, 0.6)
            raise TypeError("%s got an unexpected keyword argument %r%s (backend %s takes: %s)"
                            % (caller, name, "; did you mean %r?" % near[0] if near else "",
                               backend, ", ".join(known)))
    return backend


def make_config(backend, options, config, caller, extra_names=()):
    """A Config with every layer applied, and the backend it names."""
    cfg = Config()
    try:
        cfg.load_layers(config)
        if backend is not None:
            cfg.set("backend", backend)
        name = apply_options(cfg, options, caller, extra_names)
    except BaseException:
        cfg.close()
        raise
    return cfg, name
