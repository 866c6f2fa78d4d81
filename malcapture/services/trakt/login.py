"""Trakt's ways in: the device flow (the default: a code approved on any device, polled by device.approve),
Kometa's PIN flow (--pin: trakt.pin first, else a PIN typed here), the loopback capture (--redirect-uri)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from malcapture.errors import ServiceError, TimedOut, UsageError
from malcapture.login.contract import Setup
from malcapture.login.ways import PIN as PIN_WAY

if TYPE_CHECKING:
    from malcapture.login.contract import LoginOptions, LoginResult
    from malcapture.login.io import Io
    from malcapture.login.keep import Destination, Kept
    from malcapture.login.prepare import Prepared


from malcapture.services.trakt.client import TraktClient, authorize_url

PIN = re.compile(r"[A-Za-z0-9]{4,32}")


def login(opts: LoginOptions, io: Io) -> LoginResult:
    """Device flow by default; `--pin` for Kometa's PIN page; `--redirect-uri` for the loopback capture."""
    from malcapture import interrupts
    from malcapture.login import loopback

    if opts.chose(PIN_WAY) and opts.redirect_uri:
        raise UsageError(
            "use either --pin or --redirect-uri, not both.", "Run `malcapture trakt --help` for the ways in."
        )
    if opts.redirect_uri:
        return loopback.run(opts, io)
    return interrupts.run(login_async(opts, io))


async def login_async(opts: LoginOptions, io: Io) -> LoginResult:
    from malcapture.login import loopback
    from malcapture.login.keep import Destination
    from malcapture.login.prepare import prepare

    if opts.chose(PIN_WAY) and opts.redirect_uri:
        raise UsageError(
            "use either --pin or --redirect-uri, not both.", "Run `malcapture trakt --help` for the ways in."
        )
    if opts.redirect_uri:
        return await loopback.login(opts, io)
    prepared = prepare(opts, io)
    if prepared is None:
        from malcapture.login.contract import LoginResult

        return LoginResult(None, None, declined=True)
    dest = Destination.of(opts, prepared)
    async with TraktClient(Setup(io.env, io.reporter.debug, prepared.creds, sleep=io.clock.sleep)) as client:
        if opts.chose(PIN_WAY):
            return (await _pin(client, prepared, dest, opts, io)).result()
        return (await _device(client, dest, opts, io)).result()


async def _device(client: TraktClient, dest: Destination, opts: LoginOptions, io: Io) -> Kept:
    from malcapture.login.device import Approval, approve, show_code

    device = await client.device_code()  # a deleted app (403) is explained here, before any browser
    what = "Open this page on any device (phone, computer), sign in to Trakt and enter the code:"
    show_code(device.verification_url, device.user_code, device.expires_in, opts, io, what)
    approval = Approval(
        device.user_code,
        device.interval,
        device.expires_in,
        f"The code {device.user_code} expired before it was approved",
        "Run `malcapture trakt` again and approve the new code within its time.",
    )
    return await approve(approval, lambda: client.poll(device), client, dest, io)


async def _pin(client: TraktClient, prepared: Prepared, dest: Destination, opts: LoginOptions, io: Io) -> Kept:
    from malcapture.login.keep import keep_issued

    place, config = prepared.place, prepared.config
    stored = config.setting(place, "pin", io.env) if config else None
    if stored:
        io.reporter.info("Using the PIN in trakt.pin (it works once).")
        try:
            kept = await keep_issued(lambda: client.exchange_code(stored, "", None), client, dest, io.reporter, io.env)
            assert not isinstance(kept, type(None))
            return kept
        except ServiceError as exc:
            if not exc.refused:
                raise
            io.reporter.warn(f"the PIN in trakt.pin was refused ({exc.what}) — it works once and only for minutes.")
    if not io.paste.can_deliver():
        raise UsageError(
            "A PIN must be typed, but standard input is not a terminal and has nothing to read; "
            "the config was not changed.",
            "Run `malcapture trakt` (the device flow needs no typing), or put a fresh PIN in trakt.pin.",
        )
    assert prepared.creds is not None
    url = authorize_url(io.env, prepared.creds.client_id, "", "", None)
    io.reporter.info("Open this URL, sign in to Trakt, click Yes, and type here the PIN that Trakt shows:")
    io.reporter.url(url)
    io.reporter.info("(Trakt is retiring this PIN page: if it shows no PIN, run `malcapture trakt` instead.)")
    if not opts.no_browser and io.headless(io.env) is None:
        from malcapture import browser

        io.reporter.info("Opening your browser…")
        browser.warn_if_unopened(browser.open_in_background(io.open_browser, url), io.reporter.warn)
    pin = await _read_pin(opts, io)
    return await keep_issued(lambda: client.exchange_code(pin, "", None), client, dest, io.reporter, io.env)


async def _read_pin(opts: LoginOptions, io: Io) -> str:
    import asyncio

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
