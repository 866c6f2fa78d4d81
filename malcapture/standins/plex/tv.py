"""plex.tv and app.plex.tv, as ../shared/PLEX-AUTH.md describes them: PINs (strong or 4-character),
answered as XML unless `Accept: application/json`, 400 without a client identifier or product, 404 once
expired or to another client identifier; /api/v2/user with a token (401 for a bad one); the account's
resources. The sign-in page reads the PIN from the URL's fragment in the page itself, as the real one must
(browsers never send a fragment), signs in and sends the browser to forwardUrl.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from aiohttp import web

from malcapture.standins.base import StandIn, route

LINK_CODE = string.ascii_uppercase + string.digits


@dataclass
class Pin:
    id: int
    code: str
    client: str
    product: str
    created: float
    lifetime: int
    token: str | None = None

    def answer(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "product": self.product,
            "trusted": False,
            "qr": f"https://plex.tv/api/v2/pins/qr/{self.code}",
            "clientIdentifier": self.client,
            "location": {"code": "DE", "country": "Germany", "city": "Berlin", "time_zone": "Europe/Berlin"},
            "expiresIn": int(self.lifetime),
            "createdAt": _iso(self.created),
            "expiresAt": _iso(self.created + self.lifetime),
            "authToken": self.token,
            "newRegistration": None,
        }


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakePlex(StandIn):
    """plex.tv and app.plex.tv: PINs, the sign-in page, /link, and whose a token is."""

    user: str = "kometa_fan"
    consent: str = "ask"  # the sign-in page: "ask" shows a button; "allow" signs in at once (headless browsers)
    pins: dict[int, Pin] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # token → the device (client identifier) it was made for
    revoked: set[str] = field(default_factory=set)
    servers: list[Resource] = field(default_factory=list)  # what /api/v2/resources lists for the account
    pin_checks: int = 200  # another status: every check of a PIN is answered so (plex.tv having trouble)

    def sign_in(self, code: str, user: str | None = None) -> str:
        """What the user does at app.plex.tv or plex.tv/link: the PIN with this code gets a token."""
        pin = next(p for p in self.pins.values() if p.code.upper() == code.upper() and self._alive(p))
        pin.token = secrets.token_urlsafe(15)[:20]
        self.tokens[pin.token] = pin.client
        return pin.token

    async def sign_in_when_shown(self) -> None:
        """The user, on another device: sees the code (it is polled by now), signs in."""
        await self.requested("/api/v2/pins/{id}", self.hits["/api/v2/pins/{id}"] + 1)
        for pin in list(self.pins.values()):
            if pin.token is None:
                self.sign_in(pin.code)

    def _alive(self, pin: Pin) -> bool:
        return self.clock() < pin.created + pin.lifetime

    @route("POST", "/api/v2/pins")
    async def create_pin(self, request: web.Request) -> web.StreamResponse:
        client, product = request.headers.get("X-Plex-Client-Identifier"), request.headers.get("X-Plex-Product")
        if not client or not product:
            return _answer(request, {"errors": [{"code": 1000, "message": "X-Plex-Client-Identifier is missing"}]}, 400)
        strong = request.query.get("strong") == "true"
        code = secrets.token_hex(13)[:25] if strong else "".join(secrets.choice(LINK_CODE) for _ in range(4))
        pin = Pin(secrets.randbelow(10**9), code, client, product, self.clock(), 1800 if strong else 900)
        self.pins[pin.id] = pin
        return _answer(request, pin.answer(), 201)

    @route("GET", "/api/v2/pins/{id}")
    async def check_pin(self, request: web.Request) -> web.StreamResponse:
        if self.pin_checks != 200:
            return web.Response(status=self.pin_checks, text="Service Unavailable")
        pin = self.pins.get(int(request.match_info["id"])) if request.match_info["id"].isdigit() else None
        client = request.headers.get("X-Plex-Client-Identifier")
        if pin is None or not self._alive(pin) or pin.client != client:
            return _answer(request, {"errors": [{"code": 1020, "message": "Code not found or expired"}]}, 404)
        return _answer(request, pin.answer(), 200)

    @route("GET", "/api/v2/user")
    async def user_info(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("X-Plex-Token") or request.query.get("X-Plex-Token", "")
        if token in self.revoked:
            return _answer(request, {"errors": [{"code": 1001, "message": "User could not be authenticated"}]}, 422)
        if token not in self.tokens:
            return _answer(request, {"errors": [{"code": 1001, "message": "User could not be authenticated"}]}, 401)
        user = {"id": 4242, "uuid": "d0f1c2", "username": self.user, "title": self.user, "email": "fan@example.org"}
        return _answer(request, user, 200)

    @route("GET", "/api/v2/resources")
    async def resources(self, request: web.Request) -> web.StreamResponse:
        """The account's devices; servers provide `server`. An owned server's accessToken is the account's."""
        token = request.headers.get("X-Plex-Token") or request.query.get("X-Plex-Token", "")
        if token not in self.tokens or token in self.revoked:
            return _answer(request, {"errors": [{"code": 1001, "message": "User could not be authenticated"}]}, 401)
        listed = [resource.answer(token) for resource in self.servers]
        player = {"name": "Phone", "provides": "player", "owned": True, "connections": [], "clientIdentifier": "p1"}
        return web.json_response([*listed, player])

    @route("GET", "/auth")
    async def sign_in_page(self, request: web.Request) -> web.StreamResponse:
        """app.plex.tv/auth#?clientID=…&code=…&forwardUrl=…: the fragment is read by the page, never sent."""
        auto = "true" if self.consent == "allow" else "false"
        return web.Response(
            text=SIGN_IN_PAGE.replace("AUTO", auto).replace("USER", escape(self.user)), content_type="text/html"
        )

    @route("POST", "/auth/sign-in")
    async def signed_in(self, request: web.Request) -> web.StreamResponse:
        """The page's form: sign the PIN in, then send the browser to forwardUrl (which says only "done")."""
        form = await request.post()
        try:
            self.sign_in(str(form.get("code", "")))
        except StopIteration:
            return web.Response(status=404, text="This PIN is unknown or expired.")
        forward = str(form.get("forwardUrl") or "")
        if forward:
            raise web.HTTPSeeOther(forward)
        page = "<!doctype html><h1>Signed in: go back to the terminal.</h1>"
        return web.Response(text=page, content_type="text/html")

    @route("GET", "/link")
    async def link(self, request: web.Request) -> web.StreamResponse:
        """plex.tv/link: where the user types the 4-character code."""
        page = (
            "<!doctype html><title>Plex stand-in: link</title><h1>Link an app</h1>"
            "<form action=/link/decide><input name=code autofocus maxlength=4> <button>Link</button></form>"
        )
        return web.Response(text=page, content_type="text/html")

    @route("GET", "/link/decide")
    async def link_decide(self, request: web.Request) -> web.StreamResponse:
        try:
            self.sign_in(request.query.get("code", "").strip())
        except StopIteration:
            return web.Response(status=404, text="No such code: check it and try again.")
        return web.Response(text="<!doctype html><h1>Linked: go back to the terminal.</h1>", content_type="text/html")


