"""A stand-in for Trakt's OAuth and /users/settings, as ../shared/TRAKT-OAUTH.md describes it.

Used by `malcapture demo` and by the tests. One aiohttp app serves what auth.trakt.tv, api.trakt.tv
and trakt.tv serve. It keeps Trakt's rules: the device flow's status codes and interval (`code`,
not `device_code`), single-use codes and PINs, redirect URIs matched exactly, refresh tokens that
work once, 24-hour tokens, `trakt-api-key` and `trakt-api-version` required on the API, 429 with
`Retry-After`, and 403 for an app that was deleted.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from malcapture.standins.base import Code, Demo, StandIn, route, serve_app

if TYPE_CHECKING:
    from malcapture.login.contract import LoginOptions

OOB = "urn:ietf:wg:oauth:2.0:oob"
DAY = 86400
CLIENT_FAILED = (
    "Client authentication failed due to unknown client, no client authentication included, or unsupported "
    "authentication method."
)
MISSING = (
    "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed."
)
INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used "
    "in the authorization request, or was issued to another client."
)


@dataclass
class TraktApp:
    client_id: str
    secret: str
    redirect_uris: list[str]


@dataclass
class Device:
    client_id: str
    user_code: str
    expires: float
    interval: int
    last_poll: float = 0.0
    decision: str | None = None  # "allow", "deny"
    used: bool = False


@dataclass
class FakeTrakt(StandIn):
    user: str = "kometa_fan"
    access_lifetime: int = DAY
    device_lifetime: int = 600
    interval: int = 1
    account: int = 200  # what /users/settings answers a good token with: 200, or 410 (deactivated), 423 (locked)
    enforced_interval: float | None = None  # stricter than the interval it announces: polls get 429 until slower
    slowed: int = 0  # how many 429s it gave
    apps: dict[str, TraktApp] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)  # client IDs of deleted apps: 403 everywhere
    devices: dict[str, Device] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token → client_id (live ones)
    access_tokens: dict[str, float] = field(default_factory=dict)  # token → expiry
    last_token_body: dict[str, Any] = field(default_factory=dict)

    def register(self, *redirect_uris: str) -> TraktApp:
        app = TraktApp(secrets.token_hex(32), secrets.token_hex(32), list(redirect_uris) or [OOB])
        self.apps[app.client_id] = app
        return app

    async def approve_when_shown(self) -> None:
        """The user, on another device: sees the code, enters it at Trakt, approves."""
        await self.requested("/oauth/device/token", self.hits["/oauth/device/token"] + 1)  # polled: it was shown
        for device in self.devices.values():
            device.decision = "allow"

    def decide(self, user_code: str, choice: str = "allow") -> None:
        """What the user does on trakt.tv/activate: enter the code, then approve or deny."""
        device = next(d for d in self.devices.values() if d.user_code == user_code)
        device.decision = choice

    def issue_tokens(self, client_id: str) -> dict[str, Any]:
        access, refresh = secrets.token_hex(32), secrets.token_hex(32)
        self.access_tokens[access] = self.clock() + self.access_lifetime
        self.refresh_tokens[refresh] = client_id
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.access_lifetime,
            "refresh_token": refresh,
            "scope": "public",
            "created_at": int(self.clock()),
        }

    def _app(self, client_id: object) -> TraktApp:
        """The app with this client ID; Trakt's 403 for one it does not know or has deleted."""
        if client_id in self.deleted or client_id not in self.apps:
            raise web.HTTPForbidden(text='{"error": "forbidden"}', content_type="application/json")
        return self.apps[str(client_id)]

    @route("POST", "/oauth/device/code")
    async def device_code(self, request: web.Request) -> web.Response:
        body = await _json(request)
        app = self._app(body.get("client_id"))
        code, user_code = secrets.token_hex(32), secrets.token_hex(4).upper()
        self.devices[code] = Device(app.client_id, user_code, self.clock() + self.device_lifetime, self.interval)
        answer = {
            "device_code": code,
            "user_code": user_code,
            "verification_url": f"{request.url.origin()}/activate",
            "expires_in": self.device_lifetime,
            "interval": self.interval,
        }
        return web.json_response(answer)

    @route("POST", "/oauth/device/token")
    async def device_token(self, request: web.Request) -> web.Response:
        body = await _json(request)
        app = self._app(body.get("client_id"))
        device = self.devices.get(str(body.get("code")))  # Trakt's field is `code`, not RFC 8628's `device_code`
        if device is None or device.client_id != app.client_id or body.get("client_secret") != app.secret:
            return web.Response(status=404)
        now = self.clock()
        if device.used:
            return web.Response(status=409)
        if now > device.expires:
            return web.Response(status=410)
        required = self.enforced_interval or device.interval
        if now - device.last_poll < required * 0.9:
            device.last_poll = now
            self.slowed += 1
            return web.Response(status=429, headers={"Retry-After": f"{required:g}"})
        device.last_poll = now
        if device.decision == "deny":
            return web.Response(status=418)
        if device.decision != "allow":
            return web.Response(status=400)
        device.used = True
        return web.json_response(self.issue_tokens(app.client_id))

    @route("GET", "/activate")
    async def activate(self, request: web.Request) -> web.Response:
        """trakt.tv/activate: where the user types the code shown by the device."""
        page = (
            "<!doctype html><title>Trakt stand-in: activate</title><h1>Enter the code</h1>"
            "<form action=/activate/decide><input name=user_code autofocus> "
            "<button name=choice value=allow>Approve</button> <button name=choice value=deny>Deny</button></form>"
        )
        return web.Response(text=page, content_type="text/html")

    @route("GET", "/activate/decide")
    async def activate_decide(self, request: web.Request) -> web.Response:
        code, choice = request.query.get("user_code", "").strip().upper(), request.query.get("choice", "allow")
        if not any(device.user_code == code for device in self.devices.values()):
            return web.Response(status=404, text="No such code: check it and try again.")
        self.decide(code, choice)
        said = "approved: go back to the terminal" if choice == "allow" else "denied"
        return web.Response(text=f"<!doctype html><h1>Code {escape(code)} {said}.</h1>", content_type="text/html")

    @route("GET", "/oauth/authorize")
    async def authorize(self, request: web.Request) -> web.StreamResponse:
        """trakt.tv/oauth/authorize: a PIN page for the oob URI, else a redirect (the user said yes)."""
        q = request.query
        app = self._app(q.get("client_id"))
        redirect = q.get("redirect_uri", "")
        if q.get("response_type") != "code" or redirect not in app.redirect_uris:
            return web.Response(status=400, text="The redirect uri included is not valid.")
        code = secrets.token_hex(4).upper() if redirect == OOB else secrets.token_hex(32)
        self.codes[code] = Code(app.client_id, redirect, self.clock() + 600)
        if redirect == OOB:
            page = f"<html><body><h1>Your PIN</h1><code id=pin>{escape(code)}</code></body></html>"
            return web.Response(text=page, content_type="text/html")
        query = {"code": code, **({"state": q["state"]} if "state" in q else {})}
        raise web.HTTPFound(f"{redirect}?{urlencode(query)}")

    @route("POST", "/oauth/token")
    async def token(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self.last_token_body = body
        app = self._app(body.get("client_id"))
        if body.get("grant_type") == "refresh_token":  # Doorkeeper checks this grant's token before the client
            token = str(body.get("refresh_token"))
            if token not in self.refresh_tokens:
                return _refused("invalid_grant", INVALID_GRANT)
            if body.get("client_secret") != app.secret:
                return _refused("invalid_client", CLIENT_FAILED)
            if self.refresh_tokens[token] != app.client_id:
                return _refused("invalid_grant", INVALID_GRANT)
            del self.refresh_tokens[token]  # single-use since 2026
            return web.json_response(self.issue_tokens(app.client_id))
        if not body.get("redirect_uri"):  # and the code grant's parameters, then the client, then the grant
            return web.json_response({"error": "invalid_request", "error_description": MISSING}, status=400)
        if body.get("client_secret") != app.secret:
            return _refused("invalid_client", CLIENT_FAILED)
        given = str(body.get("code", ""))
        code = self.codes.get(given) or self.codes.get(given.upper())  # PINs are case insensitive
        if code is None or code.used or self.clock() > code.expires or code.client_id != app.client_id:
            return _refused("invalid_grant", INVALID_GRANT)
        if body.get("redirect_uri") != code.redirect_uri:
            return _refused("invalid_grant", INVALID_GRANT)
        code.used = True
        return web.json_response(self.issue_tokens(app.client_id))

    @route("GET", "/users/settings")
    async def settings(self, request: web.Request) -> web.Response:
        if request.headers.get("trakt-api-version") != "2":
            return web.json_response({"error": "trakt-api-version header missing"}, status=400)
        self._app(request.headers.get("trakt-api-key"))  # an unknown or deleted app gets the 403
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.access_tokens.get(token, 0) < self.clock():
            return web.json_response({"error": "invalid_token"}, status=401)
        if self.account != 200:
            return web.Response(status=self.account)
        return web.json_response({"user": {"username": self.user, "vip": False}, "account": {"timezone": "UTC"}})


def _refused(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=401)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def serve(fake: FakeTrakt, host: str = "127.0.0.1") -> tuple[web.AppRunner, str]:
    """Start the stand-in on loopback; returns the runner (to clean up) and its base URL."""
    return await serve_app(fake.application(), host)


def env_for(base: str) -> dict[str, str]:
    """The variables that point malcapture's Trakt side at the stand-in."""
    return {"MALCAPTURE_TRAKT_AUTH_URL": base, "MALCAPTURE_TRAKT_API_URL": base, "MALCAPTURE_TRAKT_URL": base}


@contextlib.asynccontextmanager
async def demo() -> AsyncIterator[Demo]:
    fake = FakeTrakt()
    runner, base = await serve(fake)

    def options(config: Path, headless: bool) -> LoginOptions:
        from malcapture.login.contract import LoginOptions
        from malcapture.services import TRAKT

        app = fake.register()
        return LoginOptions(config, TRAKT, app.client_id, app.secret, timeout=120, yes=True)

    try:
        yield Demo(env_for(base), "the device flow", fake, options, lambda io: fake.approve_when_shown())
    finally:
        await runner.cleanup()
