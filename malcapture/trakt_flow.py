"""`malcapture trakt login`: Trakt's device flow (the default) and Kometa's own PIN flow (`--pin`).

The device flow needs no redirect URL, port or paste: it works the same on a desktop, over SSH and
in a container. The loopback capture (`--redirect-uri http://localhost:…`) is flow.py's, shared
with MyAnimeList. Both here end in capture.keep, inside interrupts.held(), as the loopback does.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time

from malcapture import flow, interrupts
from malcapture.capture import keep, warm
from malcapture.endpoints import TraktEndpoints
from malcapture.errors import AccessDenied, MalError, NetworkError, TimedOut, UnusableTokens, UsageError
from malcapture.kometa_config import Credentials, KometaConfig, keep_unusable
from malcapture.providers import Trakt
from malcapture.sections import TRAKT
from malcapture.session import Io, LoginOptions, LoginResult
from malcapture.trakt import DeviceCode, TraktClient

PIN = re.compile(r"[A-Za-z0-9]{4,32}")
PENDING, NOT_FOUND, USED, EXPIRED, DENIED, SLOW_DOWN = 400, 404, 409, 410, 418, 429


async def login(opts: LoginOptions, io: Io) -> LoginResult:
    """Device flow by default; `--pin` for Kometa's PIN page (a PIN already in trakt.pin goes first)."""
    prepared = flow.prepare(opts, io)
    if prepared is None:
        return LoginResult(None, None, kept=True)
    config, creds = prepared
    endpoints = TraktEndpoints.from_env(io.env)
    async with TraktClient(endpoints, creds.client_id, io.reporter.debug) as client:
        if opts.pin:
            return await _pin(client, Trakt(endpoints), config, creds, opts, io)
        return await _device(client, config, creds, opts, io)


async def _device(
    client: TraktClient, config: KometaConfig | None, creds: Credentials, opts: LoginOptions, io: Io
) -> LoginResult:
    device = await client.device_code()  # a deleted app (403) is explained here, before any browser
    io.reporter.info("Open this page on any device (phone, computer), sign in to Trakt and enter the code:")
    io.reporter.url(device.verification_url)
    io.reporter.url(device.user_code)
    _open_browser(device.verification_url, opts, io)
    until = time.strftime("%H:%M:%S", time.localtime(time.time() + device.expires_in))
    io.reporter.info(f"Waiting for your approval: the code is valid until {until} ({device.expires_in // 60} minutes).")
    deadline = time.monotonic() + device.expires_in
    interval = float(device.interval)
    async with warm(client, (f"{client.endpoints.api}/users/settings",)):  # the polls keep auth.trakt.tv warm
        return await _poll(client, device, config, creds, opts, io, deadline, interval)


async def _poll(
    client: TraktClient,
    device: DeviceCode,
    config: KometaConfig | None,
    creds: Credentials,
    opts: LoginOptions,
    io: Io,
    deadline: float,
    interval: float,
) -> LoginResult:
    while True:
        await asyncio.sleep(interval)
        with interrupts.held() as hold:  # a poll that Trakt answers with tokens is saved before any signal
            poll = await client.poll(device, creds.client_secret)
            if poll.tokens is not None:
                account = await client.whoami(poll.tokens.access_token) if opts.verify else None
                return keep(poll.tokens, account, config, creds, opts, io, hold)
        interval = _next_interval(poll.status, poll.retry_after, interval, device, deadline, io)


def _next_interval(
    status: int, retry_after: float | None, interval: float, device: DeviceCode, deadline: float, io: Io
) -> float:
    if status == SLOW_DOWN:
        slower = max(interval + 1, retry_after or 0)
        io.reporter.debug(f"Trakt asks to poll more slowly: every {slower:g} seconds now")
        return slower
    if status == DENIED:
        raise AccessDenied("The code was denied on Trakt.", "Run `malcapture trakt` again and approve it.")
    if status == EXPIRED or time.monotonic() > deadline:
        raise TimedOut(
            f"The code {device.user_code} expired before it was approved; the config was not changed.",
            "Run `malcapture trakt` again and approve the new code within its time.",
        )
    if status in (NOT_FOUND, USED):
        what = "does not know this code" if status == NOT_FOUND else "says this code was already used"
        raise MalError(f"Trakt {what} (HTTP {status}).", "Run `malcapture trakt` again for a new code.")
    if status != PENDING:
        io.reporter.debug(f"Trakt answered HTTP {status}; still waiting")
    return interval


async def _pin(
    client: TraktClient,
    provider: Trakt,
    config: KometaConfig | None,
    creds: Credentials,
    opts: LoginOptions,
    io: Io,
) -> LoginResult:
    stored = config.setting("pin", io.env, TRAKT) if config else None
    if stored:
        io.reporter.info("Using the PIN in trakt.pin (it works once).")
        try:
            return await _exchange(client, stored, config, creds, opts, io)
        except NetworkError:
            raise
        except MalError as exc:
            io.reporter.warn(f"the PIN in trakt.pin was refused ({exc.what}) — it works once and only for minutes.")
    if not io.paste.can_deliver():
        raise UsageError(
            "A PIN must be typed, but standard input is not a terminal and has nothing to read; "
            "the config was not changed.",
            "Run `malcapture trakt` (the device flow needs no typing), or put a fresh PIN in trakt.pin.",
        )
    url = provider.authorize_url(creds.client_id, "", "", None)
    io.reporter.info("Open this URL, sign in to Trakt, click Yes, and type here the PIN that Trakt shows:")
    io.reporter.url(url)
    io.reporter.info("(Trakt is retiring this PIN page: if it shows no PIN, run `malcapture trakt` instead.)")
    _open_browser(url, opts, io)
    pin = await _read_pin(opts, io)
    return await _exchange(client, pin, config, creds, opts, io)


async def _read_pin(opts: LoginOptions, io: Io) -> str:
    async def read() -> str:
        while True:
            line = await io.paste.next_line()
            if line is None:
                raise UsageError("Input ended before a PIN was typed; the config was not changed.")
            if PIN.fullmatch(line.strip()):
                return line.strip()
            if line.strip():
                io.reporter.warn("that is not a PIN (letters and digits, as Trakt shows it). Type it again:")

    try:
        return await asyncio.wait_for(read(), opts.timeout)
    except asyncio.TimeoutError:
        raise TimedOut(f"No PIN was typed within {opts.timeout:g} seconds; the config was not changed.") from None


async def _exchange(
    client: TraktClient, code: str, config: KometaConfig | None, creds: Credentials, opts: LoginOptions, io: Io
) -> LoginResult:
    with interrupts.held() as hold:
        try:
            tokens = await client.exchange_code(creds.client_id, creds.client_secret, code, None, None)
        except UnusableTokens as exc:
            raise keep_unusable(opts.config_path.absolute().parent, exc) from None
        account = await client.whoami(tokens.access_token) if opts.verify else None
        return keep(tokens, account, config, creds, opts, io, hold)


def _open_browser(url: str, opts: LoginOptions, io: Io) -> None:
    """On a desktop, open the page (on a thread: some browser commands wait for the browser to exit)."""
    if opts.no_browser or io.headless(io.env):
        return
    io.reporter.info("Opening your browser…")
    threading.Thread(target=_quietly, args=(io, url), daemon=True).start()


def _quietly(io: Io, url: str) -> None:
    try:
        io.open_browser(url)
    except Exception as exc:  # the URL is printed: the user can open it
        io.reporter.debug(f"the browser could not be opened: {exc}")
