"""Save a login's values into Kometa's config: planned, proven, then written — or kept elsewhere.

A plan splices the new values into the text and proves that the result reads back as the old data
with just those values changed. Values that the config holds as `<<placeholders>>` go into the
`.env` line that defines them; where none does, the plan is refused before anything is spent.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from malcapture.config import dotenv, lock
from malcapture.config.atomic import ChangedMeanwhile, Rename, Replaced, replace_file
from malcapture.config.dotenv import DotEnv
from malcapture.config.kometa import BOM, KometaConfig, advice_for, check_writable, parse, refuse_merged_section
from malcapture.config.place import SPENT, SPENT_URL, Fill, IfBlank, Place, Set, Want, Wants, is_blank, new_value
from malcapture.config.placeholders import PLACEHOLDER, dotenv_line, env_name, is_placeholder, kometa_secrets, resolve
from malcapture.config.readback import has_anchors, section_window
from malcapture.config.splice import Edit, Splicer, apply, block_lines
from malcapture.errors import ConfigError
from malcapture.tokens import Value

SAVE_TRIES = 3  # an edit made to the file during the save is spliced into, this many times at most


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


class Saved(NamedTuple):
    path: Path
    backup: Path | None
    changes: tuple[str, ...] = ()  # what changed, in words, with line numbers


def plan_save(config: KometaConfig, place: Place, wants: Wants, env: Mapping[str, str]) -> Plan:
    """Splice the new values in and prove the result; any refusal is a ConfigError naming the place."""
    refuse_merged_section(config, place.path[0])
    current = config.mapping(place.path)
    held: list[Held] = []
    found = dotenv.read(config.target.parent / ".env")  # once: for the plan and the write
    updates = _updates(config, current, wants, (), held, env, found)
    nested = _nest(place.path[1:], updates)
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
    changes = changed + _told_held(config, place, held)
    shadowed = tuple(h.variable for h in held if h.variable in env)
    return Plan(config, updates, raw, changes, tuple(edits), tuple(held), found, dotenv_raw, shadowed)


def _nest(path: tuple[str, ...], updates: dict[str, Any]) -> dict[str, Any]:
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


def _told_held(config: KometaConfig, place: Place, held: list[Held]) -> tuple[str, ...]:
    if not held:
        return ()
    names = ", ".join(f"{h.variable} ({place.dotted(*h.keys)})" for h in held)
    return (f"Wrote {names} in {config.target.parent / '.env'}: the config reads them from there (<<placeholders>>).",)


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


def describe_changes(
    config: KometaConfig, place: Place, text: str, edits: list[Edit], updates: dict[str, Any], new: bool
) -> tuple[str, ...]:
    """What a save changes, in words: the lines, the values added, a section appended."""
    if not edits:
        return ()
    lines = _changed_lines(text, edits)
    span = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in lines)
    name = place.name
    if new:
        told = [f"A new {name}: section was added at lines {span} of {config.shown} (the file had none)."]
        commented = re.search(rf"^[ \t]*#[ \t]*{re.escape(place.path[-1])}:", config.text, re.MULTILINE)
        if commented:
            at = config.text.count("\n", 0, commented.start()) + 1
            told.append(
                f"Line {at} holds a commented-out `# {place.path[-1]}:`; Kometa reads the new section, not that one."
            )
        return tuple(told)
    tokens = updates.get(place.tokens_under) if place.tokens_under else None
    if tokens:
        what = f"{place.dotted(place.tokens_under or '')} ({', '.join(tokens)})"
    else:
        what = ", ".join(place.dotted(k) for k, v in updates.items() if v != "" and not isinstance(v, Mapping))
    single = len(lines) == 1 and lines[0][0] == lines[0][1]
    told = [f"Changed line{'' if single else 's'} {span} of {config.shown}: {what}."]
    before = config.mapping(place.path) or {}
    for verb, keys in (
        ("Filled in", [k for k in ("client_id", "client_secret") if updates.get(k) and is_blank(before.get(k))]),
        ("Replaced", [k for k in ("client_id", "client_secret") if updates.get(k) and not is_blank(before.get(k))]),
    ):
        if keys:
            told.append(f"{verb} " + " and ".join(place.dotted(k) for k in keys) + " (the tokens belong to that app).")
    for key, value in updates.items():
        if value == "":
            told.append(
                f"Emptied {place.dotted(key)}: it held a single-use code that is spent now, and Kometa would retry "
                "it and fail."
            )
    return tuple(told)


def _changed_lines(text: str, edits: list[Edit]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    shift = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        start = edit.start + shift
        shift += len(edit.text) - (edit.end - edit.start)
        first = text.count("\n", 0, start) + 1
        last = first + edit.text.rstrip("\r\n").count("\n")
        if ranges and first <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(last, ranges[-1][1]))
        else:
            ranges.append((first, last))
    return ranges


def save(
    config: KometaConfig,
    place: Place,
    wants: Wants,
    env: Mapping[str, str],
    rename: Rename = os.replace,
    planned: Plan | None = None,
) -> Saved:
    """Write the values in; `planned`, made from the same values ahead of time, is used if the file is unchanged."""
    started = time.time()
    for _ in range(SAVE_TRIES):
        current = _read_again(config)
        if current != config.raw:  # edited since it was read: splice into what is there now
            config = parse(config.path, current)
        check_writable(config)
        fresh = planned is not None and planned.config.raw == current
        plan = planned if planned is not None and fresh else plan_save(config, place, wants, env)
        planned = None
        try:
            _write_held(plan, started)
        except ChangedMeanwhile:
            continue
        except OSError as exc:
            where = plan.dotenv.path if plan.dotenv else config.shown
            raise ConfigError(f"Could not write {where}: {exc.strerror or exc}.", advice_for(exc)) from None
        try:
            replaced = None
            if plan.raw != current:
                replaced = replace_file(config.target, plan.raw, old=current, rename=rename, started=started)
        except (ChangedMeanwhile, OSError) as exc:
            _put_back_held(plan, started)  # neither file half-changed: the .env's old values come back
            if isinstance(exc, ChangedMeanwhile):
                continue
            raise ConfigError(f"Could not write {config.shown}: {exc.strerror or exc}.", advice_for(exc)) from None
        told = _where_backup(replaced) if replaced else ()
        only_dotenv = plan.dotenv is not None and plan.dotenv_raw is not None and plan.raw == current
        path = plan.dotenv.path if only_dotenv and plan.dotenv else config.shown
        return Saved(path, replaced.backup if replaced else None, plan.changes + told)
    raise ConfigError(f"{config.shown} kept changing while malcapture tried to save into it.", "Run it again.")


def _write_held(plan: Plan, started: float) -> None:
    """The values the config holds as placeholders, into the `.env` lines Kometa reads them from (the .env
    the plan read: ChangedMeanwhile if it is not that any more)."""
    if plan.dotenv is None or plan.dotenv_raw is None:
        return
    target = Path(os.path.realpath(plan.dotenv.path))
    replace_file(target, plan.dotenv_raw, old=plan.dotenv.raw, started=started)


def _put_back_held(plan: Plan, started: float) -> None:
    """The .env as it was, after the config could not be written: a failure leaves neither file half-changed."""
    if plan.dotenv is None or plan.dotenv_raw is None:
        return
    target = Path(os.path.realpath(plan.dotenv.path))
    try:
        replace_file(target, plan.dotenv.raw, old=plan.dotenv_raw, started=started)
    except (OSError, ChangedMeanwhile) as exc:
        raise ConfigError(
            f"The new tokens were written into {plan.dotenv.path}, but {plan.config.shown} could not be written, "
            f"and the old .env could not be put back ({exc}): the two files now disagree.",
            f"The previous .env is kept as {target}.bak: put it back, or write the config's values yourself.",
        ) from None


def _read_again(config: KometaConfig) -> bytes:
    try:
        return config.target.read_bytes()
    except OSError as exc:
        raise ConfigError(f"The config file {config.shown} cannot be read again: {exc.strerror}.") from None


def _where_backup(replaced: Replaced) -> tuple[str, ...]:
    if replaced.backup is None:
        return (
            ("Its folder is read-only, so it was written in place and no backup was kept.",)
            if replaced.in_place
            else ()
        )
    told = f"The previous version is kept as {replaced.backup}."
    if replaced.backup.name.endswith(".malcapture.bak"):
        theirs = replaced.backup.with_name(replaced.backup.name.removesuffix(".malcapture.bak") + ".bak")
        told += f" ({theirs} was not written by malcapture, so it was left alone.)"
    if replaced.single_file_mount:
        told += (
            " The config is a file mounted on its own (a single-file bind mount), so that backup is not on "
            "the mounted disk: in a container it is gone when the container is removed — copy it out if you want it."
        )
    return (told,)


def save_locked(
    config: KometaConfig,
    place: Place,
    wants: Wants,
    env: Mapping[str, str],
    lock_says: Callable[[str], None] | None,
    planned: Plan | None = None,
) -> Saved:
    """save() under the config's lock; with `lock_says` the lock is taken here (a wait is told through it),
    without, the caller holds it."""
    with lock.exclusive(config.path, lock_says) if lock_says else contextlib.nullcontext():
        return save(config, place, wants, env, planned=planned)


def config_block(place: Place, wants: Wants) -> str:
    """The section as a block to paste into config.yml (--print, and values that could not be saved)."""

    def values(wanted: Wants) -> dict[str, Any]:
        return {k: values(w) if isinstance(w, Mapping) else new_value(w) for k, w in wanted.items()}

    nested: dict[str, Any] = _nest(place.path[1:], values(wants))
    return "\n".join([f"{place.path[0]}:", *block_lines(nested, 2)]) + "\n"


def whole_section(config: KometaConfig, place: Place, wants: Wants, env: Mapping[str, str]) -> str | None:
    """--print's section as it would be after the save: every key the config has in it, the new values in
    place, its comments kept. None where that cannot be shown so (a library's section, values kept in .env)."""
    if len(place.path) != 1:
        return None
    try:
        plan = plan_save(config, place, wants, env)
    except ConfigError:
        return None
    if plan.held:
        return None
    lines = plan.raw.removeprefix(BOM).decode("utf-8").splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(rf"{re.escape(place.path[0])}[ \t]*:", line)), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t"):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return "".join(lines[start:end]).replace("\r\n", "\n").rstrip("\n") + "\n"


def keep_tokens(folder: Path, block: str) -> Path | None:
    """Issued values in a file of their own (0600), beside the config or in the home folder: cron and
    systemd discard standard output. Never raises: a full disk leaves no file, and says None."""
    name = f"malcapture-tokens-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.yml"
    for place in (folder, Path.home()):
        path = place / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError:
            continue
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write(block)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)
            continue
        return path
    return None
