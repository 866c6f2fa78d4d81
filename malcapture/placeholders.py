"""Kometa's `<<placeholder>>` values, resolved the way Kometa resolves them.

Kometa turns every non-blank `KOMETA_NAME_PART` (or legacy `PMM_NAME_PART`) variable into a
secret `name-part`, loads a `.env` beside the config without overriding the environment, and
replaces `<<name-part>>` or `<<NAME_PART>>` inside any value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

PLACEHOLDER = re.compile(r"<<([^<>\s]+)>>")
PREFIXES = ("PMM_", "KOMETA_")  # later wins: KOMETA_ over the legacy PMM_


def is_placeholder(value: object) -> bool:
    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


def read_dotenv(path: Path) -> dict[str, str]:
    """The small subset of .env syntax that docker compose and python-dotenv agree on."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        if not sep or line.startswith("#") or not name.strip():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0]
        values[name.strip()] = value
    return values


def kometa_secrets(env: Mapping[str, str], config_dir: Path) -> dict[str, str]:
    merged = {**read_dotenv(config_dir / ".env"), **env}
    secrets: dict[str, str] = {}
    for prefix in PREFIXES:
        for name, value in merged.items():
            if name.upper().startswith(prefix) and value.strip():
                secrets[name[len(prefix) :].lower().replace("_", "-")] = value
    return secrets


def resolve(value: str, secrets: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        for name, secret in secrets.items():
            if match.group(1) in (name, name.upper().replace("-", "_")):
                return secret
        return match.group(0)

    return PLACEHOLDER.sub(replace, value)


def env_name(value: str) -> str:
    """The variable a placeholder wants, for messages: `<<mal-client-id>>` → KOMETA_MAL_CLIENT_ID."""
    match = PLACEHOLDER.search(value)
    name = match.group(1) if match else value
    return "KOMETA_" + name.upper().replace("-", "_")
