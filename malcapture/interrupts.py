"""Ctrl-C, SIGTERM (docker stop, systemd) and SIGHUP (a closed terminal) all stop a run the same way.

Except while tokens are being spent and saved: a service revokes the old refresh token the moment
it issues new ones, so a signal that arrives then waits until the save is over (see held). Between
two tries of a request that got no answer nothing was spent: raise_pending() lets it stop there.
Signals are the process's, so this state is too.

Before the event loop runs, a signal raises Interrupted where the program is. While it runs (see
run), the loop takes the signal between two of its steps and cancels the work instead: raised at an
arbitrary point, inside the loop's own bookkeeping, it could leave a task that can never finish.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

STOPPING = ("SIGINT", "SIGTERM", "SIGHUP")
_state: dict[str, int | None] = {"held": 0, "pending": None}


@dataclass
class Hold:
    """What the held block got done, for the message after the signal it held back."""

    printed: bool = False  # the issued tokens are on standard output
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
    for signum in _stopping():
        signal.signal(signum, _handle)


def _stopping() -> list[int]:
    return [getattr(signal, name) for name in STOPPING if hasattr(signal, name)]


def run(work: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(work), where a stopping signal cancels the work; once it has unwound (servers
    closed, the terminal's modes back), Interrupted is raised here."""
    import asyncio  # not at the top: the login opens the browser before asyncio loads
    import gc

    # Off while the modules loaded (__main__); on again for a wait that may last half an hour, without
    # ever scanning what start-up made (modules, Typer, the config): it lives until exit anyway.
    gc.freeze()
    gc.enable()
    return asyncio.run(_cancelled_by_signals(work))


async def _cancelled_by_signals(work: Coroutine[Any, Any, T]) -> T:
    import asyncio

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def stop(signum: int) -> None:
        if _state["held"]:
            _state["pending"] = signum
            return
        received.append(signum)
        task.cancel()  # again on a second signal: whatever the unwinding waits for is cancelled too

    # Signals reach only the main thread (the tests also run the CLI on others).
    main = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.getsignal(signum) for signum in _stopping()} if main else {}
    on_loop = {signum: _take(loop, signum, stop) for signum in previous}
    try:
        return await work
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0]) from None
        raise
    finally:
        for signum, handler in previous.items():
            if on_loop[signum]:
                loop.remove_signal_handler(signum)
            signal.signal(signum, handler)


def _take(loop: Any, signum: int, stop: Any) -> bool:
    """Let the loop take `signum` between two of its steps. Windows' event loops have no signal handlers
    (NotImplementedError): there a plain handler hands the signal to the loop, which its self-pipe wakes.
    True when the loop's own handler took it."""
    try:
        loop.add_signal_handler(signum, stop, signum)
        return True
    except NotImplementedError:
        signal.signal(signum, lambda got, frame: loop.call_soon_threadsafe(stop, got))
        return False


def _handle(signum: int, frame: FrameType | None) -> None:
    if _state["held"]:
        _state["pending"] = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def held() -> Iterator[Hold]:
    """Stopping signals wait until the block ends; one that came meanwhile is raised after it, also
    when the block failed (the failure is then its cause)."""
    held_before = _state["held"] or 0
    _state["held"] = held_before + 1
    hold = Hold()
    try:
        yield hold
    except Exception as exc:
        pending = _leave(held_before)
        if pending is not None:
            raise Interrupted(pending, hold) from exc
        raise
    except BaseException:
        _leave(held_before)
        raise
    pending = _leave(held_before)
    if pending is not None:
        raise Interrupted(pending, hold)


def _leave(held_before: int) -> int | None:
    """Leave a held block; the signal that waited for the outermost one, if any."""
    _state["held"] = held_before
    if held_before:
        return None
    pending, _state["pending"] = _state["pending"], None
    return pending


def raise_pending() -> None:
    """Inside a held block, where nothing has been spent yet (between two tries of a request): stop
    now for a signal that is waiting, instead of after the block."""
    pending = _state["pending"]
    if pending is not None:
        _state["pending"] = None
        raise Interrupted(pending)
