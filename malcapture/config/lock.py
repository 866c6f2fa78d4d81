"""One malcapture at a time saves a given config: an OS-level lock, so a crash or `kill -9` leaves none behind.

The lock is on `.NAME.malcapture.lock` beside the real file (through symlinks). Where that folder is
read-only, the config itself is locked: it is then written in place, so its inode stays the one locked.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from malcapture.errors import ConfigError

WAIT = 30.0  # seconds: a refresh and its save take about one
POLL = 0.1

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def exclusive(config: Path, say: Callable[[str], None], wait: float = WAIT) -> Iterator[None]:
    """Hold the config's lock for the block; wait up to `wait` seconds for another run to finish."""
    if fcntl is None:
        yield
        return
    target = Path(os.path.realpath(config))
    fd, own_file = _open(target)
    try:
        _acquire(fd, target, say, wait)
        if own_file:  # say who holds it, for a run that waits
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.malcapture.lock")


def _open(target: Path) -> tuple[int, bool]:
    try:
        return os.open(lock_path(target), os.O_RDWR | os.O_CREAT, 0o600), True
    except OSError:
        pass
    try:
        return os.open(target, os.O_RDONLY), False  # a read-only folder: lock the file itself
    except OSError as exc:
        raise ConfigError(f"The config file {target} cannot be opened: {exc.strerror}.") from None


def _acquire(fd: int, target: Path, say: Callable[[str], None], wait: float) -> None:
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if not told:
            say(f"Waiting: another malcapture ({_holder(fd)}) is saving {target}.")
            told = True
        if time.monotonic() > deadline:
            raise ConfigError(
                f"Another malcapture ({_holder(fd)}) kept {target} locked for {wait:g} seconds; "
                "the config was not changed.",
                "Let it finish (or stop it), then run malcapture again.",
            )
        time.sleep(POLL)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip())
        return f"pid {pid}"
    return "another process"
