"""One malcapture at a time saves a given config: OS locks that a crash or `kill -9` cannot leave behind.

The locks are on the config's folder and on the config file itself, opened read-only and without
following a link: no lock file is created, truncated or written, so none can be planted to make a
root run write elsewhere. The folder's inode stays the same when a save renames a new file over
the config; the file's stays the same when it is written in place (a second hard link, a file
bind-mounted into a container, a read-only folder) — so two runs exclude each other whatever name
or mount they reach the file by. Taken in that order, never the other, so no two runs deadlock.

On NFS (a NAS share) flock() is emulated with byte-range locks, and an exclusive one needs a descriptor
open for writing: the file is then opened for writing (nothing is written, truncated or created), and
the folder, which cannot be, is left unlocked. A lock that cannot be had at all is a ConfigError, found
before anything is spent (check()), never an OSError after a code or refresh token was spent.
"""

from __future__ import annotations

import contextlib
import errno
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
try:
    import msvcrt
except ImportError:  # everywhere but Windows
    msvcrt = None  # type: ignore[assignment]

Locking = Callable[[int, int, int], None]  # msvcrt.locking(fd, mode, nbytes), handed in where a test plays it


Flock = Callable[[int, int], None]  # fcntl.flock, handed in where a test plays another file system's locks
OWN_FLAGS = os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _flock(fd: int, operation: int) -> None:
    fcntl.flock(fd, operation)


@contextlib.contextmanager
def exclusive(
    config: Path,
    say: Callable[[str], None],
    wait: float = WAIT,
    clock: Callable[[], float] = time.monotonic,
    flock: Flock = _flock,
) -> Iterator[None]:
    """Hold the config's locks for the block; wait up to `wait` seconds for another run to finish."""
    if fcntl is None:
        if msvcrt is None:
            yield
            return
        with windows_lock(Path(os.path.realpath(config)), say, wait, clock, msvcrt.locking):
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
            locked = _acquire(fd, path, target, say, deadline, wait, clock, flock)
            if locked != fd:
                held[-1] = locked
                with contextlib.suppress(OSError):
                    os.close(fd)
        yield
    finally:
        for fd in held:
            if fd >= 0:
                os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def windows_lock(
    target: Path, say: Callable[[str], None], wait: float, clock: Callable[[], float], locking: Locking
) -> Iterator[None]:
    """Windows: a file held open stops the rename that replaces it (a sharing violation), so the lock is a byte
    of a file of its own beside the config (`.config.yml.malcapture-lock`, left there empty), locked with
    msvcrt.locking; the lock dies with the process, as flock's does."""
    path = target.with_name(f".{target.name}.malcapture-lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOINHERIT", 0), 0o600)
    except OSError as exc:
        raise _unlockable(path, exc) from None
    deadline, told = clock() + wait, False
    try:
        while True:
            try:
                locking(fd, 2, 1)  # LK_NBLCK: the first byte, without waiting
                break
            except OSError:
                pass
            if not told:
                say(f"Waiting: another malcapture is saving {target}.")
                told = True
            if clock() > deadline:
                raise ConfigError(
                    f"Another malcapture kept {target} locked for {wait:g} seconds; the config was not changed.",
                    "Let it finish (or stop it), then run malcapture again.",
                )
            time.sleep(POLL)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.lseek(fd, 0, os.SEEK_SET)
                locking(fd, 0, 1)  # LK_UNLCK
    finally:
        os.close(fd)


def check(config: Path, flock: Flock = _flock) -> None:
    """That the config's locks can be taken here at all (a lock held by another run is fine): found before
    anything is spent, so that no lock error can come after it."""
    if fcntl is None:
        return
    with contextlib.suppress(_Busy), exclusive(config, _busy, wait=0.0, flock=flock):
        pass


class _Busy(Exception):
    pass


def _busy(_: str) -> None:
    raise _Busy


def _open(path: Path) -> int | None:
    flags = os.O_RDONLY | OWN_FLAGS
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
    fd: int,
    path: Path,
    target: Path,
    say: Callable[[str], None],
    deadline: float,
    wait: float,
    clock: Callable[[], float],
    flock: Flock,
) -> int:
    """The descriptor that holds the lock: `fd`, another one opened for writing (NFS), or -1 for a folder that
    cannot be locked there."""
    told = False
    while True:
        try:
            flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno == errno.EBADF and stat.S_ISDIR(os.fstat(fd).st_mode):
                return -1  # NFS: a folder cannot be opened for writing, so the file's lock alone excludes
            writable = _for_writing(path) if exc.errno == errno.EBADF and not _writable(fd) else None
            if writable is None:
                if _writable(fd):
                    os.close(fd)  # ours, opened for writing above: the caller holds only the first one
                raise _unlockable(path, exc) from None
            fd = writable
            continue
        if not told:
            say(f"Waiting: {holder(fd)} is saving {target}.")
            told = True
        if clock() > deadline:
            raise ConfigError(
                f"{holder(fd)[0].upper()}{holder(fd)[1:]} kept {target} locked for {wait:g} seconds; "
                "the config was not changed.",
                "Let it finish (or stop it), then run malcapture again.",
            )
        time.sleep(POLL)


def _writable(fd: int) -> bool:
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY


def _for_writing(path: Path) -> int | None:
    """The file opened for writing, as an exclusive lock on NFS needs (nothing is written, truncated or made)."""
    try:
        return os.open(path, os.O_RDWR | OWN_FLAGS)
    except OSError:
        return None


def _unlockable(path: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"{path} cannot be locked ({exc.strerror or exc}), so malcapture cannot keep another run (or itself) from "
        "saving it at the same time; the config was not changed and nothing was spent.",
        "On a network share (NFS, SMB) make config.yml writable by this user, or run malcapture where the file "
        "is local (on the NAS itself, or in Kometa's container).",
    )


def holder(fd: int, locks: Path = Path("/proc/locks")) -> str:
    """Who holds a lock on `fd`'s file: `another malcapture (pid N)` where /proc/locks tells it (Linux), else
    `another malcapture` (macOS, BSD, a lock on another machine of an NFS share)."""
    info = os.fstat(fd)
    where = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    with contextlib.suppress(OSError, ValueError):
        for line in locks.read_text().splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == where and fields[4] != "0":
                return f"another malcapture (pid {int(fields[4])})"
    return "another malcapture"
