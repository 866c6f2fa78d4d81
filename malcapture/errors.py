"""Every foreseeable failure, each with the exit code the contract gives it.

    MalcaptureError            (base; never raised itself)
    ├── UsageError             2  a bad option value, a malformed redirect URI, no client ID
    ├── ConfigError            3  the config file: missing, unreadable, invalid, not writable
    │   └── TokensNotSaved     3  MyAnimeList issued tokens but they could not be saved
    ├── MalError               1  MyAnimeList answered with an error
    │   ├── NetworkError       1  MyAnimeList could not be reached
    │   └── UnusableTokens     1  MyAnimeList issued tokens that cannot be written as text
    ├── AccessDenied           4  the user clicked Deny
    └── TimedOut               5  no redirect and no paste in time

    Explained                     (base) not failures: the flow explains them and goes on, so
    ├── InputRejected             they never reach the CLI — and if one did, it would be a bug
    │                             and keep its traceback
    │                             a pasted line or a stray request that is not the redirect:
    │                             explained, and the wait goes on
    └── PortConflict              the redirect cannot reach us: explained, and the flow goes on
                                  in paste mode

The CLI prints `str(error)` and exits with `error.exit_code`; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class Message(Exception):
    """What happened and what to do next: printed as two lines."""

    def __init__(self, what: str, advice: str = "", tokens: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.advice = advice
        self.tokens = tokens  # issued tokens that exist nowhere else, as text: whoever catches this keeps them

    def __str__(self) -> str:
        return f"{self.what}\n{self.advice}" if self.advice else self.what


class MalcaptureError(Message):
    exit_code = 1


class UsageError(MalcaptureError):
    exit_code = 2


class ConfigError(MalcaptureError):
    exit_code = 3


class TokensNotSaved(ConfigError):
    """The tokens exist only in memory: the CLI prints `tokens` (a config block) so that nothing is lost."""


class MalError(MalcaptureError):
    exit_code = 1


class NetworkError(MalError):
    pass


class UnusableTokens(MalError):
    """MyAnimeList answered 200 with tokens that cannot be stored as text: `tokens` is its answer, escaped."""


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
