"""Ctrl-C, SIGTERM (docker stop, systemd) and SIGHUP (a closed terminal) all stop a run the same way.

Except while tokens are being spent and saved: MyAnimeList revokes the old refresh token the
moment it issues new ones, so a signal that arrives then waits until the save is over (see held).
Signals are the process's, so this state is too.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

STOPPING = ("SIGINT", "SIGTERM", "SIGHUP")
_state: dict[str, int | None] = {"held": 0, "pending": None}


@dataclass
class Hold:
    """What the held block got done, for the message after the signal it held back."""

    block: str | None = field(default=None, repr=False)  # the issued tokens as a config block
    saved_to: Path | None = None


class Interrupted(KeyboardInterrupt):
    """A stopping signal; `hold` when it was held back until tokens were saved (or printed)."""

    def __init__(self, signum: int, hold: Hold | None = None) -> None:
        super().__init__(signum)
        self.signum = signum
        self.hold = hold

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name


def install() -> None:
    for name in STOPPING:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _handle)


def _handle(signum: int, frame: FrameType | None) -> None:
    if _state["held"]:
        _state["pending"] = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def held() -> Iterator[Hold]:
    """Stopping signals wait until the block ends; one that came meanwhile is raised after it."""
    held_before = _state["held"] or 0
    _state["held"] = held_before + 1
    hold = Hold()
    try:
        yield hold
    finally:
        _state["held"] = held_before
        pending = _state["pending"] if not held_before else None
        if not held_before:
            _state["pending"] = None
    if pending is not None:
        raise Interrupted(pending, hold)
