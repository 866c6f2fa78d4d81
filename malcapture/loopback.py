"""The short-lived aiohttp server that catches the service's redirect on already-bound sockets.

The handler resolves one future with what came back, then waits for the flow to say how it
ended, so the browser's page can name the account and the file (or what went wrong).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from aiohttp import web

from malcapture import pages
from malcapture.errors import InputRejected
from malcapture.redirect import Callback, RedirectTarget, read_callback

PAGE_WAIT = 120.0  # how long a browser waits for the page while the flow exchanges and saves


def render(page: pages.Page) -> web.Response:
    return web.Response(status=page.status, text=page.html(), headers=pages.HEADERS)


class CallbackServer:
    def __init__(
        self,
        sockets: list[socket.socket],
        target: RedirectTarget,
        state: str,
        on_rejected: Callable[[str], None],
    ) -> None:
        self._sockets = sockets
        self._target = target
        self._state = state
        self._on_rejected = on_rejected
        loop = asyncio.get_running_loop()
        self.result: asyncio.Future[Callback] = loop.create_future()
        self._page: asyncio.Future[pages.Page] = loop.create_future()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # No access log: the redirect's query holds the one-time code.
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        for sock in self._sockets:
            await web.SockSite(self._runner, sock).start()

    def finish(self, page: pages.Page) -> None:
        """Tell the waiting browser how the flow ended."""
        if not self._page.done():
            self._page.set_result(page)

    async def close(self) -> None:
        self.finish(pages.failure("malcapture stopped before the login finished.", ""))
        if self._runner is not None:
            await self._runner.cleanup()
        for sock in self._sockets:
            sock.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self._target.accepts_host_header(request.headers.get("Host", "")):
            return render(pages.bad_host())
        if request.method not in ("GET", "HEAD") or request.path != self._target.path:
            return render(pages.not_found())
        if self.result.done():
            return render(pages.rejected("This login has already received its redirect."))
        try:
            callback = read_callback(request.query, self._state)
        except InputRejected as exc:
            self._on_rejected(f"Ignored a request to the redirect URL: {exc.what}")
            return render(pages.rejected(exc.what))
        self.result.set_result(callback)
        try:
            page = await asyncio.wait_for(asyncio.shield(self._page), PAGE_WAIT)
        except asyncio.TimeoutError:
            page = pages.failure("malcapture took too long; the terminal says how it ended.", "")
        return render(page)
