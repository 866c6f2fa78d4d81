"""What login, refresh and check read alike: the app's ID and secret (option, variable, config or a
question), when the stored access token runs out, and whether a save of tokens of the real shape works."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from malcapture.config.kometa import KometaConfig
from malcapture.config.place import Place, Wants
from malcapture.errors import UsageError
from malcapture.login.contract import Credentials, Service
from malcapture.login.io import Ask
from malcapture.login.redirect import INVISIBLE
from malcapture.ui import Reporter

SPACES = re.compile(rf"[\s{INVISIBLE}]+")


def prove(
    config: KometaConfig,
    service: Service,
    place: Place,
    creds: Credentials | None,
    env: Mapping[str, str],
    say: Reporter,
    extra: Wants | None = None,
) -> None:
    """The save of tokens of the real shape works: refused now, with the reason, before anything is spent.
    New values for `.env` that this process's environment also sets are said now too: Kometa's container
    (docker compose's `env_file:`) keeps the old ones until it is made anew."""
    from malcapture.config.plan import plan_save

    plan = plan_save(config, place, service.wants(service.code.stand_in(), creds, extra), env)
    if plan.shadowed:
        names = ", ".join(plan.shadowed)
        say.warn(
            f"{names} is set in this environment as well as in {config.target.parent / '.env'}: malcapture uses "
            "the environment's value and writes the new one into .env, but a container that got its environment "
            "from that .env (docker compose's env_file:) keeps the old value until it is made anew. After this, "
            "run `docker compose up -d --force-recreate` (or restart Kometa outside Docker) — or keep these "
            "tokens in config.yml instead of .env."
        )


def refused_online(
    service: Service,
    config: KometaConfig,
    place: Place,
    creds: Credentials | None,
    env: Mapping[str, str],
    given: Mapping[str, str] | None = None,
) -> str | None:
    """Why the service refuses the stored token (or Kometa would stop on it), asked now; None when it takes it
    or cannot be asked. Runs on a thread of its own, so that it serves callers with and without an event loop
    (a caller's loop waits meanwhile: a stand-in served on that same loop could not answer, so in-process
    tests of a login pass yes=True or no terminal, as the demo does)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from malcapture.errors import NetworkError, ServiceError
    from malcapture.login.contract import Setup

    values = {key: config.setting(place, key, env, token=True) for key in service.token_keys}
    settings = {key: (given or {}).get(key) or config.setting(place, key, env) for key in service.needs}
    folder = Path(os.path.abspath(config.path)).parent  # the folder Kometa reads (a linked config's link's)

    async def ask() -> str | None:
        async with service.code.client(Setup(env, lambda _: None, creds, settings, folder)) as client:
            return (await client.verify(values)).blocks

    try:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, ask()).result()
    except NetworkError:
        return None
    except ServiceError as exc:
        return exc.what if exc.refused else None


def stored_expiry(config: KometaConfig, service: Service, place: Place, env: Mapping[str, str]) -> datetime | None:
    """When the stored access token runs out, read offline (None: not known, or it does not expire)."""
    if service.code.expiry is None:
        return None
    values = {key: config.setting(place, key, env, token=True) for key in service.token_keys}
    return service.code.expiry(values) if values.get(service.access_key) else None


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
