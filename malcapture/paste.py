"""Pasted lines from standard input, delivered to the event loop while the server waits.

A blocking read cannot be cancelled, so it runs on a daemon thread that simply stays behind
when the flow ends. On a terminal it reads through `readline`: a canonical-mode terminal line
is cut at 1,024 bytes on macOS, and MyAnimeList's redirect URLs are longer than that.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import asyncio


class PasteReader:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdin
        self._queue: asyncio.Queue[str | None] | None = None

    @property
    def interactive(self) -> bool:
        try:
            return self._stream.isatty()
        except (ValueError, OSError):
            return False

    async def next_line(self) -> str | None:
        """The next pasted line, or None at end of input."""
        import asyncio  # not at the top: the login opens the browser before asyncio loads

        if self._queue is None:
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._pump, args=(loop, self._queue), daemon=True).start()
        return await self._queue.get()

    def _pump(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
        read = self._read_terminal if self.interactive else self._stream.readline
        while True:
            try:
                line: str | None = read() or None
            except (EOFError, OSError, ValueError):
                line = None
            try:
                loop.call_soon_threadsafe(queue.put_nowait, line)
            except RuntimeError:  # the loop is closed: the flow has ended
                return
            if line is None:
                return

    def _read_terminal(self) -> str:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (imported for its effect on input())
        return input() + "\n"
