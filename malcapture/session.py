"""The values a login passes along: its options, what it touches outside itself, and how far it got.

A leaf module, so that flow.py (up to the browser) and capture.py (after it) both use these
without importing each other.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from malcapture import browser, container
from malcapture.credentials import Ask
from malcapture.kometa_config import Credentials, KometaConfig
from malcapture.paste import PasteReader
from malcapture.providers import Provider
from malcapture.redirect import RedirectTarget
from malcapture.sections import MAL, Section
from malcapture.ui import Reporter


@dataclass(frozen=True)
class LoginOptions:
    config_path: Path
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None
    no_browser: bool = False
    manual: bool = False
    timeout: float = 300.0
    print_block: bool = False
    verify: bool = True
    bind: str | None = None
    yes: bool = False  # replace tokens that still work without asking
    section: Section = MAL  # which service: mal: or trakt:
    pin: bool = False  # Trakt: Kometa's PIN flow instead of the device flow


@dataclass
class Io:
    """Everything the flow touches outside itself, handed in so tests can use real fakes."""

    reporter: Reporter
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    find_browser: Callable[[], None] = browser.find_browsers
    open_browser: Callable[[str], bool] = browser.open_url
    headless: Callable[[Mapping[str, str]], str | None] = browser.headless_reason
    paste: PasteReader = field(default_factory=PasteReader)
    ask: Ask | None = None
    root: Path = Path("/")  # where to look for signs of a container (container.py)

    @property
    def in_container(self) -> bool:
        return container.detected(self.root)


@dataclass(frozen=True)
class Started:
    """The login up to the wait: config checked, port bound (or not), URL announced, browser asked to open."""

    target: RedirectTarget
    provider: Provider
    config: KometaConfig | None
    creds: Credentials
    verifier: str = field(repr=False)
    state: str = field(repr=False)
    sockets: tuple[socket.socket, ...]
    browser: Future[bool]  # settles when the browser command returns: False or an error if none opened
    advice: str  # what to do if nothing arrives in time, for this situation


@dataclass(frozen=True)
class LoginResult:
    account: str | None
    saved_to: Path | None
    block: str | None = field(default=None, repr=False)  # --print's output
    changes: tuple[str, ...] = ()  # what the save changed, in words
    kept: bool = False  # the user chose to keep tokens that still work
