"""The short-lived aiohttp server that catches what comes back to this machine, on already-bound sockets.

A login hands it a `judge` for the query of a request to its path: an OAuth redirect's code and
state, or Plex's bare "done". The first request judged good resolves `result`; its browser then
waits for the login to say how it ended, so the page can name the account and the file (or what
went wrong). Everything else is answered and summed up, never logged one by one.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from aiohttp import web

from malcapture.errors import InputRejected
from malcapture.login import pages
from malcapture.login.redirect import RedirectTarget

T = TypeVar("T")
PAGE_WAIT = 120.0  # how long a browser waits for the page while the login exchanges and saves


def render(page: pages.Page) -> web.Response:
    return web.Response(status=page.status, text=page.html(), headers=pages.HEADERS)


class CallbackServer(Generic[T]):
    def __init__(
        self,
        sockets: list[socket.socket],
        target: RedirectTarget,
        judge: Callable[[Mapping[str, str]], T],
        on_rejected: Callable[[str], None],
    ) -> None:
        self._sockets = sockets
        self._target = target
        self._judge = judge
        self._on_rejected = on_rejected
        loop = asyncio.get_running_loop()
        self.result: asyncio.Future[T] = loop.create_future()
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
        """Tell the waiting browser how the login ended."""
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
            judged = self._judge(request.query)
        except InputRejected as exc:
            self._on_rejected(f"Ignored a request to the redirect URL: {exc.what}")
            return render(pages.rejected(exc.what))
        self.result.set_result(judged)
        try:
            page = await asyncio.wait_for(asyncio.shield(self._page), PAGE_WAIT)
        except asyncio.TimeoutError:
            page = pages.failure("malcapture took too long; the terminal says how it ended.", "")
        return render(page)
