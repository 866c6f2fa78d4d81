"""What a login touches outside itself (Io): the user, the environment, the browser, standard input,
the clock. A leaf of the login package: every step uses it without importing the others."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from malcapture import browser, container
from malcapture.login.paste import PasteReader
from malcapture.ui import Reporter

Ask = Callable[[str, bool], str]  # (question, hide the answer) -> answer


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
            return time.strftime("%H:%M:%S %Z", time.localtime(self.clock.wall() + seconds)).strip()
        except (OverflowError, OSError, ValueError):
            return "much later than anyone will wait"
