"""Kometa's `<<placeholder>>` values, resolved the way Kometa resolves them.

Kometa turns every non-blank `KOMETA_NAME_PART` (or legacy `PMM_NAME_PART`) variable into a
secret `name-part`, loads a `.env` beside the config without overriding the environment, and
replaces `<<name-part>>` or `<<NAME_PART>>` inside any value. A new value for a placeholder goes
into the `.env` line that defines it (dotenv_line; config/dotenv.py writes it), every other byte kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

PLACEHOLDER = re.compile(r"<<([^<>\s]+)>>")
PREFIXES = ("PMM_", "KOMETA_")  # later wins: KOMETA_ over the legacy PMM_


def is_placeholder(value: object) -> bool:
    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


DOTENV_LINE = re.compile(
    r"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(?P<value>.*?)[ \t]*$"
)


def read_dotenv(path: Path) -> dict[str, str]:
    """Its variables as python-dotenv reads them (config/dotenv.py); none when there is no .env."""
    from malcapture.config import dotenv

    found = dotenv.read(path)
    return found.values() if found is not None else {}


def _lines(text: str) -> list[re.Match[str] | None]:
    return [DOTENV_LINE.match(line) for line in text.splitlines()]


def dotenv_line(text: str, placeholder: str) -> str | None:
    """The variable of `.env` (its text) that Kometa reads for this placeholder, if `.env` defines it:
    a KOMETA_ one over a legacy PMM_ one, the last of each."""
    wanted = PLACEHOLDER.search(placeholder)
    if wanted is None:
        return None
    found = None
    for prefix in PREFIXES:
        for line in _lines(text):
            name = line.group("name") if line else ""
            if name.upper().startswith(prefix) and _secret_name(name, prefix) in _names(wanted.group(1)):
                found = name
    return found


def _secret_name(variable: str, prefix: str) -> str:
    return variable[len(prefix) :].lower().replace("_", "-")


def _names(placeholder: str) -> tuple[str, str]:
    """The secret names a placeholder's word can mean: `tmdb-apikey` for `tmdb-apikey` or `TMDB_APIKEY`."""
    return placeholder, placeholder.lower().replace("_", "-")


def kometa_secrets(env: Mapping[str, str], config_dir: Path) -> dict[str, str]:
    merged = {**read_dotenv(config_dir / ".env"), **env}
    secrets: dict[str, str] = {}
    for prefix in PREFIXES:
        for name, value in merged.items():
            if name.upper().startswith(prefix) and value.strip():
                secrets[_secret_name(name, prefix)] = value
    return secrets


def resolve(value: str, secrets: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        for name, secret in secrets.items():
            if match.group(1) in (name, name.upper().replace("-", "_")):
                return secret
        return match.group(0)

    return PLACEHOLDER.sub(replace, value)


def env_name(value: str) -> str:
    """The variable a placeholder wants, for messages: `<<tmdb-apikey>>` → KOMETA_TMDB_APIKEY."""
    match = PLACEHOLDER.search(value)
    name = match.group(1) if match else value
    return "KOMETA_" + name.upper().replace("-", "_")
