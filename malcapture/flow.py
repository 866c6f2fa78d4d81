"""The login, step by step: check the config, bind, announce and open the browser, then wait and finish.

Everything up to the browser runs before asyncio and aiohttp are loaded (about a quarter of a
second together): binding uses the standard library, and the kernel queues the browser's
connection until capture.py's server accepts it.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from pathlib import Path

from malcapture import browser, kometa_config, pkce, ports
from malcapture.credentials import Ask, resolve_credentials
from malcapture.endpoints import Endpoints
from malcapture.errors import ConfigError, PortConflict
from malcapture.kometa_config import Credentials, KometaConfig
from malcapture.paste import PasteReader
from malcapture.redirect import RedirectTarget, parse_redirect_uri
from malcapture.ui import Reporter

BROWSER_HEAD_START = 0.5  # seconds


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


@dataclass(frozen=True)
class LoginResult:
    account: str | None
    saved_to: Path | None
    block: str | None = field(default=None, repr=False)  # --print's output


@dataclass(frozen=True)
class Started:
    """The login up to the wait: config checked, port bound (or not), URL announced, browser asked to open."""

    target: RedirectTarget
    config: KometaConfig | None
    creds: Credentials
    verifier: str = field(repr=False)
    state: str = field(repr=False)
    sockets: tuple[socket.socket, ...]
    browser: Future[bool]  # settles when the browser command returns: False or an error if none opened


def run(opts: LoginOptions, io: Io) -> LoginResult:
    """The whole login for a caller without an event loop (the CLI): asyncio loads after the browser opens."""
    started = start(opts, io)
    # Let the browser command start before loading asyncio and aiohttp takes the CPU. Some commands
    # return only when the browser exits: no one clicks Allow that fast, and the kernel queues the redirect.
    wait([started.browser], timeout=BROWSER_HEAD_START)
    import asyncio

    from malcapture.capture import complete

    return asyncio.run(complete(started, opts, io))


async def login(opts: LoginOptions, io: Io) -> LoginResult:
    """The whole login inside a running event loop (the demo, the tests)."""
    from malcapture.capture import complete

    return await complete(start(opts, io), opts, io)


def start(opts: LoginOptions, io: Io) -> Started:
    target = parse_redirect_uri(opts.redirect_uri)
    headless = None if opts.no_browser or opts.manual else io.headless(io.env)
    if not (opts.no_browser or opts.manual or headless):
        io.find_browser()  # runs while the config is read
    config = _preflight(opts, io.reporter)
    creds = resolve_credentials(
        opts.client_id, opts.client_secret, config, dict(io.env), io.reporter, io.ask, opts.config_path
    )
    verifier, state = pkce.make_verifier(), pkce.make_state()
    sockets = () if opts.manual else tuple(_claim(target, opts.bind, io.reporter))
    url = pkce.authorize_url(Endpoints.from_env(io.env).oauth, creds.client_id, verifier, state, target.sent_uri)
    opened = _announce(url, target, headless, listening=bool(sockets), opts=opts, io=io)
    return Started(target, config, creds, verifier, state, sockets, opened)


def _preflight(opts: LoginOptions, reporter: Reporter) -> KometaConfig | None:
    """Fail on the config before the browser opens: a MAL code is single-use."""
    if not opts.print_block:
        config = kometa_config.load(opts.config_path)
        kometa_config.check_writable(config)
        return config
    if not opts.config_path.exists():
        return None
    try:
        return kometa_config.load(opts.config_path)
    except ConfigError as exc:
        reporter.warn(f"ignoring the config for --print: {exc.what}")
        return None


def _claim(target: RedirectTarget, bind: str | None, reporter: Reporter) -> list[socket.socket]:
    if bind:
        reporter.warn(
            f"listening on {bind}, not just loopback: anyone who can reach this machine's port "
            f"{target.port} can see the redirect page while malcapture waits."
        )
    elif not target.is_loopback:
        reporter.warn(
            f"the redirect URL's host {target.host} is not this machine's loopback, so malcapture cannot "
            "listen for it (use --bind 0.0.0.0 if this machine answers to that name). "
            "Continuing with paste only."
        )
        return []
    try:
        return ports.claim(target, bind)
    except PortConflict as exc:
        reporter.warn(str(exc))
        reporter.info(
            "Continuing without a server: after you click Allow, the browser shows an error or another "
            "site — copy the whole address from its address bar and paste it here."
        )
        return []


def _announce(
    url: str, target: RedirectTarget, headless: str | None, listening: bool, opts: LoginOptions, io: Io
) -> Future[bool]:
    io.reporter.info("Open this URL to authorize Kometa on MyAnimeList:")
    io.reporter.url(url)
    if headless:
        io.reporter.info(
            f"Not opening a browser: {headless}. MyAnimeList redirects the browser that you open the URL in "
            f"to {target.uri} — that is, to the computer the browser runs on, not to this one."
        )
        if listening:
            io.reporter.info(
                "Either forward the port, so that the redirect reaches malcapture here — run this on "
                f"the computer with the browser, then open the URL:\n"
                f"  {browser.ssh_forward_hint(target.port, io.env)}\n"
                "or paste the address the browser shows after you click Allow."
            )
    opened: Future[bool] = Future()
    if opts.no_browser or opts.manual or headless:
        opened.set_result(True)
    else:
        threading.Thread(target=_open, args=(io.open_browser, url, opened), daemon=True).start()
    return opened


def _open(open_browser: Callable[[str], bool], url: str, opened: Future[bool]) -> None:
    """On a daemon thread: webbrowser can wait for the browser to exit, and must not hold up ours."""
    try:
        opened.set_result(open_browser(url))
    except Exception as exc:  # reported, not raised: the flow goes on with the paste prompt
        opened.set_exception(exc)
