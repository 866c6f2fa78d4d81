"""Kometa's config.yml: read it, check it before the browser opens, and save new tokens into it."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode

from malcapture.atomic import Rename, replace_file
from malcapture.errors import ConfigError, TokensNotSaved, UsageError
from malcapture.placeholders import env_name, is_placeholder, kometa_secrets, resolve
from malcapture.readback import has_anchors, mal_window
from malcapture.splice import Edit, Splicer, Updates, apply, block_lines
from malcapture.tokens import TokenSet

BOM = b"\xef\xbb\xbf"
WRITE_ADVICE = (
    "Make the file and its folder writable for this user (`ls -l` shows owner and mode; in Docker, "
    "mount the config folder without :ro), or use --print to get the mal: block without touching it."
)


def default_path() -> Path:
    nested = Path("config/config.yml")
    return nested if nested.exists() else Path("config.yml")


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str | None = field(repr=False)


@dataclass(frozen=True)
class KometaConfig:
    path: Path
    target: Path
    raw: bytes = field(repr=False)
    text: str = field(repr=False)
    newline: str
    documents: int
    root: MappingNode = field(repr=False)
    data: dict[str, Any] = field(repr=False)

    @property
    def mal(self) -> dict[str, Any]:
        mal = self.data.get("mal")
        return mal if isinstance(mal, dict) else {}

    def setting(self, key: str, env: Mapping[str, str]) -> str | None:
        """A `mal:` value as Kometa would see it: placeholders resolved, blanks as None."""
        value = self.mal.get(key)
        if key in ("access_token", "token_type", "expires_in", "refresh_token"):
            auth = self.mal.get("authorization")
            value = auth.get(key) if isinstance(auth, dict) else None
        if value is None or str(value).strip() == "":
            return None
        text = str(value)
        if is_placeholder(text):
            text = resolve(text, kometa_secrets(env, self.target.parent))
            if is_placeholder(text):
                raise UsageError(
                    f"mal.{key} in {self.path} is {value}, but {env_name(str(value))} is not set.",
                    f"Set it in the environment or in {self.target.parent / '.env'} (as Kometa reads it).",
                )
        return text.strip()


def load(path: Path) -> KometaConfig:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        broken = " (a symlink to a file that does not exist)" if path.is_symlink() else ""
        raise ConfigError(
            f"The config file {path} does not exist{broken}.",
            "Point --config (or KOMETA_CONFIG) at Kometa's config.yml; without it malcapture looks for "
            "config/config.yml, then config.yml, in the current folder.",
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a config file.", "Pass the config.yml inside it.") from None
    except OSError as exc:
        raise ConfigError(f"The config file {path} cannot be read: {exc.strerror}.", WRITE_ADVICE) from None
    return parse(path, raw)


def parse(path: Path, raw: bytes) -> KometaConfig:
    body = raw[len(BOM) :] if raw.startswith(BOM) else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}).", "Save it as UTF-8.") from None
    yaml = YAML(typ="safe", pure=True)
    try:
        nodes = list(yaml.compose_all(text))
        data = yaml.constructor.construct_document(nodes[0]) if nodes else None
    except MarkedYAMLError as exc:
        raise _invalid(path, exc) from None
    except YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}.", "Kometa would refuse it too.") from None
    if not isinstance(data, dict) or not isinstance(nodes[0], MappingNode):
        raise ConfigError(f"{path} does not hold Kometa settings (it is not a YAML mapping).")
    mal = data.get("mal")
    if mal is not None and not isinstance(mal, dict):
        raise ConfigError(f"mal: in {path} is not a section of settings.", "Kometa would refuse it too.")
    crlf = re.search(r"\r?\n", text)
    return KometaConfig(
        path=path,
        target=Path(os.path.realpath(path)),
        raw=raw,
        text=text,
        newline=crlf.group(0) if crlf else "\n",
        documents=len(nodes),
        root=nodes[0],
        data=data,
    )


def _invalid(path: Path, exc: MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
    problem = exc.problem or ""
    duplicate = re.match(r'found duplicate key "(.*?)" with value', problem)
    if duplicate:
        first = exc.context_mark.line + 1 if exc.context_mark else "?"
        return ConfigError(
            f"{path} has the key {duplicate.group(1)!r} twice ({where}; first at line {first}).",
            "Kometa refuses such a file too: merge the two into one.",
        )
    advice = "YAML does not allow tabs for indentation: use spaces. " if "\\t" in problem or "\t" in problem else ""
    return ConfigError(f"{path} is not valid YAML at {where}: {problem}.", advice + "Kometa would refuse it too.")


def check_writable(config: KometaConfig) -> None:
    if not os.access(config.target, os.W_OK):
        raise ConfigError(f"The config file {config.path} is not writable.", WRITE_ADVICE)
    if not os.access(config.target.parent, os.W_OK):
        raise ConfigError(
            f"malcapture cannot create files in {config.target.parent} "
            "(needed for a safe write and the config.yml.bak backup).",
            WRITE_ADVICE,
        )


@dataclass(frozen=True)
class Saved:
    path: Path
    backup: Path | None
    placeholders: tuple[str, ...]  # authorization values left alone because they are <<placeholders>>


def save_tokens(config: KometaConfig, tokens: TokenSet, creds: Credentials, rename: Rename = os.replace) -> Saved:
    try:
        current = config.target.read_bytes()
    except OSError as exc:
        raise ConfigError(f"The config file {config.path} cannot be read again: {exc.strerror}.") from None
    if current != config.raw:  # edited since the preflight: splice into what is there now
        config = parse(config.path, current)
    check_writable(config)
    updates = plan_updates(config, tokens, creds)
    splicer = Splicer(config.text, config.newline, config.documents == 1)
    edits = splicer.mal(config.root, updates)
    text = apply(config.text, edits)
    raw = (BOM if config.raw.startswith(BOM) else b"") + text.encode("utf-8")
    _verify(config, text, edits, updates)
    try:
        backup = replace_file(config.target, raw, old=current, rename=rename)
    except OSError as exc:
        raise ConfigError(f"Could not write {config.path}: {exc.strerror or exc}.", WRITE_ADVICE) from None
    left = tuple(k for k in tokens.as_mapping() if k not in updates["authorization"])
    return Saved(config.path, backup, left)


def save_issued(config: KometaConfig, tokens: TokenSet, creds: Credentials) -> Saved:
    """save_tokens for tokens MyAnimeList has just issued: a failure carries them as a mal: block."""
    try:
        return save_tokens(config, tokens, creds)
    except ConfigError as exc:
        raise TokensNotSaved(
            f"MyAnimeList issued tokens, but they could not be saved: {exc.what}",
            "They are printed on standard output as a mal: block: paste it into Kometa's config.yml yourself. "
            + exc.advice,
            mal_block(creds, tokens),
        ) from None


def plan_updates(config: KometaConfig, tokens: TokenSet, creds: Credentials) -> dict[str, Any]:
    """What changes, in Kometa's order; `""` empties a value."""
    mal = config.mal
    found = mal.get("authorization")
    auth: dict[str, Any] = found if isinstance(found, dict) else {}
    authorization = {k: v for k, v in tokens.as_mapping().items() if not is_placeholder(auth.get(k))}
    if config.data.get("mal") is None:
        return {
            "client_id": creds.client_id,
            "client_secret": creds.client_secret or "",
            "localhost_url": "",
            "authorization": authorization,
        }
    updates: dict[str, Any] = {}
    for key, used in (("client_id", creds.client_id), ("client_secret", creds.client_secret)):
        current = mal.get(key)
        if used and not is_placeholder(current) and (current is None or str(current).strip() != used):
            updates[key] = used
    url = mal.get("localhost_url")
    if isinstance(url, str) and url.strip() and not is_placeholder(url):
        updates["localhost_url"] = ""  # its code is spent; Kometa would retry it and fail
    updates["authorization"] = authorization
    return updates


