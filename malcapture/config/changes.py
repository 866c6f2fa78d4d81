"""What a save changed, in words: the lines of the config, the values filled in or replaced, the section
added, the values written into .env instead, and where the previous version is kept."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from malcapture.config.atomic import Replaced
from malcapture.config.kometa import KometaConfig
from malcapture.config.place import Place, is_blank
from malcapture.config.splice import Edit


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


def told_held(config: KometaConfig, place: Place, held: list[tuple[str, tuple[str, ...]]]) -> tuple[str, ...]:
    """`held`: each variable of .env written, with the keys of the section that read it."""
    if not held:
        return ()
    names = ", ".join(f"{variable} ({place.dotted(*keys)})" for variable, keys in held)
    return (f"Wrote {names} in {config.target.parent / '.env'}: the config reads them from there (<<placeholders>>).",)


def where_backup(replaced: Replaced) -> tuple[str, ...]:
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
