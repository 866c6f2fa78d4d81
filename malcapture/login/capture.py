"""The loopback login after the browser opens: serve on the bound sockets, wait for the redirect or a
paste (checking the app's secret meanwhile), then exchange the code and keep the tokens.

Loaded only once the browser has been asked to open (see loopback.py): it brings asyncio and aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from malcapture import browser
from malcapture.errors import AccessDenied, InputRejected, MalcaptureError, ServiceError, TimedOut, UsageError
from malcapture.login import pages
from malcapture.login.contract import LoginOptions, LoginResult, Service, Setup, TokenClient
from malcapture.login.io import Io
from malcapture.login.keep import Destination, keep_issued
from malcapture.login.redirect import Authorized, Callback, Refused, parse_paste, read_callback
from malcapture.login.server import CallbackServer, serving
from malcapture.login.start import Started
from malcapture.login.warm import warm

LINGER = 120.0  # seconds the server waits, after a wrong secret, for the browser to come back and be told


async def complete(started: Started, opts: LoginOptions, io: Io) -> LoginResult:
    server = await _serve(started, io) if started.sockets else None
    async with serving(server):
        setup = Setup(io.env, io.reporter.debug, started.prepared.creds, sleep=io.clock.sleep, wall=io.clock.wall)
        async with opts.service.code.client(setup) as client:
            async with warm(client, client.warm_urls):  # the exchange and the check: one round trip each
                try:
                    callback = await _wait(server, started, opts, io, client)
                except WrongSecret as exc:
                    if not (opts.no_browser or io.headless(io.env)):  # malcapture sent a browser to the page
                        await _tell_the_browser(server, exc.failure, io)
                    raise exc.failure from None
            result = await _finish(callback, started, opts, io, client)
        if server:
            server.succeeded(result.account, result.saved_to, opts.service)
        return result


class WrongSecret(Exception):
    """The app's secret turned out wrong while the user read the consent page (the browser is still there)."""

    def __init__(self, failure: MalcaptureError) -> None:
        super().__init__(str(failure))
        self.failure = failure


async def _tell_the_browser(server: CallbackServer[Callback] | None, failure: MalcaptureError, io: Io) -> None:
    """The browser on the consent page would land on a closed port after Allow: the server stays until it
    comes (or a while passes, or Ctrl-C), and its page says what happened, as the terminal does now."""
    if server is None or server.result.done():
        return
    io.reporter.warn(
        f"{failure.what} Nothing was spent. The browser's page will say so too once you click Allow: waiting "
        f"for it up to {LINGER:g} seconds (Ctrl-C stops now)."
    )
    server.finish(pages.failure(failure.what, failure.advice))
    with contextlib.suppress(asyncio.TimeoutError):  # closing the server then lets the page reach the browser
        await asyncio.wait_for(asyncio.shield(server.result), LINGER)


async def _serve(started: Started, io: Io) -> CallbackServer[Callback]:
    start = (started.start_path, started.url) if started.start_path else None
    server = CallbackServer(
        list(started.sockets),
        started.target,
        lambda query: read_callback(query, started.state),
        io.reporter.warn,
        start,
    )
    await server.start()
    return server


async def _wait(
    server: CallbackServer[Callback] | None, started: Started, opts: LoginOptions, io: Io, client: TokenClient
) -> Callback:
    deadline = io.until(opts.timeout)
    can_paste = io.paste.can_deliver()
    title = opts.service.title
    if server and not can_paste:
        io.reporter.info(f"Waiting until {deadline} for {title}'s redirect only (standard input is not a terminal).")
    else:
        how = f"for {title}'s redirect, or for" if server else "for"
        io.reporter.info(
            f"Waiting until {deadline} {how} the address the browser shows after you click Allow "
            "— paste it here and press Enter."
        )
    browser.warn_if_unopened(started.browser, io.reporter.warn)
    paste = asyncio.ensure_future(_read_pastes(io, started, paste_only=server is None))
    secret = asyncio.ensure_future(client.check_secret())  # a wrong secret is found before the code is spent
    waiting: set[asyncio.Future[Any]] = {paste, secret} | ({server.result} if server else set())
    ends = io.clock.now() + opts.timeout
    try:
        while True:
            left = max(0.0, ends - io.clock.now())
            done, waiting = await asyncio.wait(waiting, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                what = "No redirect arrived and nothing was pasted" if can_paste else "No redirect arrived"
                raise TimedOut(f"{what} within {opts.timeout:g} seconds; the config was not changed.", started.advice)
            callback = next((f.result() for f in done if f is not secret), None)
            failed = secret.exception() if secret in done else None
            if isinstance(failed, MalcaptureError):
                raise WrongSecret(failed)
            if failed is not None:
                raise failed
            if callback is not None:
                await secret  # asked while the user read the consent page: its answer is here by now
                return cast(Callback, callback)
    finally:
        paste.cancel()
        secret.cancel()
        for task in (paste, secret):  # the terminal's modes come back before anything else is printed
            with contextlib.suppress(asyncio.CancelledError, MalcaptureError):
                await task


async def _read_pastes(io: Io, started: Started, paste_only: bool) -> Callback:
    while True:
        line = await io.paste.next_line()
        if line is None:
            if io.paste.interactive:
                raise UsageError("Input ended (Ctrl-D), so the login was stopped; the config was not changed.")
            if paste_only:
                raise UsageError(
                    "Standard input ended before a redirect URL was pasted; the config was not changed.",
                    started.advice,
                )
            await asyncio.Event().wait()  # the server may still deliver: wait with it
        try:
            return parse_paste(line or "", started.state)
        except InputRejected as exc:
            if line and line.strip():
                io.reporter.warn(f"{exc.what} Paste again:")


async def _finish(callback: Callback, started: Started, opts: LoginOptions, io: Io, client: TokenClient) -> LoginResult:
    if isinstance(callback, Refused):
        raise refusal(callback, opts.service)
    assert isinstance(callback, Authorized)
    io.reporter.info("Got the code; exchanging it for tokens…")
    dest = Destination.of(opts, started.prepared, started.extra)
    code, verifier, sent = callback.code, started.verifier, started.target.sent_uri
    kept = await keep_issued(lambda: client.exchange_code(code, verifier, sent), client, dest, io.reporter, io.env)
    return kept.result()


def refusal(callback: Refused, service: Service) -> MalcaptureError:
    said = " — ".join(part for part in (callback.message, callback.hint) if part)
    title = service.title
    if callback.denied:
        return AccessDenied(
            f"Access was denied on {title}" + (f" ({said})." if said else "."),
            f"Run `{service.command()}` again and click Allow to let Kometa use your {title} account.",
        )
    return ServiceError(
        f"{title} refused the authorization: {callback.error}" + (f" — {said}" if said else ""),
        f"Check the client ID and the redirect URL registered in your {title} app, "
        f"then run `{service.command()}` again.",
    )
