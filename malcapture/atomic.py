"""Replace a file's content so that a crash leaves either the old file or the new one.

A temporary file (0600 from its first byte) beside the target, fsync, rename. A single file
bind-mounted into a container cannot be renamed over (EBUSY, EXDEV): it is written in place,
after the previous content was kept as `NAME.bak`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

RENAME_REFUSED = {errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES}
Rename = Callable[[str, str], None]


def replace_file(target: Path, data: bytes, old: bytes | None, rename: Rename = os.replace) -> Path | None:
    """Write `data` to `target` (a real path, not a symlink); returns the backup's path, if any."""
    info = target.stat() if old is not None else None
    backup = None
    if old is not None:
        backup = target.with_name(target.name + ".bak")
        _write_new(backup, old, 0o600, None, rename)
    mode = stat.S_IMODE(info.st_mode) if info else 0o600
    try:
        _write_new(target, data, mode, info, rename)
    except OSError as exc:
        if exc.errno not in RENAME_REFUSED or old is None:
            raise
        _write_in_place(target, data)
    return backup


def _write_new(target: Path, data: bytes, mode: int, owner: os.stat_result | None, rename: Rename) -> None:
    temp = target.with_name(f".{target.name}.malcapture-{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            if owner is not None and hasattr(os, "geteuid") and os.geteuid() == 0:
                # Root (sudo, a container) must not hand the user's config over to root.
                os.fchown(handle.fileno(), owner.st_uid, owner.st_gid)
        rename(str(temp), str(target))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(target.parent)


def _write_in_place(target: Path, data: bytes) -> None:
    with open(target, "r+b") as handle:
        handle.write(data)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
