"""A save planned and proven before anything is written (save.py writes it).

A plan splices the new values into the text and proves that the result reads back as the old data
with just those values changed. Values that the config holds as `<<placeholders>>` go into the
`.env` line that defines them; where none does, the plan is refused before anything is spent.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from malcapture.config import dotenv
from malcapture.config.changes import describe_changes, told_held
from malcapture.config.dotenv import DotEnv
from malcapture.config.kometa import BOM, KometaConfig, parse, refuse_merged_section
from malcapture.config.place import SPENT, SPENT_URL, Fill, IfBlank, Place, Set, Want, Wants, is_blank, new_value
from malcapture.config.placeholders import PLACEHOLDER, dotenv_line, env_name, is_placeholder, kometa_secrets, resolve
from malcapture.config.readback import has_anchors, section_window
from malcapture.config.splice import Edit, Splicer, apply
from malcapture.errors import ConfigError
from malcapture.tokens import Value


@dataclass(frozen=True)
class Held:
    """A value the config holds as a placeholder: it goes to the `.env` variable Kometa reads it from."""

    keys: tuple[str, ...]  # inside the section
    placeholder: str
    value: Value
    variable: str


@dataclass(frozen=True)
class Plan:
    """A save worked out and proven: the new bytes read back as the old data with `updates` applied."""

    config: KometaConfig
    updates: dict[str, Any]
    raw: bytes = field(repr=False)
    changes: tuple[str, ...]
    edits: tuple[Edit, ...] = ()  # where in the old text
    held: tuple[Held, ...] = ()  # values that go into .env
    dotenv: DotEnv | None = None  # the .env they go into, as read for this plan
    dotenv_raw: bytes | None = field(default=None, repr=False)  # its new bytes
    shadowed: tuple[str, ...] = ()  # variables of .env that this process's environment also sets

    @property
    def config_changes(self) -> bool:
        return self.raw != self.config.raw


def plan_save(config: KometaConfig, place: Place, wants: Wants, env: Mapping[str, str]) -> Plan:
    """Splice the new values in and prove the result; any refusal is a ConfigError naming the place."""
    refuse_merged_section(config, place.path[0])
    current = config.mapping(place.path)
    held: list[Held] = []
    found = dotenv.read(config.target.parent / ".env")  # once: for the plan and the write
    updates = _updates(config, current, wants, (), held, env, found)
    nested = nest(place.path[1:], updates)
    edits = Splicer(config.text, config.newline, config.documents == 1).section(config.root, place.path[0], nested)
    text = apply(config.text, edits)
    verify(config, text, edits, {place.path[0]: nested})
    raw = (BOM if config.raw.startswith(BOM) else b"") + text.encode("utf-8")
    dotenv_raw = None
    if held and found is not None:
        dotenv_raw = found.raw
        for value in held:
            dotenv_raw = DotEnv(found.path, dotenv_raw, dotenv_raw.decode("utf-8-sig")).with_value(
                value.variable, str(value.value)
            )
    changed = describe_changes(config, place, text, edits, updates, current is None) if raw != config.raw else ()
    changes = changed + told_held(config, place, [(h.variable, h.keys) for h in held])
    shadowed = tuple(h.variable for h in held if h.variable in env)
    return Plan(config, updates, raw, changes, tuple(edits), tuple(held), found, dotenv_raw, shadowed)


def nest(path: tuple[str, ...], updates: dict[str, Any]) -> dict[str, Any]:
    for key in reversed(path):
        updates = {key: updates}
    return updates


def _updates(
    config: KometaConfig,
    current: Mapping[str, Any] | None,
    wants: Wants,
    keys: tuple[str, ...],
    held: list[Held],
    env: Mapping[str, str],
    found: DotEnv | None,
) -> dict[str, Any]:
    """What changes, in the wants' order (Kometa's); `""` empties a value. A section that is not there
    (or empty) is written whole."""
    updates: dict[str, Any] = {}
    for key, want in wants.items():
        old = current.get(key) if current is not None else None
        if isinstance(want, Mapping):
            inner = old if isinstance(old, dict) else None
            updates[key] = _updates(config, inner, want, (*keys, key), held, env, found)
        elif current is None:
            updates[key] = new_value(want)
        elif (new := _wanted(config, old, want, env)) is not None:
            if is_placeholder(old):
                held.append(_held(config, (*keys, key), str(old), new, found))
            else:
                updates[key] = new
    return updates


def _wanted(config: KometaConfig, old: object, want: Want, env: Mapping[str, str]) -> Value | None:
    """The new value for a key holding `old`, or None to leave it."""
    if isinstance(want, Set):  # a value that is already there is no change (and no line said to change)
        return None if old is not None and str(old) == str(want.value) and type(old) is type(want.value) else want.value
    if want is SPENT:
        return "" if not is_blank(old) and not is_placeholder(old) else None
    if want is SPENT_URL:
        return "" if not is_placeholder(old) and re.search(r"[?&]code=", str(old or "")) else None
    shown = resolve(str(old), kometa_secrets(env, config.target.parent)) if is_placeholder(old) else old
    if isinstance(want, Fill) and want.value != "" and (is_blank(shown) or str(shown).strip() != str(want.value)):
        return want.value
    if isinstance(want, IfBlank) and want.value is not None and is_blank(shown):
        return want.value
    return None


def _held(config: KometaConfig, keys: tuple[str, ...], placeholder: str, value: Value, found: DotEnv | None) -> Held:
    dotenv = config.target.parent / ".env"
    text = found.text if found is not None else ""
    whole = PLACEHOLDER.fullmatch(placeholder.strip()) is not None  # not `Bearer <<X>>`: that is not all of it
    variable = dotenv_line(text, placeholder) if whole else None
    if variable is None:
        raise ConfigError(
            f"{'.'.join(keys)} in {config.shown} is {placeholder}: Kometa reads that value from "
            f"{env_name(placeholder)}, which {dotenv} does not define, so malcapture would have nowhere to "
            "save the new one. Nothing was spent; the config was not changed.",
            f"Define {env_name(placeholder)} in {dotenv} (malcapture then writes the new value there), or "
            "write the value itself into the config instead of the placeholder, or use --print and place the "
            "values yourself.",
        )
    return Held(keys, placeholder, value, variable)


def verify(config: KometaConfig, text: str, edits: list[Edit], updates: Mapping[str, Any]) -> None:
    """Refuse to write a text that does not read back as the old data with `updates` applied."""
    expected = copy.deepcopy(config.data)
    _merge(expected, updates)
    (name,) = updates
    if config.documents == 1 and _section_reads_back(config, text, edits, name, expected[name]):
        return
    try:
        reread = parse(config.path, text.encode("utf-8")).data
    except ConfigError:
        reread = None
    if reread != expected:
        raise ConfigError(
            f"malcapture could not change {config.shown} safely: the result did not read back as intended "
            f"(please report this with the file's {name}: section). Nothing was written."
        )


def _merge(data: dict[str, Any], updates: Mapping[str, Any]) -> None:
    for key, value in updates.items():
        if isinstance(value, Mapping):
            if not isinstance(data.get(key), dict):
                data[key] = {}
            _merge(data[key], value)
        else:
            data[key] = None if value == "" else value


def _section_reads_back(config: KometaConfig, text: str, edits: list[Edit], name: str, values: Any) -> bool:
    """Re-read just the new entry of the section, where that is enough (see readback.py)."""
    window = section_window(config.text, config.root, edits, name)
    if window is None:
        return False
    start, end = window
    try:
        part = parse(config.path, text[start : end + len(text) - len(config.text)].encode("utf-8"))
    except ConfigError:
        return False
    return part.data == {name: values} and not has_anchors(part.root)
