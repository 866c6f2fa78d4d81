"""Show a page and a code, then poll the service until the user has approved it there.

Trakt's device flow and Plex's PIN sign-in work this way: nothing comes back to this machine, so
nothing has to be pasted and no port published. The clock is handed in (Io.clock): every wait is
capped by the code's expiry, and a poll can be brought forward (`wake`) when the browser says the
user is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from malcapture import browser
from malcapture.errors import MalcaptureError, ServiceError, TimedOut
from malcapture.login.contract import LoginOptions, TokenClient
from malcapture.login.io import Clock, Io
from malcapture.tokens import TokenSet

if TYPE_CHECKING:
    from malcapture.login.keep import Destination, Kept

T = TypeVar("T")
LONGEST_WAIT = 60.0  # seconds between two polls at most, whatever a service asks (Retry-After: 1e9)


@dataclass(frozen=True)
class Pending:
    """The user has not approved yet; `slower`: the service asks for at least this many seconds between polls."""

    slower: float | None = None


@dataclass(frozen=True)
class Approval:
    """A code the user approves elsewhere: polled every `interval` seconds until it holds the tokens or its
    `lifetime` runs out (then `expired` is said, with `again` as the fix)."""

    code: str
    interval: float
    lifetime: float
    expired: str
    again: str
    failing: Callable[[], str | None] = lambda: None  # what the service itself did wrong meanwhile, if anything


async def approve(
    approval: Approval,
    poll: Callable[[], Awaitable[TokenSet | Pending]],
    client: TokenClient,
    dest: Destination,
    io: Io,
    wake: asyncio.Event | None = None,
) -> Kept:
    """Poll until the code is approved and keep what it issues — the one poll loop of every device or PIN
    sign-in. The app's secret is checked meanwhile (a wrong one ends the wait at once), and the connections
    the account check needs are kept warm."""
    from malcapture.login.keep import keep_issued
    from malcapture.login.warm import warm

    def expired() -> MalcaptureError:
        failed = approval.failing()
        if failed:  # the service, not the user, let the code run out
            return ServiceError(
                f"{failed} until the code {approval.code} expired; the config was not changed.",
                "The service had trouble of its own: try again in a few minutes.",
            )
        return TimedOut(f"{approval.expired}; the config was not changed.", approval.again)

    async def attempt() -> Kept | Pending:
        return await keep_issued(poll, client, dest, io.reporter, io.env)

    polling = poll_until(attempt, approval.interval, approval.lifetime, io.clock, expired, io.reporter.debug, wake)
    async with warm(client, client.warm_urls):
        return await _unless_wrong_secret(polling, client)


async def _unless_wrong_secret(work: Awaitable[Kept], client: TokenClient) -> Kept:
    """The wait, stopped as soon as the app's secret turns out to be wrong."""
    waiting = asyncio.ensure_future(work)
    secret = asyncio.ensure_future(client.check_secret())
    try:
        done, _ = await asyncio.wait({waiting, secret}, return_when=asyncio.FIRST_COMPLETED)
        if secret in done:
            secret.result()
        return await waiting
    finally:
        for task in (waiting, secret):
            task.cancel()


async def poll_until(
    attempt: Callable[[], Awaitable[T | Pending]],
    interval: float,
    lifetime: float,
    clock: Clock,
    expired: Callable[[], MalcaptureError],
    log: Callable[[str], None],
    wake: asyncio.Event | None = None,
) -> T:
    """`attempt` every `interval` seconds (longer when the service asks) until it returns something else
    than Pending; `expired()` is raised once `lifetime` seconds have passed."""
    deadline = clock.now() + lifetime
    while True:
        left = deadline - clock.now()
        if left <= 0:
            raise expired()
        await _pause(clock, min(interval, left), wake)
        got = await attempt()
        if not isinstance(got, Pending):
            return got
        if got.slower is not None:
            interval = min(max(interval + 1, got.slower), LONGEST_WAIT)
            log(f"the service asks to poll more slowly: every {interval:g} seconds now")


async def _pause(clock: Clock, seconds: float, wake: asyncio.Event | None) -> None:
    """Wait `seconds`, or until `wake` is set (then clear it for the next time)."""
    if wake is None:
        await clock.sleep(seconds)
        return
    sleeping = asyncio.ensure_future(clock.sleep(seconds))
    woken = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({sleeping, woken}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeping.cancel()
        woken.cancel()
    wake.clear()


def show_code(page: str, code: str, lifetime: float, opts: LoginOptions, io: Io, what: str) -> None:
    """The page and the code, each whole on a line of its own; the page opened here on a desktop."""
    io.reporter.info(what)
    io.reporter.url(page)
    io.reporter.url(code)
    if not opts.no_browser and io.headless(io.env) is None:
        io.reporter.info("Opening your browser…")
        browser.warn_if_unopened(browser.open_in_background(io.open_browser, page), io.reporter.warn)
    minutes = f" ({int(lifetime // 60)} minutes)" if lifetime < 86400 else ""
    io.reporter.info(f"Waiting for your approval: the code is valid until {io.until(lifetime)}{minutes}.")
