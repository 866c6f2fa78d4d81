"""Everything checked before anything is spent: the config, the app's ID and secret, the save proven
with stand-in tokens, and whether tokens that still work should be replaced at all."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import NamedTuple

from malcapture.config import kometa
from malcapture.config.kometa import KometaConfig
from malcapture.config.place import Place, Wants
from malcapture.errors import ConfigError, UsageError
from malcapture.login.redirect import INVISIBLE
from malcapture.login.session import Ask, Io
from malcapture.services.base import Credentials, LoginOptions, Service, http_timeout
from malcapture.ui import Reporter

SPACES = re.compile(rf"[\s{INVISIBLE}]+")


class Prepared(NamedTuple):
    config: KometaConfig | None  # None: --print without a readable config
    creds: Credentials | None  # None: the service has no app
    place: Place


def prepare(opts: LoginOptions, io: Io, extra: Wants | None = None) -> Prepared | None:
    """The config and the app's credentials, checked before anything is spent (and before the browser
    opens); None when the user chose to keep tokens that still work."""
    service = opts.service
    place = service.place(opts.library)
    http_timeout(io.env)  # a bad setting is a usage error now, not after the browser
    config = _preflight(opts, io.reporter)
    if config is not None and opts.library and not (config.mapping(("libraries", opts.library))):
        names = ", ".join(sorted(str(name) for name in (config.mapping(("libraries",)) or {}))) or "none"
        raise UsageError(
            f"--library {opts.library}: {config.shown} has no library of that name (it has: {names}).",
            "Pass the library's name as the config's libraries: section spells it.",
        )
    creds = credentials(service, opts.client_id, opts.client_secret, config, place, io.env, io.reporter, io.ask)
    if config is not None and not opts.print_block:
        prove(config, service, place, creds, io.env, extra)  # what the file would refuse, before a code is spent
        if not _replace_working_tokens(config, service, place, opts, io):
            return None
    return Prepared(config, creds, place)


def prove(
    config: KometaConfig,
    service: Service,
    place: Place,
    creds: Credentials | None,
    env: Mapping[str, str],
    extra: Wants | None = None,
) -> None:
    """The save of tokens of the real shape works: refused now, with the reason, before anything is spent."""
    from malcapture.config.save import plan_save

    plan_save(config, place, service.wants(service.code.stand_in(), creds, extra), env)


def _preflight(opts: LoginOptions, reporter: Reporter) -> KometaConfig | None:
    """Fail on the config before the browser opens: a code is single-use."""
    if not opts.print_block:
        config = kometa.load(opts.config_path)
        kometa.check_writable(config)
        return config
    if not opts.config_path.exists():
        return None
    try:
        return kometa.load(opts.config_path)
    except ConfigError as exc:
        reporter.warn(f"ignoring the config for --print: {exc.what}")
        return None


def stored_expiry(config: KometaConfig, service: Service, place: Place, env: Mapping[str, str]) -> datetime | None:
    """When the stored access token runs out, read offline (None: not known, or it does not expire)."""
    if service.code.expiry is None:
        return None
    values = {key: config.setting(place, key, env, token=True) for key in service.token_keys}
    return service.code.expiry(values) if values.get(service.access_key) else None


def _replace_working_tokens(config: KometaConfig, service: Service, place: Place, opts: LoginOptions, io: Io) -> bool:
    """Tokens that still work are not replaced silently: say whose they are, and at a terminal, ask."""
    try:
        access = config.setting(place, service.access_key, io.env, token=True)
        expires = stored_expiry(config, service, place, io.env)
    except (UsageError, ConfigError):
        return True
    now = datetime.fromtimestamp(io.clock.wall(), timezone.utc)
    if access is None or (service.code.expiry is not None and (expires is None or expires <= now)):
        return True
    whose = service.code.owner(access) if service.code.owner else None
    until = f"works until {expires.strftime('%Y-%m-%d %H:%M UTC')}" if expires else "does not expire"
    io.reporter.info(
        f"{config.shown} already holds a {service.title} token{f' of {whose}' if whose else ''} that {until} "
        f"(`{service.command('check')}` names the account)."
    )
    if opts.yes or io.ask is None:
        return True
    answer = io.ask("Replace it with a new authorization? [y/N]", False).strip().lower()
    if answer in ("y", "yes"):
        return True
    io.reporter.info("Kept the tokens that are there; nothing was changed.")
    return False


def clean(value: str | None) -> str | None:
    """Drop the spaces, line breaks and zero-width characters that copy-paste brings along."""
    if value is None:
        return None
    return SPACES.sub("", value) or None


def credentials(
    service: Service,
    client_id: str | None,
    client_secret: str | None,
    config: KometaConfig | None,
    place: Place,
    env: Mapping[str, str],
    say: Reporter,
    ask: Ask | None,
) -> Credentials | None:
    """The app's ID and secret: the option or its variable, else the config, else a question; None for a
    service without an app."""
    app = service.app
    if app is None:
        return None
    title, name = service.title, place.name
    cid = clean(client_id) or (clean(config.setting(place, "client_id", env)) if config else None)
    if not cid and ask:
        cid = clean(ask(f"{title} client ID", False))
    if not cid:
        raise UsageError(
            f"No {title} client ID.",
            f"Pass --client-id, set {app.env[0]}, or fill in {name}.client_id in "
            f"{config.shown if config else 'the config'}.",
        )
    if not _hex_of_length(cid, app.id_length):
        say.warn(
            f"the client ID {_what_is_wrong(cid)}; {title}'s are {app.id_length} hexadecimal characters. "
            f"Copy the ID again from {app.apps}.{app.wrong_id}"
        )
    secret = clean(client_secret) or (clean(config.setting(place, "client_secret", env)) if config else None)
    if not secret and ask:
        secret = clean(ask(f"{title} client secret (empty if the app has none)", True))
    if not secret:
        say.warn(app.lone_id)
    return Credentials(cid, secret)


def _hex_of_length(value: str, length: int) -> bool:
    return len(value) == length and all(ch in "0123456789abcdef" for ch in value.lower())


def _what_is_wrong(cid: str) -> str:
    bad = next(((i, ch) for i, ch in enumerate(cid) if ch.lower() not in "0123456789abcdef"), None)
    if bad is not None:
        index, ch = bad
        return f"has {ch!r} (U+{ord(ch):04X}) at position {index + 1}, which is not a hexadecimal digit"
    return f"has {len(cid)} characters"
