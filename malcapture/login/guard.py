"""The loopback server's connections, bounded: with `--bind 0.0.0.0` anyone on the network can open them.

A connection that has sent nothing after SILENT_FOR seconds is closed, and past MOST connections
the oldest silent one makes room for the newest, so half-open connections can neither exhaust the
descriptors nor keep the browser's redirect out. Each connection is aiohttp's own protocol, wrapped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

SILENT_FOR = 10.0  # seconds a connection may stay open without sending a byte
MOST = 256  # connections at once (a browser opens a few; descriptors are usually limited to 1,024)


class Guard:
    """Wraps a protocol factory (aiohttp's web.Server) for loop.create_server."""

    def __init__(
        self, factory: Callable[[], asyncio.Protocol], silent_for: float = SILENT_FOR, most: int = MOST
    ) -> None:
        self._factory = factory
        self.silent_for = silent_for
        self._most = most
        self.open: list[Watched] = []  # oldest first

    def __call__(self) -> Watched:
        return Watched(self._factory(), self)

    def opened(self, connection: Watched) -> None:
        self.open.append(connection)
        if len(self.open) > self._most:
            victim = next((c for c in self.open if not c.spoke), connection)
            self.open.remove(victim)
            victim.close()

    def closed(self, connection: Watched) -> None:
        if connection in self.open:
            self.open.remove(connection)


class Watched(asyncio.Protocol):
    """One connection: aiohttp's protocol inside, closed when it stays silent."""

    def __init__(self, inner: asyncio.Protocol, guard: Guard) -> None:
        self._inner = inner
        self._guard = guard
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.spoke = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._guard.silent_for, self._silent)
        self._inner.connection_made(transport)
        self._guard.opened(self)

    def data_received(self, data: bytes) -> None:
        if not self.spoke:
            self.spoke = True
            if self._timer is not None:
                self._timer.cancel()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._guard.closed(self)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _silent(self) -> None:
        if not self.spoke:
            self.close()
