"""Pasted lines from standard input, delivered to the event loop while the server waits.

At a POSIX terminal each line is read on the event loop itself (terminal.read_line, in non-canonical
mode: macOS's canonical mode would cut a line at 1,024 bytes, and a MAL redirect is longer), so that
nothing is left reading the terminal, in a mode of its own, once the login ends. Other input (a pipe,
a file, /dev/null, Windows' console) is read by a daemon thread: a blocking read cannot be cancelled,
and leaving it behind touches no terminal.
"""

from __future__ import annotations

import os
import select
import stat
import threading
from typing import TYPE_CHECKING

from malcapture import terminal

if TYPE_CHECKING:
    import asyncio

CHUNK = 65536


class PasteReader:
    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self._editor = terminal.LineEditor()
        self._ahead = b""  # read by can_deliver(), not yet delivered
        self._at_end = False
        self._queue: asyncio.Queue[str | None] | None = None

    @property
    def interactive(self) -> bool:
        return terminal.is_terminal(self.fd)

    def can_deliver(self) -> bool:
        """Whether a paste can still arrive: a terminal, or input that is not already at its end."""
        if self.interactive:
            return True
        if self._at_end:
            return False
        try:
            info = os.fstat(self.fd)
        except OSError:  # no standard input at all
            return False
        if stat.S_ISCHR(info.st_mode):  # /dev/null, as docker run without -i and systemd give
            return False
        if stat.S_ISREG(info.st_mode):
            return info.st_size > os.lseek(self.fd, 0, os.SEEK_CUR)
        if os.name != "posix":
            return True
        # A pipe or socket that is readable at once and empty has lost its writer (cron closes it).
        ready, _, _ = select.select([self.fd], [], [], 0)
        if ready:
            chunk = _read(self.fd)
            self._at_end = not chunk
            self._ahead += chunk
        return not self._at_end

    async def next_line(self) -> str | None:
        """The next pasted line, or None at end of input (Ctrl-D at a terminal, Ctrl-Z Enter at Windows' console)."""
        if self.interactive and terminal.EDITABLE:
            return await terminal.read_line(self.fd, self._editor)
        # A pipe, a file — or Windows' console, whose own line editing reads a whole line (no termios there):
        # a daemon thread reads it, and the loop gets each line.
        import asyncio  # not at the top: the login opens the browser before asyncio loads

        if self._queue is None:
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._pump, args=(loop, self._queue), daemon=True).start()
        return await self._queue.get()

    def _pump(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
        buffer, self._ahead = self._ahead, b""
        while True:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not _deliver(loop, queue, line.decode("utf-8", "replace")):
                    return
            chunk = b"" if self._at_end else _read(self.fd)
            if not chunk:
                if buffer:
                    _deliver(loop, queue, buffer.decode("utf-8", "replace"))
                _deliver(loop, queue, None)
                return
            buffer += chunk


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, CHUNK)
    except OSError:
        return b""


def _deliver(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None], line: str | None) -> bool:
    try:
        loop.call_soon_threadsafe(queue.put_nowait, line)
    except RuntimeError:  # the loop is closed: the flow has ended
        return False
    return True
