"""The login, step by step: check the config, bind, announce and open the browser, then wait and finish.

Everything up to the browser runs before asyncio and aiohttp are loaded (`make bench` measures
what that saves): binding uses the standard library, and the kernel queues the browser's
connection until capture.py's server accepts it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from datetime import datetime, timezone

from malcapture import browser, container, interrupts, kometa_config, pkce, ports, providers
from malcapture.credentials import resolve_credentials
from malcapture.errors import ConfigError, PortConflict, UsageError
from malcapture.kometa_config import Credentials, KometaConfig
from malcapture.redirect import RedirectTarget, is_loopback_host, parse_redirect_uri
from malcapture.sections import MAL
from malcapture.session import Io, LoginOptions, LoginResult, Started
from malcapture.tokens import jwt_claims
from malcapture.ui import Reporter

BROWSER_HEAD_START = 0.5  # seconds


def run(opts: LoginOptions, io: Io) -> LoginResult:
    """The whole login for a caller without an event loop (the CLI): asyncio loads after the browser opens."""
    started = start(opts, io)
    if started is None:
        return LoginResult(None, None, kept=True)
    # Let the browser command start before loading asyncio and aiohttp takes the CPU. Some commands
    # return only when the browser exits: no one clicks Allow that fast, and the kernel queues the redirect.
    wait([started.browser], timeout=BROWSER_HEAD_START)
    from malcapture.capture import complete

    return interrupts.run(complete(started, opts, io))


async def login(opts: LoginOptions, io: Io) -> LoginResult:
    """The whole login inside a running event loop (the demo, the tests)."""
    from malcapture.capture import complete

    started = start(opts, io)
    return LoginResult(None, None, kept=True) if started is None else await complete(started, opts, io)


def start(opts: LoginOptions, io: Io) -> Started | None:
    """Everything up to the wait; None when the user chose to keep the tokens that still work."""
    target = parse_redirect_uri(opts.redirect_uri)
    provider = providers.for_section(opts.section, io.env)
    headless = None if opts.no_browser or opts.manual else io.headless(io.env)
    if not (opts.no_browser or opts.manual or headless):
        io.find_browser()  # runs while the config is read
    prepared = prepare(opts, io)
    if prepared is None:
        return None
    config, creds = prepared
    sockets = () if opts.manual else tuple(_claim(target, opts.bind, io))
    if not sockets and not io.paste.can_deliver():
        raise UsageError(*_no_way_to_paste(target, opts, io))
    verifier, state = pkce.make_verifier(), pkce.make_state()
    url = provider.authorize_url(creds.client_id, verifier, state, target.sent_uri)
    opened = _announce(url, target, headless, listening=bool(sockets), opts=opts, io=io)
    advice = _advice_on_timeout(target, headless, bool(sockets), io)
    return Started(target, provider, config, creds, verifier, state, sockets, opened, advice)


def prepare(opts: LoginOptions, io: Io) -> tuple[KometaConfig | None, Credentials] | None:
    """The config and the app's credentials, checked before anything is spent; None when the user
    chose to keep tokens that still work."""
    config = _preflight(opts, io.reporter)
    creds = resolve_credentials(
        opts.client_id, opts.client_secret, config, dict(io.env), io.reporter, io.ask, opts.config_path, opts.section
    )
    if config is not None and not opts.print_block:
        kometa_config.prove_save(config, creds, opts.section)  # what the file would refuse, before a code is spent
        if not _replace_working_tokens(config, opts, io):
            return None
    return config, creds


def _preflight(opts: LoginOptions, reporter: Reporter) -> KometaConfig | None:
    """Fail on the config before the browser opens: a code is single-use."""
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


def _replace_working_tokens(config: KometaConfig, opts: LoginOptions, io: Io) -> bool:
    """Tokens that still work are not replaced silently: say whose they are, and at a terminal, ask."""
    section = opts.section
    try:
        access = config.setting("access_token", io.env, section)
        expires = kometa_config.stored_expiry(config, io.env, section)
    except UsageError:
        return True
    if access is None or expires is None or expires <= datetime.now(timezone.utc):
        return True
    user = None if section.opaque_tokens else jwt_claims(access).get("sub")
    whose = f" of {section.title} user ID {user}" if user else ""
    check = "malcapture check" if section is MAL else f"malcapture {section.name} check"
    io.reporter.info(
        f"{config.path} already holds a {section.title} access token{whose} that works until "
        f"{expires.strftime('%Y-%m-%d %H:%M UTC')} (`{check}` names the account)."
    )
    if opts.yes or io.ask is None:
        return True
    answer = io.ask("Replace it with a new authorization? [y/N]", False).strip().lower()
    if answer in ("y", "yes"):
        return True
    io.reporter.info("Kept the tokens that are there; nothing was changed.")
    return False


def _claim(target: RedirectTarget, bind: str | None, io: Io) -> list[socket.socket]:
    reporter = io.reporter
    if bind and not is_loopback_host(bind):
        reporter.warn(
            f"listening on {bind}, not just loopback: anyone who can reach this machine's port "
            f"{target.port} can see the redirect page while malcapture waits."
        )
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
    why = "--manual was given" if opts.manual else "the redirect cannot reach malcapture (see above)"
    what = (
        f"Pasting the redirected address is the only way to finish here ({why}), but standard input is not "
        f"a terminal and has nothing to read. Stopped before opening {opts.section.title}, so that no single-use "
        "code is wasted; the config was not changed."
    )
    if io.in_container:
        return what, container.fixes(target.port)
    return what, "Run malcapture in a terminal, or pipe the redirected address into it (`echo URL | malcapture …`)."


def _announce(
    url: str, target: RedirectTarget, headless: str | None, listening: bool, opts: LoginOptions, io: Io
) -> Future[bool]:
    reporter = io.reporter
    if not listening:
        reporter.info(
            "Continuing without a server: after you click Allow, the browser shows an error or another "
            "site — copy the whole address from its address bar and paste it here."
        )
    title = opts.section.title
    reporter.info(f"Open this URL to authorize Kometa on {title}:")
    reporter.url(url)
    if headless:
        reporter.info(
            f"Not opening a browser: {headless}. {title} redirects the browser that you open the URL in "
            f"to {target.uri} — that is, to the computer the browser runs on, not to this one."
        )
        if listening:
            reporter.info(
                "Either forward the port, so that the redirect reaches malcapture here — run this on "
                f"the computer with the browser, then open the URL:\n"
                f"  {browser.ssh_forward_hint(target.port, io.env)}\n"
                "or paste the address the browser shows after you click Allow."
            )
    opened: Future[bool] = Future()
    if opts.no_browser or opts.manual or headless:
        opened.set_result(True)
    else:
        reporter.info("Opening your browser…")
        threading.Thread(target=_open, args=(io.open_browser, url, opened), daemon=True).start()
    return opened


def _advice_on_timeout(target: RedirectTarget, headless: str | None, listening: bool, io: Io) -> str:
    if not io.paste.interactive and io.in_container:
        return container.fixes(target.port)
    if headless and listening:
        return (
            f"Forward the port from the computer with the browser ({browser.ssh_forward_hint(target.port, io.env)}) "
            "or paste the address the browser shows after Allow, then run malcapture again."
        )
    return "Run malcapture again (with a longer --timeout if you need more time)."


def _open(open_browser: Callable[[str], bool], url: str, opened: Future[bool]) -> None:
    """On a daemon thread: webbrowser can wait for the browser to exit, and must not hold up ours."""
    try:
        opened.set_result(open_browser(url))
    except Exception as exc:  # reported, not raised: the flow goes on with the paste prompt
        opened.set_exception(exc)
