"""Replace a file's content so that a crash, a full disk or a signal leaves the old file or the new one.

The usual way: a temporary file beside the target (0600 from its first byte, a unique name) gets
the new content, the target's owner, group, mode, ACLs and extended attributes, and is renamed
over the target. Where a rename would lose something Kometa needs (an attribute that cannot be
copied, a group this user cannot give, other hard links) or cannot be done (a single file
bind-mounted into a container: EBUSY), the file is written in place instead: the space is
reserved first, and on any failure the old bytes are put back.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

RENAME_REFUSED = {errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES}
TEMP_SUFFIX = ".malcapture.tmp"
BACKUPS = 5  # config.yml.bak and .bak.1 … .bak.4: the last five versions before a save
BACKUP_MARK = "user.malcapture"  # an extended attribute on the backups malcapture writes
Rename = Callable[[str, str], None]


class ChangedMeanwhile(Exception):
    """The file is no longer what the new content was made from."""


class Replaced(NamedTuple):
    backup: Path | None
    in_place: bool
    single_file_mount: bool  # the file is a mount of its own: its backup is not on the same disk


def replace_file(
    target: Path, data: bytes, old: bytes | None, rename: Rename = os.replace, started: float | None = None
) -> Replaced:
    """Write `data` to `target` (a real path, not a symlink), if it still holds `old`."""
    remove_stale_temps(target, started if started is not None else time.time())
    if old is None:
        _write_new(target, data, 0o600, None, rename, None)
        return Replaced(None, False, False)
    info = os.stat(target)
    single = _is_mount_of_its_own(target, info)
    if not os.access(target.parent, os.W_OK):  # no temporary file, no backup beside it: in place
        _write_in_place(target, data, old)
        return Replaced(None, True, single)
    backup = backup_path(target)
    _rotate(backup)
    _write_new(backup, old, 0o600, None, os.replace, None)
    with contextlib.suppress(OSError, AttributeError):  # no extended attributes: the backup is just unmarked
        os.setxattr(backup, BACKUP_MARK, b"1")
    if info.st_nlink > 1 or single:
        _write_in_place(target, data, old)
        return Replaced(backup, True, single)
    try:
        _write_new(target, data, stat.S_IMODE(info.st_mode), info, rename, old)
    except _CannotKeep:
        _write_in_place(target, data, old)
        return Replaced(backup, True, single)
    except OSError as exc:
        if exc.errno not in RENAME_REFUSED:
            raise
        _write_in_place(target, data, old)
        return Replaced(backup, True, single)
    return Replaced(backup, False, single)


def backup_path(target: Path) -> Path:
    """`NAME.bak`, unless a `NAME.bak` exists that malcapture did not write: then `NAME.malcapture.bak`."""
    usual = target.with_name(target.name + ".bak")
    if not usual.exists() and not usual.is_symlink():
        return usual
    if usual.is_file() and not usual.is_symlink():
        try:
            os.getxattr(usual, BACKUP_MARK)
            return usual
        except (OSError, AttributeError):
            pass
    return target.with_name(target.name + ".malcapture.bak")


def _rotate(backup: Path, keep: int = BACKUPS) -> None:
    """The backups of earlier saves move one place down (`.bak` → `.bak.1` … `.bak.{keep - 1}`, the oldest
    dropped), so that a few logins in a row keep the original; a link in the way is never followed."""
    older = [backup, *(backup.with_name(f"{backup.name}.{n}") for n in range(1, keep))]
    if not backup.is_file() or backup.is_symlink():
        return
    for newer, oldest in reversed(list(itertools.pairwise(older))):
        if newer.is_file() and not newer.is_symlink() and not (oldest.exists() and not oldest.is_file()):
            with contextlib.suppress(OSError):
                os.replace(newer, oldest)


def replace_retrying(
    rename: Rename,
    source: str,
    target: str,
    windows: bool = os.name == "nt",
    sleep: Callable[[float], None] = time.sleep,
    tries: int = 20,
) -> None:
    """`rename(source, target)`; on Windows a file another program holds open (an editor, an antivirus scan,
    Kometa reading it) refuses to be replaced for a moment: tried again for about two seconds, then said."""
    for attempt in range(1, tries + 1):
        try:
            rename(source, target)
            return
        except PermissionError as exc:
            if not windows:
                raise
            if attempt == tries:
                raise PermissionError(
                    exc.errno,
                    f"{exc.strerror or 'Access is denied'} — another program (an editor, an antivirus scan, Kometa) "
                    "keeps the file open, so Windows will not replace it; close it and run malcapture again",
                ) from None
            sleep(0.1)


def remove_stale_temps(target: Path, started: float) -> None:
    """Temporary files of runs that were killed (`kill -9`, a full container stop) are removed, never in the way."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            stale = entry.name.startswith(f".{target.name}") and (
                entry.name.endswith(TEMP_SUFFIX) or ".malcapture-" in entry.name
            )
            if stale and entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < started:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


class _CannotKeep(Exception):
    """A rename would drop something the old file had: write in place instead."""


def _write_new(
    target: Path, data: bytes, mode: int, like: os.stat_result | None, rename: Rename, old: bytes | None
) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            if like is not None:
                _keep_owner(handle.fileno(), like)
                _copy_attributes(target, handle.fileno())
        if old is not None and target.read_bytes() != old:
            raise ChangedMeanwhile
        replace_retrying(rename, temp, str(target))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(target.parent)


def _keep_owner(fd: int, like: os.stat_result) -> None:
    if not hasattr(os, "fchown"):
        return
    mine = os.fstat(fd)
    if (mine.st_uid, mine.st_gid) == (like.st_uid, like.st_gid):
        return
    uid = like.st_uid if os.geteuid() == 0 else -1
    if uid == -1 and mine.st_uid != like.st_uid:
        raise _CannotKeep  # only root can give a file away: keep the owner by writing in place
    try:
        os.fchown(fd, uid, like.st_gid)
    except OSError:
        raise _CannotKeep from None  # not a member of the file's group


def _copy_attributes(source: Path, fd: int) -> None:
    """ACLs (system.posix_acl_access), SELinux labels, user.* attributes: all or nothing."""
    if not hasattr(os, "listxattr"):
        return
    try:
        names = os.listxattr(source)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise _CannotKeep from None
    for name in names:
        try:
            value = os.getxattr(source, name)
            with contextlib.suppress(OSError):
                if os.getxattr(fd, name) == value:
                    continue
            os.setxattr(fd, name, value)
        except OSError:
            raise _CannotKeep from None


def _is_mount_of_its_own(target: Path, info: os.stat_result) -> bool:
    try:
        return os.stat(target.parent).st_dev != info.st_dev
    except OSError:
        return False


def _write_in_place(target: Path, data: bytes, old: bytes) -> None:
    """Overwrite the file itself; the space is reserved first, and any failure puts the old bytes back."""
    with open(target, "r+b") as handle:
        fd = handle.fileno()
        if os.pread(fd, len(old) + 1, 0) != old:
            raise ChangedMeanwhile
        if len(data) > len(old) and hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fd, 0, len(data))
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, len(old))
                    raise
        try:
            _overwrite(fd, data)
        except BaseException:
            _overwrite(fd, old)
            raise


def _overwrite(fd: int, data: bytes) -> None:
    view, offset = memoryview(data), 0
    while offset < len(data):
        offset += os.pwrite(fd, view[offset:], offset)
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
