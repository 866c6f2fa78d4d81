"""The login, step by step: check the config, bind, announce, wait, exchange, verify, save.

aiohttp is imported only after the browser has been asked to open: binding uses the standard
library, and the kernel queues the browser's connection until the server accepts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from malcapture import browser, kometa_config, pages, pkce, ports
from malcapture.credentials import Ask, resolve_credentials
from malcapture.endpoints import Endpoints
from malcapture.errors import (
    AccessDenied,
    ConfigError,
    InputRejected,
    MalcaptureError,
    MalError,
    PortConflict,
    TimedOut,
    UsageError,
)
from malcapture.kometa_config import Credentials, KometaConfig
from malcapture.paste import PasteReader
from malcapture.redirect import Authorized, Callback, RedirectTarget, Refused, parse_paste, parse_redirect_uri
from malcapture.ui import Reporter

if TYPE_CHECKING:
    from malcapture.loopback import CallbackServer

T = TypeVar("T")


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
    open_browser: Callable[[str], bool] = browser.open_url
    headless: Callable[[Mapping[str, str]], str | None] = browser.headless_reason
    paste: PasteReader = field(default_factory=PasteReader)
    ask: Ask | None = None
    clock: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class LoginResult:
    account: str | None
    saved_to: Path | None
    block: str | None = field(default=None, repr=False)  # --print's output


async def login(opts: LoginOptions, io: Io) -> LoginResult:
    target = parse_redirect_uri(opts.redirect_uri)
    config = _preflight(opts, io.reporter)
    creds = resolve_credentials(
        opts.client_id, opts.client_secret, config, dict(io.env), io.reporter, io.ask, opts.config_path
    )
    verifier, state = pkce.make_verifier(), pkce.make_state()
    sockets = [] if opts.manual else _claim(target, opts.bind, io.reporter)
    url = pkce.authorize_url(Endpoints.from_env(io.env).oauth, creds.client_id, verifier, state, target.sent_uri)
    opened = _announce(url, target, listening=bool(sockets), opts=opts, io=io)
    server = await _serve(sockets, target, state, io.reporter) if sockets else None
    try:
        callback = await _wait(server, state, opts, io, opened)
        result = await _finish(callback, opts, io, config, creds, verifier, target)
    except MalcaptureError as exc:
        if server:
            server.finish(pages.failure(exc.what, exc.advice))
        raise
    else:
        if server:
            server.finish(pages.success(result.account, str(result.saved_to) if result.saved_to else None))
        return result
    finally:
        if server:
            await server.close()


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


def _announce(url: str, target: RedirectTarget, listening: bool, opts: LoginOptions, io: Io) -> asyncio.Future[bool]:
    io.reporter.info("Open this URL to authorize Kometa on MyAnimeList:")
    io.reporter.url(url)
    headless = io.headless(io.env)
    if opts.no_browser or opts.manual or headless:
        if headless and not (opts.no_browser or opts.manual):
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
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.set_result(True)
        return done
    return _in_daemon_thread(io.open_browser, url)


def _in_daemon_thread(function: Callable[[str], T], argument: str) -> asyncio.Future[T]:
    """Run a blocking call (webbrowser can wait for the browser to exit) without holding up exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            outcome: tuple[T | None, BaseException | None] = (function(argument), None)
        except Exception as exc:  # reported, not raised: the flow goes on with the paste prompt
            outcome = (None, exc)
        # A closed loop (RuntimeError) means the flow ended before the browser command did.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, future, *outcome)

    threading.Thread(target=run, daemon=True).start()
    return future


def _settle(future: asyncio.Future[T], value: T | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)  # type: ignore[arg-type]


async def _serve(
    sockets: list[socket.socket], target: RedirectTarget, state: str, reporter: Reporter
) -> CallbackServer:
    from malcapture.loopback import CallbackServer

    server = CallbackServer(sockets, target, state, reporter.warn)
    await server.start()
    return server


async def _wait(
    server: CallbackServer | None, state: str, opts: LoginOptions, io: Io, opened: asyncio.Future[bool]
) -> Callback:
    deadline = time.strftime("%H:%M:%S", time.localtime(time.time() + opts.timeout))
    how = "for MyAnimeList's redirect, or for" if server else "for"
    io.reporter.info(
        f"Waiting until {deadline} {how} the address the browser shows after you click Allow "
        "— paste it here and press Enter."
    )
    opened.add_done_callback(lambda f: _report_browser(f, io.reporter))
    paste = asyncio.ensure_future(_read_pastes(io, state, ends_wait=server is None))
    waiting: set[asyncio.Future[Callback]] = {paste} | ({server.result} if server else set())
    try:
        done, _ = await asyncio.wait(waiting, timeout=opts.timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        paste.cancel()
    if not done:
        raise TimedOut(
            f"No redirect arrived and nothing was pasted within {opts.timeout:g} seconds.",
            "Run malcapture again (with a longer --timeout if you need more time).",
        )
    return done.pop().result()


def _report_browser(opened: asyncio.Future[bool], reporter: Reporter) -> None:
    if opened.cancelled() or (opened.exception() is None and opened.result()):
        return
    reporter.warn("no browser could be opened here: open the URL above yourself.")


async def _read_pastes(io: Io, state: str, ends_wait: bool) -> Callback:
    while True:
        line = await io.paste.next_line()
        if line is None:
            if ends_wait:
                raise UsageError(
                    "Standard input ended before a redirect URL was pasted.",
                    "Run malcapture in a terminal; in Docker, start the container with `docker run -it` "
                    "(or `docker compose run`), so that you can paste.",
                )
            await asyncio.Event().wait()  # the server may still deliver: wait with it
        try:
            return parse_paste(line or "", state)
        except InputRejected as exc:
            if line and line.strip():
                io.reporter.warn(f"{exc.what} Paste again:")


async def _finish(
    callback: Callback,
    opts: LoginOptions,
    io: Io,
    config: KometaConfig | None,
    creds: Credentials,
    verifier: str,
    target: RedirectTarget,
) -> LoginResult:
    if isinstance(callback, Refused):
        raise _refusal(callback)
    assert isinstance(callback, Authorized)
    io.reporter.info("Got the code; exchanging it for tokens…")
    from malcapture.mal import MalClient

    async with MalClient(Endpoints.from_env(io.env), io.reporter.debug) as mal:
        tokens = await mal.exchange_code(creds.client_id, creds.client_secret, callback.code, verifier, target.sent_uri)
        account = await mal.whoami(tokens.access_token) if opts.verify else None
    block = kometa_config.mal_block(creds, tokens)
    if opts.print_block or config is None:
        return LoginResult(account, None, block)
    saved = kometa_config.save_issued(config, tokens, creds)
    for key in saved.placeholders:
        io.reporter.warn(f"mal.authorization.{key} is a <<placeholder>>, so it was left as it is: update it yourself.")
    return LoginResult(account, saved.path)


def _refusal(callback: Refused) -> MalcaptureError:
    said = " — ".join(part for part in (callback.message, callback.hint) if part)
    if callback.denied:
        return AccessDenied(
            "Access was denied on MyAnimeList" + (f" ({said})." if said else "."),
            "Run malcapture again and click Allow to let Kometa read your MyAnimeList lists.",
        )
    return MalError(
        f"MyAnimeList refused the authorization: {callback.error}" + (f" — {said}" if said else ""),
        "Check the client ID and the redirect URL registered in your MAL app, then run malcapture again.",
    )
