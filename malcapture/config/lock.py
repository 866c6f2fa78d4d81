"""One malcapture at a time saves a given config: OS locks that a crash or `kill -9` cannot leave behind.

The locks are on the config's folder and on the config file itself, opened read-only and without
following a link: no lock file is created, truncated or written, so none can be planted to make a
root run write elsewhere. The folder's inode stays the same when a save renames a new file over
the config; the file's stays the same when it is written in place (a second hard link, a file
bind-mounted into a container, a read-only folder) — so two runs exclude each other whatever name
or mount they reach the file by. Taken in that order, never the other, so no two runs deadlock.
"""

from __future__ import annotations

import contextlib
import os
import stat
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
def exclusive(
    config: Path, say: Callable[[str], None], wait: float = WAIT, clock: Callable[[], float] = time.monotonic
) -> Iterator[None]:
    """Hold the config's locks for the block; wait up to `wait` seconds for another run to finish."""
    if fcntl is None:
        yield
        return
    target = Path(os.path.realpath(config))
    deadline = clock() + wait
    held: list[int] = []
    try:
        for path in (target.parent, target):
            fd = _open(path)
            if fd is None:
                continue  # no config there: load() says so
            held.append(fd)
            _acquire(fd, target, say, deadline, wait, clock)
        yield
    finally:
        for fd in held:
            os.close(fd)  # closing releases the lock


def _open(path: Path) -> int | None:
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be opened to lock it: {exc.strerror}.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode) and not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(
            f"{path} is not a regular file (it is a pipe, socket or device), so malcapture will not read it.",
            "Point --config (or KOMETA_CONFIG) at Kometa's config.yml itself.",
        )
    return fd


def _acquire(
    fd: int, target: Path, say: Callable[[str], None], deadline: float, wait: float, clock: Callable[[], float]
) -> None:
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if not told:
            say(f"Waiting: another malcapture ({holder(fd)}) is saving {target}.")
            told = True
        if clock() > deadline:
            raise ConfigError(
                f"Another malcapture ({holder(fd)}) kept {target} locked for {wait:g} seconds; "
                "the config was not changed.",
                "Let it finish (or stop it), then run malcapture again.",
            )
        time.sleep(POLL)


def holder(fd: int, locks: Path = Path("/proc/locks")) -> str:
    """Who holds a lock on `fd`'s file, as /proc/locks tells it (Linux): `pid N`, else `another process`."""
    info = os.fstat(fd)
    where = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    with contextlib.suppress(OSError, ValueError):
        for line in locks.read_text().splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == where and fields[4] != "0":
                return f"pid {int(fields[4])}"
    return "another process"