def _verify(config: KometaConfig, text: str, edits: list[Edit], updates: Updates) -> None:
    """Refuse to write a text that does not read back as the old data with `updates` applied."""
    expected = copy.deepcopy(config.data)
    found = expected.get("mal")
    mal: dict[str, Any] = found if isinstance(found, dict) else {}
    expected["mal"] = mal
    for key, value in updates.items():
        if isinstance(value, Mapping):
            mal[key] = {**(mal[key] if isinstance(mal.get(key), dict) else {}), **value}
        else:
            mal[key] = None if value == "" else value
    if config.documents == 1 and _mal_reads_back(config, text, edits, mal):
        return
    try:
        reread = parse(config.path, text.encode("utf-8")).data
    except ConfigError:
        reread = None
    if reread != expected:
        raise ConfigError(
            f"malcapture could not change {config.path} safely: the result did not read back as intended "
            "(please report this with the file's mal: section). Nothing was written."
        )


def _mal_reads_back(config: KometaConfig, text: str, edits: list[Edit], mal: dict[str, Any]) -> bool:
    """Re-read just the new `mal:` entry, where that is enough (see readback.py)."""
    window = mal_window(config.text, config.root, edits)
    if window is None:
        return False
    start, end = window
    try:
        part = parse(config.path, text[start : end + len(text) - len(config.text)].encode("utf-8"))
    except ConfigError:
        return False
    return part.data == {"mal": mal} and not has_anchors(part.root)


def mal_block(creds: Credentials, tokens: TokenSet) -> str:
    updates: dict[str, Any] = {
        "client_id": creds.client_id,
        "client_secret": creds.client_secret or "",
        "localhost_url": "",
        "authorization": tokens.as_mapping(),
    }
    return "\n".join(["mal:", *block_lines(updates, 2)]) + "\n"
