"""A far-away server, on loopback: a TCP proxy that delays every packet, and counts what crosses it.

Every chunk waits half the round-trip time in each direction, and a connection's first chunk waits a
whole one more (the TCP handshake a real link costs before anything can be sent). The proxy counts
the TCP connections and the TLS handshakes (ClientHello records) that go through it, with when.
Used by tests/test_latency.py and by `make bench` (scripts/bench.py), with the stand-ins over TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import time
from pathlib import Path

CHUNK = 65536


class Link:
    def __init__(self, target: tuple[str, int], rtt: float) -> None:
        self.target = target
        self.rtt = rtt
        self.connections = 0
        self.handshakes: list[float] = []  # time.monotonic() of each TLS ClientHello
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connect(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        for task in (
            self._pipe(client_reader, server_writer, first_extra=self.rtt, watch=True),
            self._pipe(server_reader, client_writer),
        ):
            running = asyncio.ensure_future(task)
            self._tasks.add(running)
            running.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first_extra: float = 0.0, watch: bool = False
    ) -> None:
        """Copy one direction, each chunk delivered half a round trip after it was read, in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = asyncio.ensure_future(self._deliver(queue, writer))
        try:
            first = True
            while True:
                chunk = await reader.read(CHUNK)
                if watch and first and chunk[:1] == b"\x16" and chunk[5:6] == b"\x01":
                    self.handshakes.append(time.monotonic())
                due = time.monotonic() + self.rtt / 2 + (first_extra if first else 0.0)
                first = False
                await queue.put((due, chunk))
                if not chunk:
                    break
            await deliver
        finally:
            deliver.cancel()

    @staticmethod
    async def _deliver(queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not chunk:
                    break
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()


def certificate(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1 and localhost (trust it with SSL_CERT_FILE), and a
    server context that presents it."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context
