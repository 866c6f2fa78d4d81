"""Everything a login checks before anything is spent: the config, the app's ID and secret, the save
proven with stand-in tokens, and whether tokens that still work should be replaced at all."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple

from malcapture.config import kometa, lock
from malcapture.config.kometa import KometaConfig
from malcapture.config.place import Place, Wants
from malcapture.errors import ConfigError, UsageError
from malcapture.login.contract import Credentials, LoginOptions, Service, http_timeout
from malcapture.login.credentials import credentials, prove, refused_online, stored_expiry
from malcapture.login.io import Io
from malcapture.ui import Reporter


class Prepared(NamedTuple):
    config: KometaConfig | None  # None: --print without a readable config
    creds: Credentials | None  # None: the service has no app
    place: Place


def _library(config: KometaConfig, name: str) -> None:
    """--library NAME names one of the config's libraries: one written without settings (`TV Shows:`) too."""
    libraries = config.mapping(("libraries",)) or {}
    if name in libraries:
        return
    same = next((key for key in libraries if str(key) == name), None)
    if same is not None:  # `1984:` is the number 1984 to YAML
        raise UsageError(
            f"--library {name}: the library {name} of {config.shown} is named by a number, which malcapture cannot "
            "write under yet.",
            f"Quote its name in the config ('{name}':), which Kometa reads the same, then run this again.",
        )
    names = ", ".join(sorted(str(key) for key in libraries)) or "none"
    raise UsageError(
        f"--library {name}: {config.shown} has no library of that name (it has: {names}).",
        "Pass the library's name as the config's libraries: section spells it.",
    )


def prepare(opts: LoginOptions, io: Io, extra: Wants | None = None) -> Prepared | None:
    """The config and the app's credentials, checked before anything is spent (and before the browser
    opens); None when the user chose to keep tokens that still work."""
    service = opts.service
    place = service.place(opts.library)
    http_timeout(io.env)  # a bad setting is a usage error now, not after the browser
    config = _preflight(opts, io.reporter)
    if config is not None and opts.library:
        _library(config, opts.library)
    creds = credentials(service, opts.client_id, opts.client_secret, config, place, io.env, io.reporter, io.ask)
    if config is not None and not opts.print_block:
        # What the file would refuse is refused now, before a code is spent.
        prove(config, service, place, creds, io.env, io.reporter, extra)
        if not _replace_working_tokens(config, service, place, creds, opts, io):
            return None
    return Prepared(config, creds, place)


def _preflight(opts: LoginOptions, reporter: Reporter) -> KometaConfig | None:
    """Fail on the config before the browser opens: a code is single-use."""
    if not opts.print_block:
        config = kometa.load(opts.config_path)
        kometa.check_writable(config)
        lock.check(config.path)  # a lock that cannot be had here fails now, not after the code is spent
        return config
    if not opts.config_path.exists():
        return None
    try:
        return kometa.load(opts.config_path)
    except ConfigError as exc:
        reporter.warn(f"ignoring the config for --print: {exc.what}")
        return None


def _replace_working_tokens(
    config: KometaConfig, service: Service, place: Place, creds: Credentials | None, opts: LoginOptions, io: Io
) -> bool:
    """Tokens that still work are not replaced silently: say whose they are, and at a terminal, ask — once the
    service said they work (one request, spending nothing); tokens it refuses are replaced without a question."""
    try:
        access = config.setting(place, service.access_key, io.env, token=True)
        expires = stored_expiry(config, service, place, io.env)
    except (UsageError, ConfigError):
        return True
    now = datetime.fromtimestamp(io.clock.wall(), timezone.utc)
    if access is None or (service.code.expiry is not None and (expires is None or expires <= now)):
        return True
    whose = service.code.owner(access) if service.code.owner else None
    until = f"expires {expires.strftime('%Y-%m-%d %H:%M UTC')}" if expires else "does not expire"
    held = f"{config.shown} already holds a {service.title} token{f' of {whose}' if whose else ''}, which {until}"
    if opts.yes or io.ask is None:
        io.reporter.info(f"{held}; it is replaced ({'--yes' if opts.yes else 'no terminal to ask at'}).")
        return True
    refused = refused_online(service, config, place, creds, io.env, {"url": opts.url} if opts.url else {})
    if refused:
        io.reporter.info(f"{held}, but {service.title} refuses it ({refused}): authorizing anew.")
        return True
    io.reporter.info(f"{held}, and {service.title} takes it (asked just now).")
    answer = io.ask("Replace it with a new authorization? [y/N]", False).strip().lower()
    if answer in ("y", "yes"):
        return True
    io.reporter.info("Kept the tokens that are there; nothing was changed.")
    return False
