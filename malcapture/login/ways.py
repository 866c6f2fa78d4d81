"""The ways to log in, as values. A service lists the ways it supports, its default first; the CLI
offers exactly the options those ways bring (and refuses the others by name).

Each way is implemented once in login/: the loopback capture and its paste fallback (start.py,
capture.py), the code shown and polled (device.py). Read at start-up: NamedTuples, nothing to build.
"""

from __future__ import annotations

from typing import NamedTuple


class Flag(NamedTuple):
    """The option that chooses a way which is not the default (--manual, --pin, --link)."""

    name: str
    help: str

    @property
    def param(self) -> str:
        """Its parameter's name in the CLI (`--manual` → `manual`)."""
        return self.name.removeprefix("--").replace("-", "_")


class Way(NamedTuple):
    """One way to log in: the login's options it brings, and the flag that chooses it (None: it is the
    default, or one of its options chooses it, as --redirect-uri does)."""

    name: str
    options: tuple[str, ...]
    flag: Flag | None = None

    def choosing(self, help_text: str) -> Way:
        """The same way, its flag's help worded for one service."""
        assert self.flag is not None, "only a way chosen by a flag has a flag's help"
        return self._replace(flag=self.flag._replace(help=help_text))


class Redirect(NamedTuple):
    """Where a loopback login's redirect comes back to, as the service (and Kometa) have it."""

    help: str  # what --redirect-uri is for this service
    default: str | None = None  # taken when none is given, and then sent in neither request; None: one must be given
    setting: str | None = None  # the key of the section that holds it (sent exactly, and filled when blank)
    hosts: tuple[str, ...] = ()  # the only hosts a loopback redirect may name (); (): any loopback name
    env: str | None = None  # the variable for --redirect-uri
    refuse: str = ""  # why another loopback host is refused
    https: bool = False  # an https:// redirect is valid there (only a paste brings it back here)


# The loopback capture: bind the redirect's port, open the page, catch the redirect (or read a paste).
LOOPBACK = Way("loopback", ("redirect_uri", "no_browser", "bind", "timeout", "no_verify"))
# No server at all: print the page, read the redirected address pasted back.
PASTE = Way("paste", ("timeout", "no_verify"), Flag("--manual", "No server: print the URL and wait for the paste."))
# A code shown here, approved on any device, polled until it holds the tokens (device flow).
DEVICE = Way("device", ("no_browser", "timeout", "no_verify"))
# A PIN the service shows on its page, typed here.
PIN = Way("pin", ("no_browser", "timeout", "no_verify"), Flag("--pin", "Type the PIN the service's page shows."))
# A sign-in in this machine's browser, which comes back to a loopback port only to bring the next poll forward.
FORWARD = Way("forward", ("port",))
# A short code typed at the service's link page, on any device.
LINK = Way("link", (), Flag("--link", "Type a short code at the service's link page, on any device."))
