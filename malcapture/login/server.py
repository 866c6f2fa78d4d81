"""The short-lived aiohttp server that catches what comes back to this machine, on already-bound sockets.

A login hands it a `judge` for the query of a request to its path: an OAuth redirect's code and
state, or Plex's bare "done". The first request judged good resolves `result`; its browser then
waits for the login to say how it ended, so the page can name the account and the file (or what
went wrong). Everything else is answered and summed up, never logged one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from aiohttp import web

from malcapture.errors import InputRejected, LoginStopped, MalcaptureError
from malcapture.login import pages, peer
from malcapture.login.contract import Account, Service
from malcapture.login.guard import Guard
from malcapture.login.redirect import RedirectTarget

T = TypeVar("T")
PAGE_WAIT = 120.0  # how long a browser waits for the page while the login exchanges and saves
MAX_HEADER = 256 * 1024  # bytes of one header line: every `localhost` cookie of every port comes along
QUIET = logging.getLogger("malcapture.server")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


@contextlib.asynccontextmanager
async def serving(server: CallbackServer[Any] | None) -> AsyncIterator[None]:
    """While a login runs on `server` (if it has one): a failure is told on the page the browser waits
    for, and the server closes at the end, whatever the end."""
    try:
        yield
    except MalcaptureError as exc:
        if server:
            server.finish(pages.failure(exc.what, exc.advice))
        raise
    finally:
        if server:
            await server.close()


def render(page: pages.Page) -> web.Response:
    return web.Response(status=page.status, text=page.html(), headers=pages.HEADERS)


class CallbackServer(Generic[T]):
    def __init__(
        self,
        sockets: list[socket.socket],
        target: RedirectTarget,
        judge: Callable[[Mapping[str, str]], T],
        on_rejected: Callable[[str], None],
        start: tuple[str, str] | None = None,
        forward: bool = False,
    ) -> None:
        """`forward`: every request to the path only says "done" (Plex's forwardUrl): any may wake the login,
        and the page that tells how it ended goes only to the browser that was sent to the start address."""
        self._sockets = sockets
        self._target = target
        self._judge = judge
        self._on_rejected = on_rejected
        self._start = start  # (a one-time path, the page it redirects the browser to)
        self._forward = forward
        self._cookie = f"malcapture-{secrets.token_hex(8)}"  # set for the browser sent to the start address
        loop = asyncio.get_running_loop()
        self.result: asyncio.Future[T] = loop.create_future()
        self._page: asyncio.Future[pages.Page] = loop.create_future()
        self._runner: web.AppRunner | None = None
        self._servers: list[asyncio.Server] = []
        self._started_once = False
        self._rejected = 0  # requests to the redirect path that were not the redirect: the first is told
        self._troubled = False
        self._handler: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # No access log (the redirect's query holds the one-time code) and no error log (its tracebacks
        # would flood the terminal); room for the many cookies browsers send to `localhost`.
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            logger=QUIET,
            shutdown_timeout=5,
            keepalive_timeout=5,
            max_line_size=MAX_HEADER,
            max_field_size=MAX_HEADER,
            max_headers=512,
        )
        await self._runner.setup()
        assert self._runner.server is not None
        loop = asyncio.get_running_loop()
        self._handler = loop.get_exception_handler()
        loop.set_exception_handler(self._trouble)
        guard = Guard(self._runner.server)
        self._servers = [await loop.create_server(guard, sock=sock) for sock in self._sockets]

    def _trouble(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """What the event loop could not do while serving (an accept that failed: out of descriptors):
        said once, in a line, and the wait goes on."""
        if not self._troubled:
            self._troubled = True
            self._on_rejected(f"the loopback server hit a problem and goes on: {context.get('message', 'unknown')}")

    def finish(self, page: pages.Page) -> None:
        """Tell the waiting browser how the login ended."""
        if not self._page.done():
            self._page.set_result(page)

    def succeeded(self, account: Account | None, saved_to: Path | None, service: Service) -> None:
        self.finish(
            pages.success(account.name if account else None, str(saved_to) if saved_to else None, service, service.done)
        )

    async def close(self) -> None:
        self.finish(pages.failure("malcapture stopped before the login finished.", ""))
        for server in self._servers:
            server.close()
        if self._runner is not None:
            await self._runner.cleanup()
        for server in self._servers:
            await server.wait_closed()
        for sock in self._sockets:
            sock.close()
        asyncio.get_running_loop().set_exception_handler(self._handler)
        if self._rejected > 1:
            self._on_rejected(f"ignored {self._rejected} requests to the redirect URL that were not the redirect.")

    async def _forwarded(self, request: web.Request) -> web.StreamResponse:
        """Plex's forward: it only brings the next poll forward; the browser sent here gets the outcome."""
        if not self.result.done():
            self.result.set_result(self._judge(request.query))
        if self._cookie not in request.cookies:
            return render(pages.rejected("This address only tells malcapture to look again; the terminal says more."))
        return await self._outcome()

    async def _outcome(self) -> web.StreamResponse:
        try:
            page = await asyncio.wait_for(asyncio.shield(self._page), PAGE_WAIT)
        except asyncio.TimeoutError:
            page = pages.failure("malcapture took too long; the terminal says how it ended.", "")
        return render(page)

    def _started(self) -> web.StreamResponse:
        """The browser's way to the authorize page, once: a second visitor raced the user for it."""
        if self._start is not None and not self._started_once:
            self._started_once = True
            cookie = f"{self._cookie}=1; Path=/; HttpOnly; SameSite=Lax"
            return web.Response(status=302, headers={**pages.HEADERS, "Location": self._start[1], "Set-Cookie": cookie})
        if not self.result.done():
            self.result.set_exception(
                LoginStopped(
                    "The one-time address that starts this login was opened twice, so something else on this "
                    "machine may be trying to have its own account's code taken for yours. The login was stopped; "
                    "nothing was spent and the config was not changed.",
                    "Run malcapture again. If it happens again, check which other users or programs are on this "
                    "machine (the address is on the browser's command line, which every local user can read).",
                )
            )
        return render(pages.rejected("This login's start address was already used; the login was stopped."))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self._target.accepts_host_header(request.headers.get("Host", "")):
            return render(pages.bad_host())
        transport = request.transport
        if transport is not None and peer.foreign(
            transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        ):
            self._rejected += 1
            if self._rejected == 1:
                self._on_rejected("Ignored a request from a program of another user of this machine.")
            return render(pages.rejected("This login belongs to another user of this machine."))
        if self._start is not None and request.path == self._start[0] and request.method == "GET":
            return self._started()
        if request.method not in ("GET", "HEAD") or request.path != self._target.path:
            return render(pages.not_found())
        if self._forward:
            return await self._forwarded(request)
        if self.result.done():
            return render(pages.rejected("This login has already received its redirect."))
        try:
            judged = self._judge(request.query)
        except InputRejected as exc:
            self._rejected += 1
            if self._rejected == 1:  # one line, not thousands: every write could hold up the wait
                self._on_rejected(f"Ignored a request to the redirect URL: {exc.what}")
            return render(pages.rejected(exc.what))
        self.result.set_result(judged)
        return await self._outcome()
