"""The loopback login up to the browser: check the config, bind, announce the URL and open it.

All of it runs before asyncio and aiohttp are loaded: binding uses the standard library, and the
kernel queues the browser's connection until capture.py's server accepts it.
"""

from __future__ import annotations

import socket
from concurrent.futures import Future
from dataclasses import dataclass, field

from malcapture import browser, container
from malcapture.config.place import IfBlank, Wants
from malcapture.errors import PortConflict, UsageError
from malcapture.login import pkce, ports
from malcapture.login.contract import LoginOptions
from malcapture.login.io import Io
from malcapture.login.prepare import Prepared, prepare
from malcapture.login.redirect import RedirectTarget, is_loopback_host, target_for
from malcapture.login.ways import PASTE


@dataclass(frozen=True)
class Started:
    """The login up to the wait: config checked, port bound (or not), URL announced, browser asked to open."""

    target: RedirectTarget
    prepared: Prepared
    verifier: str = field(repr=False)
    state: str = field(repr=False)
    sockets: tuple[socket.socket, ...]
    browser: Future[bool]  # settles when the browser command returns: False or an error if none opened
    advice: str  # what to do if nothing arrives in time, for this situation
    url: str = field(repr=False)  # the page that asks the user to authorize (it holds the state and verifier)
    start_path: str | None = field(default=None, repr=False)  # the browser's one-time way there, via our server
    extra: Wants | None = None  # written with the tokens (the redirect URI, where the config keeps it)


def start(opts: LoginOptions, io: Io) -> Started | None:
    """Everything up to the wait; None when the user chose to keep the tokens that still work."""
    service, redirect = opts.service, opts.service.redirect
    assert service.app is not None, "a loopback login needs an app"
    assert redirect is not None, "and its redirect rules"
    assert service.code.authorize_url is not None, "and a page that redirects back"
    section = service.place(opts.library).name
    if opts.redirect_uri is not None or redirect.setting is None:  # refused now, before the config is read
        target = target_for(redirect, opts.redirect_uri, None, service.app.apps, section, ports.free_port)
    manual = opts.chose(PASTE)
    headless = None if opts.no_browser or manual else io.headless(io.env)
    if not (opts.no_browser or manual or headless):
        io.find_browser()  # runs while the config is read
    # A redirect the config keeps is filled in from --redirect-uri when blank: Kometa sends it too.
    extra = {redirect.setting: IfBlank(opts.redirect_uri)} if redirect.setting and opts.redirect_uri else None
    prepared = prepare(opts, io, extra)
    if prepared is None:
        return None
    assert prepared.creds is not None
    if opts.redirect_uri is None and redirect.setting is not None:
        stored = prepared.config.setting(prepared.place, redirect.setting, io.env) if prepared.config else None
        target = target_for(redirect, None, stored, service.app.apps, section, ports.free_port)
    sockets = () if manual else tuple(_claim(target, opts.bind, io))
    if not sockets and not io.paste.can_deliver():
        raise UsageError(*_no_way_to_paste(target, opts, io))
    verifier, state = pkce.make_verifier(), pkce.make_state()
    url = service.code.authorize_url(io.env, prepared.creds.client_id, verifier, state, target.sent_uri)
    # The browser's command line is readable by every local user: with a server, it gets a one-time
    # address of ours that redirects to `url`, which then travels only inside that HTTP answer.
    start_path = f"/start/{pkce.make_state()}" if sockets else None
    shown = f"http://{target.display_host}:{target.port}{start_path}" if start_path else url
    opened = _announce(url, shown, target, headless, listening=bool(sockets), opts=opts, io=io)
    advice = _advice_on_timeout(target, headless, bool(sockets), io)
    return Started(target, prepared, verifier, state, sockets, opened, advice, url, start_path, extra)


def _claim(target: RedirectTarget, bind: str | None, io: Io) -> list[socket.socket]:
    reporter = io.reporter
    if bind and not is_loopback_host(bind):
        reporter.warn(
            f"listening on {bind}, not just loopback: anyone who can reach this machine's port "
            f"{target.port} can see the redirect page while malcapture waits."
        )
    elif not target.host:
        reporter.info(
            f"The redirect URL {target.uri} is https://, which malcapture's plain server on this machine cannot "
            "answer: after you click Allow, copy the address the browser shows and paste it here."
        )
        return []
    elif not bind and not target.is_loopback:
        reporter.warn(
            f"the redirect URL's host {target.host} is not this machine's loopback, so malcapture cannot "
            "listen for it (use --bind 0.0.0.0 if this machine answers to that name)."
        )
        return []
    try:
        return ports.claim(target, bind)
    except PortConflict as exc:
        reporter.warn(str(exc))
        return []


def _no_way_to_paste(target: RedirectTarget, opts: LoginOptions, io: Io) -> tuple[str, str]:
    why = (
        f"{opts.way.flag.name} was given"
        if opts.way is not None and opts.way.flag is not None
        else "the redirect cannot reach malcapture (see above)"
    )
    what = (
        f"Pasting the redirected address is the only way to finish here ({why}), but standard input is not "
        f"a terminal and has nothing to read. Stopped before opening {opts.service.title}, so that no single-use "
        "code is wasted; the config was not changed."
    )
    if io.in_container:
        return what, container.fixes(None if opts.chose(PASTE) else ports.free_port())
    return what, "Run malcapture in a terminal, or pipe the redirected address into it (`echo URL | malcapture …`)."


def _announce(
    url: str, to_open: str, target: RedirectTarget, headless: str | None, listening: bool, opts: LoginOptions, io: Io
) -> Future[bool]:
    reporter = io.reporter
    if not listening:
        reporter.info(
            "Continuing without a server: after you click Allow, the browser shows an error or another "
            "site — copy the whole address from its address bar and paste it here."
        )
    title = opts.service.title
    reporter.info(f"Open this URL to authorize Kometa on {title}:")
    reporter.url(url)
    if headless:
        reporter.info(
            f"Not opening a browser: {headless}. {title} redirects the browser that you open the URL in "
            f"to {target.uri} — that is, to the computer the browser runs on, not to this one."
        )
        if listening:
            paste = "\nor paste the address the browser shows after you click Allow." if io.paste.can_deliver() else ""
            reporter.info(
                "Forward the port, so that the redirect reaches malcapture here — run this on "
                f"the computer with the browser, then open the URL:\n"
                f"  {browser.ssh_forward_hint(target.port, io.env)}{paste}"
            )
    if opts.no_browser or opts.chose(PASTE) or headless:
        opened: Future[bool] = Future()
        opened.set_result(True)
        return opened
    reporter.info("Opening your browser…")
    return browser.open_in_background(io.open_browser, to_open)


def _advice_on_timeout(target: RedirectTarget, headless: str | None, listening: bool, io: Io) -> str:
    if not io.paste.interactive and io.in_container:
        return container.fixes(ports.free_port())
    if headless and listening:
        return (
            f"Forward the port from the computer with the browser ({browser.ssh_forward_hint(target.port, io.env)}) "
            "or paste the address the browser shows after Allow, then run malcapture again."
        )
    return "Run malcapture again (with a longer --timeout if you need more time)."
