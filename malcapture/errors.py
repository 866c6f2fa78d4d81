"""Every foreseeable failure, each with the exit code the contract gives it.

    MalcaptureError            (base; never raised itself)
    ├── UsageError             2  a bad option value, a malformed redirect URI, no client ID
    ├── ConfigError            3  the config file: missing, unreadable, invalid, not writable
    │   └── TokensNotSaved     3  a service issued tokens that could not be saved (they were printed)
    ├── ServiceError           1  a service answered with an error (`status`: its HTTP status)
    │   ├── NetworkError       1  the service could not be reached
    │   └── UnusableTokens     1  the service issued tokens that cannot be written as text
    ├── LoginStopped           1  something else raced the user for the login: stopped, nothing spent
    ├── AccessDenied           4  the user said no
    └── TimedOut               5  no redirect, paste or approval in time

    Explained                     (base) not failures: the flow explains them and goes on, so
    ├── InputRejected             they never reach the CLI — and if one did, it would be a bug
    │                             and keep its traceback
    │                             a pasted line or a stray request that is not the redirect:
    │                             explained, and the wait goes on
    └── PortConflict              the redirect cannot reach us: explained, and the flow goes on
                                  without the server

The CLI prints `str(error)` and exits with `error.exit_code`; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class Message(Exception):
    """What happened and what to do next: printed as two lines."""

    def __init__(self, what: str, advice: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.advice = advice

    def __str__(self) -> str:
        return f"{self.what}\n{self.advice}" if self.advice else self.what


class MalcaptureError(Message):
    exit_code = 1


class UsageError(MalcaptureError):
    exit_code = 2


class ConfigError(MalcaptureError):
    exit_code = 3


class TokensNotSaved(ConfigError):
    """The tokens could not be saved; they were printed on standard output (and kept in a file)."""


class ServiceError(MalcaptureError):
    """A service said no, or could not be asked."""

    def __init__(self, what: str, advice: str = "", status: int | None = None) -> None:
        super().__init__(what, advice)
        self.status = status  # the HTTP status the service answered with, if it answered

    @property
    def refused(self) -> bool:
        """The service answered and said no (4xx): asking again the same way will not help."""
        return self.status is not None and 400 <= self.status < 500


class NetworkError(ServiceError):
    pass


class UnusableTokens(ServiceError):
    """A service answered 200 with tokens that cannot be stored as text: `answer` is its answer, escaped."""

    def __init__(self, what: str, advice: str, answer: str) -> None:
        super().__init__(what, advice, status=200)
        self.answer = answer  # the new refresh token is in it: whoever catches this keeps it


class LoginStopped(MalcaptureError):
    """The login stopped itself: something else raced the user for it."""


class AccessDenied(MalcaptureError):
    exit_code = 4


class TimedOut(MalcaptureError):
    exit_code = 5


class Explained(Message):
    pass


class InputRejected(Explained):
    pass


class PortConflict(Explained):
    pass