SIGN_IN_PAGE = """<!doctype html><meta charset=utf-8><title>Plex stand-in: sign in</title>
<h1>Sign in to Plex</h1><p>This is malcapture's built-in stand-in for Plex; nothing leaves your machine.</p>
<form id=signin method=post action=/auth/sign-in>
<input type=hidden name=code><input type=hidden name=clientID><input type=hidden name=forwardUrl>
<button>Sign in as USER</button></form>
<script>
const params = new URLSearchParams(location.hash.replace(/^#!?\\??/, ""));
const form = document.getElementById("signin");
for (const name of ["code", "clientID", "forwardUrl"]) { form.elements[name].value = params.get(name) || ""; }
if (AUTO) { form.submit(); }
</script>
"""


class Connection(NamedTuple):
    """One way plex.tv says a server can be reached."""

    uri: str
    local: bool = True
    relay: bool = False

    def answer(self) -> dict[str, Any]:
        parts = urlsplit(self.uri)
        return {
            "protocol": parts.scheme,
            "address": parts.hostname,
            "port": parts.port,
            "uri": self.uri,
            "local": self.local,
            "relay": self.relay,
            "IPv6": ":" in (parts.hostname or ""),
        }


@dataclass
class Resource:
    name: str
    machine: str
    owned: bool
    token: str | None  # a shared server's own token (an owned one's is the account's)
    connections: list[Connection]

    def answer(self, account_token: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "product": "Plex Media Server",
            "provides": "server",
            "clientIdentifier": self.machine,
            "owned": self.owned,
            "accessToken": self.token or account_token,
            "publicAddressMatches": True,
            "presence": True,
            "connections": [connection.answer() for connection in self.connections],
        }


def _answer(request: web.Request, data: dict[str, Any], status: int) -> web.StreamResponse:
    """JSON when asked for it, else XML, as plex.tv answers."""
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response(data, status=status)
    shown = " ".join(
        f"{k}={quoteattr(str(v))}" for k, v in data.items() if not isinstance(v, (dict, list)) and v is not None
    )
    return web.Response(
        text=f'<?xml version="1.0" encoding="UTF-8"?>\n<pin {shown}/>\n', status=status, content_type="text/xml"
    )
