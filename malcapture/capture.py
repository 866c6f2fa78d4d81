"""The login after the browser opens: serve on the bound sockets, wait for the redirect or a paste,
exchange the code, check the tokens, save them.

Loaded only once the browser has been asked to open (see flow.py): it brings asyncio and aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future

from malcapture import interrupts, kometa_config, pages
from malcapture.errors import (
    AccessDenied,
    ConfigError,
    InputRejected,
    MalcaptureError,
    MalError,
    TimedOut,
    UnusableTokens,
    UsageError,
)
from malcapture.kometa_config import Credentials, KometaConfig
from malcapture.loopback import CallbackServer
from malcapture.providers import TokenClient
from malcapture.redirect import Authorized, Callback, Refused, parse_paste
from malcapture.sections import MAL, Section
from malcapture.session import Io, LoginOptions, LoginResult, Started
from malcapture.tokens import TokenSet
from malcapture.ui import Reporter


async def complete(started: Started, opts: LoginOptions, io: Io) -> LoginResult:
    server = await _serve(started, io.reporter) if started.sockets else None
    try:
        async with started.provider.client(started.creds.client_id, io.reporter.debug) as client:
            async with warm(client, client.warm_urls):  # the exchange and the check: one round trip each
                callback = await _wait(server, started, opts, io)
            result = await _finish(callback, started, opts, io, client)
    except MalcaptureError as exc:
        if server:
            server.finish(pages.failure(exc.what, exc.advice))
        raise
    else:
        if server:
            saved = str(result.saved_to.absolute()) if result.saved_to else None
            server.finish(pages.success(result.account, saved))
        return result
    finally:
        if server:
            await server.close()


async def _serve(started: Started, reporter: Reporter) -> CallbackServer:
    server = CallbackServer(list(started.sockets), started.target, started.state, reporter.warn)
    await server.start()
    return server


async def _wait(server: CallbackServer | None, started: Started, opts: LoginOptions, io: Io) -> Callback:
    deadline = time.strftime("%H:%M:%S", time.localtime(time.time() + opts.timeout))
    can_paste = io.paste.can_deliver()
    if server and not can_paste:
        io.reporter.info(
            f"Waiting until {deadline} for {opts.section.title}'s redirect only: standard input is not a terminal, "
            "so nothing can be pasted here."
        )
    else:
        how = f"for {opts.section.title}'s redirect, or for" if server else "for"
        io.reporter.info(
            f"Waiting until {deadline} {how} the address the browser shows after you click Allow "
            "— paste it here and press Enter."
        )
    loop = asyncio.get_running_loop()

    def report(future: Future[bool]) -> None:  # on the browser's thread, or at once
        with contextlib.suppress(RuntimeError):  # the loop has closed: the flow is over
            loop.call_soon_threadsafe(_report_browser, future, io.reporter)

    started.browser.add_done_callback(report)
    paste = asyncio.ensure_future(_read_pastes(io, started, paste_only=server is None))
    waiting: set[asyncio.Future[Callback]] = {paste} | ({server.result} if server else set())
    try:
        done, _ = await asyncio.wait(waiting, timeout=opts.timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        paste.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await paste  # the terminal's modes come back before anything else is printed
    if not done:
        what = "No redirect arrived and nothing was pasted" if can_paste else "No redirect arrived"
        raise TimedOut(f"{what} within {opts.timeout:g} seconds; the config was not changed.", started.advice)
    return done.pop().result()


def _report_browser(opened: Future[bool], reporter: Reporter) -> None:
    if opened.cancelled() or (opened.exception() is None and opened.result()):
        return
    reporter.warn("no browser could be opened here: open the URL above yourself.")


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


@contextlib.asynccontextmanager
async def warm(client: TokenClient, urls: Sequence[str]) -> AsyncIterator[None]:
    """While the block waits for the user, keep the connections the next requests need open and ready."""
    warming = asyncio.ensure_future(client.keep_warm(urls))
    try:
        yield
    finally:
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warming


async def _finish(callback: Callback, started: Started, opts: LoginOptions, io: Io, client: TokenClient) -> LoginResult:
    if isinstance(callback, Refused):
        raise refusal(callback, opts.section)
    assert isinstance(callback, Authorized)
    io.reporter.info("Got the code; exchanging it for tokens…")
    creds = started.creds
    with interrupts.held() as hold:  # from the code's exchange to the save: a signal waits until the tokens are safe
        try:
            tokens = await client.exchange_code(
                creds.client_id, creds.client_secret, callback.code, started.verifier, started.target.sent_uri
            )
        except UnusableTokens as exc:
            raise kometa_config.keep_unusable(opts.config_path.absolute().parent, exc) from None
        checking = asyncio.ensure_future(client.whoami(tokens.access_token)) if opts.verify else None
        try:
            planned = _plan_meanwhile(started.config, tokens, creds, opts)  # the splice, while users/@me is on its way
            account = await checking if checking else None
        finally:
            if checking:
                checking.cancel()
        return keep(tokens, account, started.config, creds, opts, io, hold, planned)


def _plan_meanwhile(
    config: KometaConfig | None, tokens: TokenSet, creds: Credentials, opts: LoginOptions
) -> kometa_config.Plan | None:
    """The save worked out ahead; anything odd is left for the save itself to find and explain."""
    if config is None or opts.print_block:
        return None
    try:
        return kometa_config.plan_save(config, tokens, creds, opts.section)
    except ConfigError:
        return None


def keep(
    tokens: TokenSet,
    account: str | None,
    config: KometaConfig | None,
    creds: Credentials,
    opts: LoginOptions,
    io: Io,
    hold: interrupts.Hold,
    planned: kometa_config.Plan | None = None,
) -> LoginResult:
    """Tokens just issued: into the config (or out as a block for --print). Call inside interrupts.held()."""
    section = opts.section
    hold.block = kometa_config.config_block(creds, tokens, section)
    if opts.print_block or config is None:
        return LoginResult(account, None, hold.block)
    saved = kometa_config.save_issued(config, tokens, creds, io.reporter.info, section, planned)
    hold.saved_to = saved.path
    for key in saved.placeholders:
        io.reporter.warn(
            f"{section.name}.authorization.{key} is a <<placeholder>>, so it was left as it is: update it yourself."
        )
    return LoginResult(account, saved.path, changes=saved.changes)


def refusal(callback: Refused, section: Section = MAL) -> MalcaptureError:
    said = " — ".join(part for part in (callback.message, callback.hint) if part)
    title = section.title
    if callback.denied:
        return AccessDenied(
            f"Access was denied on {title}" + (f" ({said})." if said else "."),
            f"Run malcapture again and click Allow to let Kometa read your {title} lists.",
        )
    return MalError(
        f"{title} refused the authorization: {callback.error}" + (f" — {said}" if said else ""),
        f"Check the client ID and the redirect URL registered in your {title} app, then run malcapture again.",
    )
