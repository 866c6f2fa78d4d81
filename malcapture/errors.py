"""Every foreseeable failure, each with the exit code the contract gives it.

    MalcaptureError            (base; never raised itself)
    ├── UsageError             2  a bad option value, a malformed redirect URI, no client ID
    ├── ConfigError            3  the config file: missing, unreadable, invalid, not writable
    │   └── TokensNotSaved     3  MyAnimeList issued tokens but they could not be saved
    ├── MalError               1  MyAnimeList answered with an error
    │   └── NetworkError       1  MyAnimeList could not be reached
    ├── AccessDenied           4  the user clicked Deny
    ├── TimedOut               5  no redirect and no paste in time
    ├── InputRejected          -  a pasted line or a stray request that is not the redirect:
    │                             explained, and the wait goes on (it never reaches the CLI)
    └── PortConflict           -  the redirect cannot reach us: explained, and the flow goes
                                  on in paste mode (it never reaches the CLI)

The CLI prints `str(error)` and exits with `error.exit_code`; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class MalcaptureError(Exception):
    exit_code = 1

    def __init__(self, what: str, advice: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.advice = advice

    def __str__(self) -> str:
        return f"{self.what}\n{self.advice}" if self.advice else self.what


class UsageError(MalcaptureError):
    exit_code = 2


class ConfigError(MalcaptureError):
    exit_code = 3


class TokensNotSaved(ConfigError):
    """The tokens exist only in memory: the CLI prints `block` so that nothing is lost."""

    def __init__(self, what: str, advice: str, block: str) -> None:
        super().__init__(what, advice)
        self.block = block


class MalError(MalcaptureError):
    exit_code = 1


class NetworkError(MalError):
    pass


class AccessDenied(MalcaptureError):
    exit_code = 4


class TimedOut(MalcaptureError):
    exit_code = 5


class InputRejected(MalcaptureError):
    exit_code = 2


class PortConflict(MalcaptureError):
    exit_code = 2
