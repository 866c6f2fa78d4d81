"""What every stand-in does alike: serve its @route handlers on a socket bound here, count requests,
answer scripted failures first, read a client's Basic credentials, and read time from a clock that tests
may hand in.

Each service's stand-in (one module each, beside this one) is as faithful to the service as its
facts file says (../shared/*-OAUTH.md, PLEX-AUTH.md): the tests prove nothing otherwise. The demo
uses the same stand-ins; each module's `demo()` says how its login is played there.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote_plus

from aiohttp import web
from yarl import URL

if TYPE_CHECKING:
    from malcapture.login.contract import LoginOptions
    from malcapture.login.io import Io

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Method = TypeVar("Method", bound=Callable[..., Awaitable[web.StreamResponse]])
T = TypeVar("T")
ROUTE = "stand_in_route"


def route(method: str, path: str) -> Callable[[Method], Method]:
    """Marks a stand-in's handler with the requests it answers; StandIn.application() finds it."""

    def mark(handler: Method) -> Method:
        setattr(handler, ROUTE, (method, path))
        return handler

    return mark


@dataclass
class Scripted:
    status: int
    body: str
    content_type: str = "application/json"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Code:
    """A single-use authorization code a stand-in issued: to whom, for which redirect, until when."""

    client_id: str
    redirect_uri: str
    expires: float
    used: bool = False


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """The client ID and secret of an `Authorization: Basic` header (RFC 6749 2.3.1), if one was sent."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


@dataclass
class StandIn:
    """Counts the requests to each path, answers scripted ones first (then `slow` ones late, and gated ones
    once their gate opens), serves @routes."""

    hits: Counter[str] = field(default_factory=Counter)
    scripted: dict[str, list[Scripted]] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)  # path → seconds to wait before really answering
    gates: dict[str, asyncio.Event] = field(default_factory=dict)  # path → answered once the event is set
    clock: Callable[[], float] = time.time  # what "now" is to the service
    _requests: asyncio.Condition | None = field(default=None, repr=False)

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._answer])
        for name in dir(type(self)):
            answers = getattr(getattr(type(self), name, None), ROUTE, None)
            if answers is not None:
                method, path = answers
                app.router.add_route(method, path, getattr(self, name))
        return app

    async def requested(self, path: str, times: int = 1) -> None:
        """Until `path` has been requested `times` times (counted before it is answered)."""
        condition = self._condition()
        async with condition:
            await condition.wait_for(lambda: self.hits[path] >= times)

    def _condition(self) -> asyncio.Condition:
        if self._requests is None:
            self._requests = asyncio.Condition()
        return self._requests

    def script(self, path: str, *answers: Scripted) -> None:
        """The next answers to `path` (e.g. "/v2/users/@me"), before normal service resumes."""
        self.scripted.setdefault(path, []).extend(answers)

    @web.middleware
    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.hits[request.path] += 1
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else request.path
        if route != request.path:  # `/api/v2/pins/{id}` as well as `/api/v2/pins/123`
            self.hits[route] += 1
        condition = self._condition()
        async with condition:
            condition.notify_all()
        queue = self.scripted.get(request.path)
        if queue:
            answer = queue.pop(0)
            await asyncio.sleep(answer.delay)
            if ";" in answer.content_type:  # a label of its own (a charset Python may not know): sent as it is
                headers = {**answer.headers, "Content-Type": answer.content_type}
                return web.Response(status=answer.status, body=answer.body.encode(), headers=headers)
            return web.Response(
                status=answer.status, text=answer.body, content_type=answer.content_type, headers=answer.headers
            )
        await asyncio.sleep(self.slow.get(request.path, 0))
        gate = self.gates.get(request.path)
        if gate is not None:
            await gate.wait()
        return await handler(request)


@dataclass(frozen=True)
class Demo:
    """One service's part of `malcapture demo`: the variables that point malcapture at its stand-in, the
    login's options for a config, and the user the demo plays where no browser can open (demo.py plays it)."""

    env: Mapping[str, str]
    how: str  # which login, in words
    stand_in: StandIn  # its clock becomes the demo's
    options: Callable[[Path, bool], LoginOptions]  # for the config; True: no browser can open here
    # Where no browser can open: the user, played beside the login (or by the browser `Io` is given: None).
    user: Callable[[Io], Awaitable[None] | None]


async def beside(login: Awaitable[T], user: Awaitable[None] | None) -> T:
    """The login, with the demo playing the user (`user`) at the same time, when there is no browser."""
    playing = asyncio.ensure_future(user) if user is not None else None
    try:
        return await login
    finally:
        if playing is not None:
            playing.cancel()


async def serve_app(
    application: web.Application, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, str]:
    """Any stand-in's app on a socket bound here (port 0: one the system picks), over TLS with `tls`."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, port))
    # A client that goes away (killed, timed out) ends its request here too, as on a real server: no
    # stand-in keeps waiting out a scripted delay for nobody.
    runner = web.AppRunner(application, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.SockSite(runner, sock, ssl_context=tls).start()
    shown = f"[{host}]" if ":" in host else host
    return runner, f"{'https' if tls else 'http'}://{shown}:{sock.getsockname()[1]}"


async def play_browser(url: str, choice: str = "allow", where: Callable[[str], str] = str) -> tuple[int, str]:
    """Do what a person in a browser does: open the URL, click Allow (or Deny), follow the redirect.
    `where` is the browser's idea of where each address is (a hosts file): it may rewrite them."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        status, page, here = await _follow(session, where(url), where)
        link = re.search(rf'id="{choice}" href="([^"]+)"', page)
        if status != 200 or link is None:
            return status, page
        status, page, _ = await _follow(session, where(str(here.join(URL(link.group(1).replace("&amp;", "&"))))), where)
        return status, page


async def _follow(session: Any, url: str, where: Callable[[str], str]) -> tuple[int, str, URL]:
    for _ in range(10):
        async with session.get(url, allow_redirects=False) as response:
            if response.status not in (301, 302, 303, 307, 308):
                return response.status, await response.text(), response.url
            url = where(str(response.url.join(URL(response.headers["Location"]))))
    raise AssertionError("more than 10 redirects")


def clicking_allow(io: Io) -> None:
    """The demo's user where no browser can open: the demo is the browser too — it opens the page and clicks
    Allow (or Agree), on a thread of its own, as a browser is a process of its own."""
    io.open_browser, io.headless = _open_and_allow, lambda env: None


def _open_and_allow(url: str) -> bool:
    status, _ = asyncio.run(play_browser(url))
    return status == 200
