"""Plex's sign-in: a strong PIN signed in at app.plex.tv in this machine's browser, which comes back to a
loopback port of ours (forwardUrl: it only brings the next poll forward); elsewhere, or with --link, a
4-character code typed at plex.tv/link. Either way the PIN is polled (device.approve) until it holds the token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from malcapture.config.place import IfBlank
from malcapture.login.contract import Setup
from malcapture.login.ways import LINK
from malcapture.services import PLEX as SERVICE

if TYPE_CHECKING:
    from malcapture.login.contract import LoginOptions, LoginResult
    from malcapture.login.device import Approval
    from malcapture.login.io import Io
    from malcapture.login.keep import Destination, Kept


from malcapture.services.plex.client import AGAIN, POLL_EVERY, Pin, PlexClient


def login(opts: LoginOptions, io: Io) -> LoginResult:
    from malcapture import interrupts

    return interrupts.run(login_async(opts, io))


async def login_async(opts: LoginOptions, io: Io) -> LoginResult:
    from malcapture.login.contract import LoginResult
    from malcapture.login.keep import Destination
    from malcapture.login.prepare import prepare
    from malcapture.services.plex import device as plex_device

    extra = {"url": IfBlank(opts.url)}  # a section written anew has `url:` too, as Kometa's template
    prepared = prepare(opts, io, extra)
    if prepared is None:
        return LoginResult(None, None, declined=True)
    config = prepared.config
    dest = Destination.of(opts, prepared, extra)
    identifier = plex_device.device_id(opts.config_path, io, create=not opts.print_block)
    settings = {
        "url": opts.url or _setting(config, opts, io, "url"),
        "verify_ssl": _setting(config, opts, io, "verify_ssl"),
        "server": opts.server,
    }
    folder = plex_device.folder_of(opts.config_path)
    setup = Setup(io.env, io.reporter.debug, None, settings, folder, sleep=io.clock.sleep, ask=io.ask)
    async with PlexClient(setup, identifier) as client:
        if opts.chose(LINK) or io.headless(io.env) is not None:
            return (await _link(client, dest, opts, io)).result()
        return (await _desktop(client, dest, opts, io)).result()


def _setting(config: Any, opts: LoginOptions, io: Io, key: str) -> str | None:
    """A setting of the section; one a library's section leaves out is the root section's (as Kometa reads it)."""
    if config is None:
        return None
    found: str | None = config.setting(SERVICE.place(opts.library), key, io.env)
    if found is None and opts.library:
        found = config.setting(SERVICE.place(), key, io.env)
    return found


def _approval(pin: Pin, client: PlexClient) -> Approval:
    from malcapture.login.device import Approval

    expired = f"The PIN {pin.code} expired before it was used"
    return Approval(pin.code, POLL_EVERY, pin.expires_in, expired, AGAIN, client.failing)


async def _link(client: PlexClient, dest: Destination, opts: LoginOptions, io: Io) -> Kept:
    """A 4-character code to type at plex.tv/link, on any device: nothing to paste, no port to publish."""
    from malcapture.login.device import approve, show_code

    pin = await client.create_pin(strong=False)
    what = "Open this page on any device (phone, computer), sign in to Plex and enter the code:"
    show_code(f"{client.tv}/link", pin.code, pin.expires_in, opts, io, what)
    return await approve(_approval(pin, client), lambda: client.poll(pin), client, dest, io)


async def _desktop(client: PlexClient, dest: Destination, opts: LoginOptions, io: Io) -> Kept:
    """A strong PIN signed in at app.plex.tv in this machine's browser, which then comes back to us."""
    import asyncio

    from malcapture import browser
    from malcapture.login import pkce
    from malcapture.login.device import approve
    from malcapture.login.server import CallbackServer, serving

    io.find_browser()
    sockets, target = _bind(opts, io)
    pin = await client.create_pin(strong=True)
    forward = f"http://localhost:{target.port}/" if sockets else None
    url = client.sign_in_url(pin, forward)
    wake = asyncio.Event()
    server = None
    to_open = url
    if sockets:  # the browser's command line gets a one-time address of ours, not the PIN's code
        start = f"/start/{pkce.make_state()}"
        server = CallbackServer(list(sockets), target, lambda query: True, io.reporter.warn, (start, url), forward=True)
        await server.start()
        server.result.add_done_callback(lambda _: wake.set())
        to_open = f"http://localhost:{target.port}{start}"
    async with serving(server):
        io.reporter.info("Open this page to sign in to Plex (as Kometa's own device, not with the server's token):")
        io.reporter.url(url)
        io.reporter.info("Opening your browser…")
        browser.warn_if_unopened(browser.open_in_background(io.open_browser, to_open), io.reporter.warn)
        io.reporter.info(f"Waiting until {io.until(pin.expires_in)} for the sign-in ({pin.expires_in // 60} minutes).")
        kept = await approve(_approval(pin, client), lambda: client.poll(pin), client, dest, io, wake)
        if server:
            server.succeeded(kept.account, kept.saved.path if kept.saved else None, SERVICE)
        return kept


def _bind(opts: LoginOptions, io: Io) -> tuple[tuple[Any, ...], Any]:
    """The forward's loopback port (any free one, or --port): a busy one only means no forwardUrl."""
    from malcapture.errors import PortConflict
    from malcapture.login import ports
    from malcapture.login.redirect import parse_redirect_uri

    target = parse_redirect_uri(f"http://localhost:{opts.port or ports.free_port()}/", "plex.tv")
    try:
        return tuple(ports.claim(target)), target
    except PortConflict as exc:
        io.reporter.warn(f"{exc.what} Signing in without coming back to this port: the polling finishes it.")
        return (), target
