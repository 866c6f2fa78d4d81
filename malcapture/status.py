"""`malcapture status`: every service configured in the file, one line each, with the command that fixes it.

Offline first (is there a token, when does it run out), then online (does the service accept it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from malcapture import kometa_config, providers
from malcapture.errors import ConfigError, MalError, NetworkError, UsageError
from malcapture.lifecycle import command, describe_expiry, login_command, utc_now
from malcapture.sections import SECTIONS, Section


@dataclass(frozen=True)
class Line:
    section: Section
    works: bool
    text: str


async def status(path: Path, env: Mapping[str, str]) -> list[Line]:
    config = kometa_config.load(path)
    configured = [section for section in SECTIONS if config.section(section)]
    if not configured:
        raise ConfigError(
            f"{path} has neither a mal: nor a trakt: section with settings.",
            "Run `malcapture` (MyAnimeList) or `malcapture trakt` (Trakt) to authorize one.",
        )
    return [await _one(config, section, env) for section in configured]


async def _one(config: kometa_config.KometaConfig, section: Section, env: Mapping[str, str]) -> Line:
    name, now = section.name, utc_now()
    try:
        access = config.setting("access_token", env, section)
        expires = kometa_config.stored_expiry(config, env, section)
        client_id = config.setting("client_id", env, section) or ""
    except UsageError as exc:
        return Line(section, False, f"{name}: {exc.what} Fix: {exc.advice}")
    if not access:
        return Line(section, False, f"{name}: not authorized. Fix: `{login_command(section)}`")
    if section.opaque_tokens and not client_id:  # Trakt wants the app's ID with every request
        return Line(section, False, f"{name}: not checked: no {name}.client_id. Fix: fill it in from {section.apps}")
    when = describe_expiry(expires, now)
    if expires is not None and expires <= now:
        return Line(
            section, False, f"{name}: does not work: the access token {when[3:]}. Fix: `{command(section, 'refresh')}`"
        )
    try:
        async with providers.for_section(section, env).client(client_id, lambda _: None) as client:
            account = await client.whoami(access)
    except NetworkError as exc:
        return Line(section, False, f"{name}: not checked: {exc.what} Fix: check the network, then `malcapture status`")
    except MalError as exc:
        fix = exc.advice if "403" in exc.what else f"`{command(section, 'refresh')}` (or `{login_command(section)}`)"
        return Line(section, False, f"{name}: does not work: {exc.what} Fix: {fix}")
    return Line(section, True, f"{name}: works: {account}; the access token {when[3:]}")
