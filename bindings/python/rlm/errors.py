"""errors.py - the exceptions of the rlm package, one per rlm_status (rlm/error.h).

An rlm call that fails raises the class of its status code; every class derives from
rlm.Error, which carries the library's message, the provider's HTTP status and request id.
A failure of the user's code in the sandbox (an exception, a timeout inside the cell) is
never an exception here: it is a Result whose `error` says what happened.
"""


class Error(Exception):
    """Base class of every rlm error.

    code        the rlm_status (a negative int; None for errors raised by the package itself)
    status      its name, e.g. "RLM_EAUTH"
    message     what went wrong, for a human
    http_status the provider's HTTP status, or None
    request_id  the provider's request id, or None
    library     the librlm that reported it
    """

    status_code = None  # the rlm_status this class stands for

    def __init__(self, message, code=None, http_status=None, request_id=None, library=None):
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.status_code
        self.http_status = http_status or None
        self.request_id = request_id or None
        self.library = library

    @property
    def status(self):
        return _NAMES.get(self.code)

    def __str__(self):
        extra = [self.status] if self.status else []
        if self.http_status:
            extra.append("HTTP %d" % self.http_status)
        if self.request_id:
            extra.append("request id %s" % self.request_id)
        return "%s (%s)" % (self.message, ", ".join(extra)) if extra else self.message

    def __reduce__(self):
        return (type(self), (self.message, self.code, self.http_status, self.request_id,
                             self.library))


class InvalidArgumentError(Error, ValueError):
    """RLM_EINVAL: a bad argument or bad input (code, variables, names)."""
    status_code = -1


class NoMemoryError(Error, MemoryError):
    """RLM_ENOMEM: out of memory."""
    status_code = -2


class NotFoundError(Error, LookupError):
    """RLM_ENOTFOUND: no such plugin, file, key or sandbox."""
    status_code = -3


class NotSupportedError(Error, NotImplementedError):
    """RLM_ENOTSUP: the backend does not offer this operation."""
    status_code = -4


class ConfigError(Error):
    """RLM_ECONFIG: invalid configuration."""
    status_code = -5


class PluginError(Error):
    """RLM_EPLUGIN: a plugin could not be loaded or is not compatible."""
    status_code = -6


class RLMTimeoutError(Error, TimeoutError):
    """RLM_ETIMEOUT: a deadline passed (also caught by `except TimeoutError`)."""
    status_code = -7


class AuthError(Error):
    """RLM_EAUTH: credentials missing or refused (never retried)."""
    status_code = -8


class QuotaError(Error):
    """RLM_EQUOTA: a provider quota or limit was reached."""
    status_code = -9


class TransientError(Error):
    """RLM_ETRANSIENT: a temporary failure that retries did not get past."""
    status_code = -10


class BackendError(Error):
    """RLM_EBACKEND: the sandbox or its provider failed; terminal for this sandbox."""
    status_code = -11


class ProtocolError(Error):
    """RLM_EPROTO: the driver protocol was violated."""
    status_code = -12


class StateLostError(Error):
    """RLM_ESTATE_LOST: the sandbox's interpreter state was lost."""
    status_code = -13


class BudgetError(Error):
    """RLM_EBUDGET: an LLM call or iteration budget ran out."""
    status_code = -14


class LocalIOError(Error, OSError):
    """RLM_EIO: local I/O failed."""
    status_code = -15

    def __str__(self):  # OSError's own __str__ would show the constructor's arguments
        return Error.__str__(self)


class CancelledError(Error):
    """RLM_ECANCELLED: the operation was cancelled (cancel(), a signal)."""
    status_code = -16


class ClosedError(Error):
    """The interpreter (or pool) was shut down; open a new one. Raised by the package."""


class LibraryError(Error, OSError):
    """librlm could not be loaded (the message lists every place tried). Raised by the
    package."""

    def __str__(self):
        return Error.__str__(self)


_NAMES = {
    -1: "RLM_EINVAL", -2: "RLM_ENOMEM", -3: "RLM_ENOTFOUND", -4: "RLM_ENOTSUP",
    -5: "RLM_ECONFIG", -6: "RLM_EPLUGIN", -7: "RLM_ETIMEOUT", -8: "RLM_EAUTH",
    -9: "RLM_EQUOTA", -10: "RLM_ETRANSIENT", -11: "RLM_EBACKEND", -12: "RLM_EPROTO",
    -13: "RLM_ESTATE_LOST", -14: "RLM_EBUDGET", -15: "RLM_EIO", -16: "RLM_ECANCELLED",
}

BY_CODE = {cls.status_code: cls for cls in (
    InvalidArgumentError, NoMemoryError, NotFoundError, NotSupportedError, ConfigError,
    PluginError, RLMTimeoutError, AuthError, QuotaError, TransientError, BackendError,
    ProtocolError, StateLostError, BudgetError, LocalIOError, CancelledError)}


def from_code(code, message, http_status=None, request_id=None, library=None):
    """The exception for an rlm_status (Error itself for a code this package does not know)."""
    cls = BY_CODE.get(code, Error)
    return cls(message, code, http_status, request_id, library)
