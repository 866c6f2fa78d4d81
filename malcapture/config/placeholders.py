"""Kometa's `<<placeholder>>` values, resolved the way Kometa resolves them.

Kometa turns every non-blank `KOMETA_NAME_PART` (or legacy `PMM_NAME_PART`) variable into a
secret `name-part`, loads a `.env` beside the config without overriding the environment, and
replaces `<<name-part>>` or `<<NAME_PART>>` inside any value. A new value for a placeholder goes
into the `.env` line that defines it (dotenv_line, with_value), every other byte kept.
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
    """The small subset of .env syntax that docker compose and python-dotenv agree on."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return {}
    return {found.group("name"): _unquoted(found.group("value")) for found in _lines(text) if found}


def _lines(text: str) -> list[re.Match[str] | None]:
    return [DOTENV_LINE.match(line) for line in text.splitlines()]


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return re.split(r"\s+#", value, maxsplit=1)[0]


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


def with_value(text: str, name: str, value: str) -> str:
    """`.env`'s text with the (last) line defining `name` set to `value`; every other byte kept."""
    lines = text.splitlines(keepends=True)
    for index in reversed(range(len(lines))):
        found = DOTENV_LINE.match(lines[index].rstrip("\r\n"))
        if found and found.group("name") == name:
            old = found.group("value")
            quote = old[0] if old[:1] in ("'", '"') and old[-1:] == old[:1] and len(old) >= 2 else ""
            if not quote and not re.fullmatch(r"[A-Za-z0-9._~+/=:-]*", value):
                quote = '"'
            ending = lines[index][len(lines[index].rstrip("\r\n")) :]
            lines[index] = f"{found.group('lead')}{name}={quote}{value}{quote}{ending}"
            return "".join(lines)
    raise KeyError(name)


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
