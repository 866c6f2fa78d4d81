"""The values a login passes along: its options, what it touches outside itself, and how it ended.

A leaf of the login package, so that every step (prepare, loopback, capture, device, keep) uses
these without importing the others.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from malcapture import browser, container
from malcapture.login.paste import PasteReader
from malcapture.ui import Reporter

if TYPE_CHECKING:
    from malcapture.services.base import Account, Service

Ask = Callable[[str, bool], str]  # (question, hide the answer) -> answer


@dataclass(frozen=True)
class LoginOptions:
    config_path: Path
    service: Service
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None
    alternative: bool = False  # the service's other way to log in: --manual, --pin, --link
    no_browser: bool = False
    timeout: float = 300.0
    print_block: bool = False
    verify: bool = True
    bind: str | None = None
    yes: bool = False  # replace tokens that still work without asking
    url: str | None = None  # a server to check the token against (and to fill in where the config has none)
    library: str | None = None  # write into this library's settings instead of the root's
    port: int | None = None  # the loopback port to listen on, where the service lets malcapture choose


class Clock(Protocol):
    """Time, handed in: waits and deadlines read it, so that tests run a poll loop in milliseconds."""

    def now(self) -> float: ...  # seconds, for deadlines (monotonic)
    def wall(self) -> float: ...  # seconds since the epoch, for what the user reads
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)


@dataclass
class Io:
    """Everything a login touches outside itself, handed in so tests can use real fakes."""

    reporter: Reporter
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    find_browser: Callable[[], None] = browser.find_browsers
    open_browser: Callable[[str], bool] = browser.open_url
    headless: Callable[[Mapping[str, str]], str | None] = browser.headless_reason
    paste: PasteReader = field(default_factory=PasteReader)
    ask: Ask | None = None
    root: Path = Path("/")  # where to look for signs of a container (container.py)
    clock: Clock = field(default_factory=SystemClock)

    @property
    def in_container(self) -> bool:
        return container.detected(self.root)

    def until(self, seconds: float) -> str:
        """The wall-clock time `seconds` from now, as the user reads it; far futures stay words."""
        try:
            return time.strftime("%H:%M:%S", time.localtime(self.clock.wall() + seconds))
        except (OverflowError, OSError, ValueError):
            return "much later than anyone will wait"


@dataclass(frozen=True)
class LoginResult:
    account: Account | None
    saved_to: Path | None
    printed: bool = False  # --print: the section is on standard output
    changes: tuple[str, ...] = ()  # what the save changed, in words
    kept: bool = False  # the user chose to keep tokens that still work
