"""A small file of the user's read safely: from a regular file only (a FIFO would block the read, a link to
/dev/zero never end it), at most `limit` bytes, every failure a ConfigError with the advice given."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from malcapture.errors import ConfigError


def read_regular(path: Path, limit: int, advice: str) -> bytes | None:
    """Up to `limit` + 1 bytes of `path` (one more than allowed shows it is too long); None when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}.", advice) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ConfigError(f"{path} is not a regular file (a pipe, socket or device), so it is not read.", advice)
        return handle.read(limit + 1)
