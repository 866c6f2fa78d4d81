"""A section as a block of YAML, for the user to paste: --print's (the whole section as it would be saved)
and the one printed when issued tokens could not be saved — then also kept in a file of their own."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from malcapture.config.kometa import BOM, KometaConfig
from malcapture.config.place import Place, Wants, new_value
from malcapture.config.plan import nest, plan_save
from malcapture.config.splice import block_lines
from malcapture.errors import ConfigError


def config_block(place: Place, wants: Wants) -> str:
    """The section as a block to paste into config.yml (--print, and values that could not be saved)."""

    def values(wanted: Wants) -> dict[str, Any]:
        return {k: values(w) if isinstance(w, Mapping) else new_value(w) for k, w in wanted.items()}

    nested: dict[str, Any] = nest(place.path[1:], values(wants))
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
