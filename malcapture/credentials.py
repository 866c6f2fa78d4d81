"""The MAL app's client ID and secret: from the option or env, else the config, else a prompt."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from malcapture.errors import UsageError
from malcapture.kometa_config import Credentials, KometaConfig
from malcapture.redirect import INVISIBLE
from malcapture.sections import MAL, Section
from malcapture.ui import Reporter

Ask = Callable[[str, bool], str]  # (question, hide the answer) -> answer
SPACES = re.compile(rf"[\s{INVISIBLE}]+")
MAL_POPUP = " A wrong client ID (or redirect URL) shows up as a password popup on MyAnimeList that keeps coming back."
NO_SECRET = {
    "mal": "no client secret. Only apps of type *web* have one, and Kometa needs it: "
    "MyAnimeList will refuse the exchange if the app is of type web.",
    "trakt": "no client secret: Trakt needs the app's secret for every token request (developer.trakt.tv).",
}


def clean(value: str | None) -> str | None:
    """Drop the spaces, line breaks and zero-width characters that copy-paste brings along."""
    if value is None:
        return None
    return SPACES.sub("", value) or None


def resolve_credentials(
    client_id: str | None,
    client_secret: str | None,
    config: KometaConfig | None,
    env: dict[str, str],
    reporter: Reporter,
    ask: Ask | None,
    config_path: Path,
    section: Section = MAL,
) -> Credentials:
    title, name = section.title, section.name
    cid = clean(client_id) or (clean(config.setting("client_id", env, section)) if config else None)
    if not cid and ask:
        cid = clean(ask(f"{title} client ID", False))
    if not cid:
        raise UsageError(
            f"No {title} client ID.",
            f"Pass --client-id, set {section.env[0]}, or fill in {name}.client_id in {config_path}.",
        )
    if not section.looks_like_client_id(cid):
        reporter.warn(
            f"the client ID {_what_is_wrong(cid)}; {title}'s are {section.id_length} hexadecimal characters. "
            f"Copy the ID again from {section.apps}." + (MAL_POPUP if section is MAL else "")
        )
    secret = clean(client_secret) or (clean(config.setting("client_secret", env, section)) if config else None)
    if not secret and ask:
        secret = clean(ask(f"{title} client secret (empty if the app has none)", True))
    if not secret:
        reporter.warn(NO_SECRET[name])
    return Credentials(cid, secret)


def _what_is_wrong(cid: str) -> str:
    bad = next(((i, ch) for i, ch in enumerate(cid) if ch.lower() not in "0123456789abcdef"), None)
    if bad is not None:
        index, ch = bad
        return f"has {ch!r} (U+{ord(ch):04X}) at position {index + 1}, which is not a hexadecimal digit"
    return f"has {len(cid)} characters"
