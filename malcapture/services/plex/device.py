"""Kometa's device ID for Plex: the first non-empty line of the file `UUID` in the folder Kometa reads its
config from (`dirname(abspath(config))`: a config reached by a symlink uses the link's folder, as Kometa does).

Read at most a line's worth, from a regular file only (a FIFO would block, a link to /dev/zero never end).
Missing or blank (half-written, or made by two runs at once), it is made as Kometa makes it — a random UUID4 —
once, atomically, under the config's lock, so that two runs agree on one device.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from malcapture.config.regular import read_regular

if TYPE_CHECKING:
    from malcapture.login.io import Io

MAX_READ = 4096  # bytes: a UUID is 36


def folder_of(config: Path) -> Path:
    return Path(os.path.abspath(config)).parent


def read(path: Path) -> str | None:
    """The device ID in `path`, or None when there is none (no file, or nothing but blank lines)."""
    raw = read_regular(path, MAX_READ, _ADVICE)
    if raw is None:
        return None
    text = raw[:MAX_READ].decode("utf-8", errors="replace")
    return next((line.strip() for line in text.splitlines() if line.strip()), None)


_ADVICE = (
    "Kometa keeps its Plex device ID in that file, one line: remove it, and Kometa (or malcapture) makes a new one."
)


def device_id(config: Path, io: Io, create: bool) -> str:
    """Kometa's device ID, made (and written) when there is none yet; `create` False: made, not written."""
    import uuid

    from malcapture.config import lock

    path = folder_of(config) / "UUID"
    found = read(path)
    if found:
        return found
    if not create:
        io.reporter.info(f"{path} does not exist; this sign-in uses a device ID of its own (--print writes no file).")
        return str(uuid.uuid4())
    with lock.exclusive(config, io.reporter.info):  # one run makes it; another, waiting here, then reads it
        found = read(path)
        if found:
            return found
        made = str(uuid.uuid4())
        try:
            _write(path, made + "\n")
        except OSError as exc:
            io.reporter.warn(
                f"could not write {path} ({exc.strerror}); Kometa will make its own and appear as a second device."
            )
            return made
    io.reporter.info(f"Made {path}: Kometa's device ID, which Kometa reads from there too.")
    return made


def _write(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=".UUID.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if hasattr(os, "fchmod"):
            os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
