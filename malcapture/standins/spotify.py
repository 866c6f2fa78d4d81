"""A stand-in for Spotify's accounts service and /v1/me, as ../shared/SPOTIFY-OAUTH.md describes them.

It refuses what Spotify refuses: a redirect URI not registered exactly (its own error page, no
redirect), `localhost`, a code used twice or sent with another redirect URI, a wrong PKCE verifier,
a wrong client; it checks the client before the grant; it rotates refresh tokens only when told
(`rotate`), as Spotify does now and then; /v1/me answers 403 to a user outside a development-mode
app's allowlist. `script()` makes the next answers fail on purpose.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from malcapture.login.pkce import s256
from malcapture.login.ports import free_port
from malcapture.standins.base import Code, Demo, StandIn, basic_credentials, clicking_allow, route, serve_app

if TYPE_CHECKING:
    from malcapture.login.contract import LoginOptions


@dataclass
class SpotifyApp:
    client_id: str
    secret: str
    redirect_uris: list[str]
    allowlist: set[str] | None = None  # development mode: the users it serves (None: extended quota, everyone)


@dataclass
class Grant(Code):
    challenge: str | None = None  # the S256 challenge of the authorize request, if it sent one
    scope: str = ""


@dataclass
class FakeSpotify(StandIn):
    user: str = "kometa_listener"
    display_name: str = "Kometa Listener"
    access_lifetime: int = 3600
    consent: str = "ask"  # "ask": a page with Agree and Cancel; "allow"/"deny": answer at once
    rotate: bool = False  # a refresh answer carries a new refresh token (Spotify's sometimes do)
    granted: str | None = None  # the scopes granted, when not those asked for
    apps: dict[str, SpotifyApp] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token → (client_id, scope)
    access_tokens: dict[str, float] = field(default_factory=dict)  # token → expiry
    pending: dict[str, dict[str, str]] = field(default_factory=dict)
    last_token_form: dict[str, str] = field(default_factory=dict)

    def register(self, redirect_uri: str, allowlist: set[str] | None = None) -> SpotifyApp:
        app = SpotifyApp(secrets.token_hex(16), secrets.token_hex(16), [redirect_uri], allowlist)
        self.apps[app.client_id] = app
        return app

    def issue_tokens(self, client_id: str, scope: str, refresh: bool = True) -> dict[str, str | int]:
        access = "BQ" + secrets.token_urlsafe(150)
        self.access_tokens[access] = self.clock() + self.access_lifetime
        answer: dict[str, str | int] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
        }
        if refresh:
            token = "AQ" + secrets.token_urlsafe(100)
            self.refresh_tokens[token] = (client_id, scope)
            answer["refresh_token"] = token
        answer["scope"] = scope
        return answer

    @route("GET", "/authorize")
    async def authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        app = self.apps.get(q.get("client_id", ""))
        if app is None:
            return _error_page("INVALID_CLIENT: Invalid client")
        redirect = q.get("redirect_uri", "")
        if redirect not in app.redirect_uris or urlsplit(redirect).hostname == "localhost":
            return _error_page("INVALID_CLIENT: Invalid redirect URI")  # no redirect: Spotify's own page
        state = {"state": q["state"]} if "state" in q else {}
        if q.get("response_type") != "code":
            raise web.HTTPFound(f"{redirect}?{urlencode({'error': 'unsupported_response_type', **state})}")
        method = q.get("code_challenge_method")
        if method not in (None, "S256") or (method and not q.get("code_challenge")):
            raise web.HTTPFound(f"{redirect}?{urlencode({'error': 'invalid_request', **state})}")
        txn = secrets.token_urlsafe(16)
        self.pending[txn] = {
            "client_id": app.client_id,
            "redirect": redirect,
            "challenge": q.get("code_challenge", ""),
            "scope": self.granted if self.granted is not None else q.get("scope", ""),
            **state,
        }
        if self.consent != "ask":
            raise web.HTTPFound(self._decision(txn, self.consent == "allow"))
        return web.Response(text=_consent_page(txn), content_type="text/html")

    @route("GET", "/authorize/decide")
    async def decide(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("txn") not in self.pending:
            return _error_page("This authorization request is no longer valid.")
        raise web.HTTPFound(self._decision(request.query["txn"], request.query.get("choice") == "allow"))

    def _decision(self, txn: str, allow: bool) -> str:
        p = self.pending.pop(txn)
        state = {"state": p["state"]} if "state" in p else {}
        if not allow:
            return f"{p['redirect']}?{urlencode({'error': 'access_denied', **state})}"
        code = "AQ" + secrets.token_urlsafe(180)
        self.grants[code] = Grant(
            p["client_id"], p["redirect"], self.clock() + 600, False, p["challenge"] or None, p["scope"]
        )
        return f"{p['redirect']}?{urlencode({'code': code, **state})}"

    @route("POST", "/api/token")
    async def token(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.last_token_form = form
        client_id, secret = basic_credentials(request) or (form.get("client_id", ""), None)
        app = self.apps.get(client_id)
        if app is None:
            return _refused(400, "invalid_client", "Invalid client")
        if secret is None and not form.get("code_verifier"):
            return _refused(400, "invalid_client", "Invalid client secret")
        if secret is not None and secret != app.secret:
            return _refused(400, "invalid_client", "Invalid client secret")
        if form.get("grant_type") == "authorization_code":
            return self._code_grant(app, form)
        if form.get("grant_type") == "refresh_token":
            return self._refresh_grant(app, form)
        return _refused(400, "unsupported_grant_type", "grant_type parameter is missing")

    def _code_grant(self, app: SpotifyApp, form: dict[str, str]) -> web.Response:
        grant = self.grants.get(form.get("code", ""))
        if grant is None or grant.client_id != app.client_id:
            return _refused(400, "invalid_grant", "Invalid authorization code")
        if grant.used or grant.expires < self.clock():
            return _refused(400, "invalid_grant", "Authorization code expired")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _refused(400, "invalid_grant", "Invalid redirect URI")
        if grant.challenge is not None and s256(form.get("code_verifier", "")) != grant.challenge:
            return _refused(400, "invalid_grant", "code_verifier was incorrect")
        grant.used = True
        return web.json_response(self.issue_tokens(app.client_id, grant.scope))

    def _refresh_grant(self, app: SpotifyApp, form: dict[str, str]) -> web.Response:
        sent = form.get("refresh_token", "")
        owner = self.refresh_tokens.get(sent)
        if owner is None or owner[0] != app.client_id:
            return _refused(400, "invalid_grant", "Invalid refresh token")
        if self.rotate:
            del self.refresh_tokens[sent]
        return web.json_response(self.issue_tokens(app.client_id, owner[1], refresh=self.rotate))

    @route("GET", "/v1/me")
    async def me(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.access_tokens.get(token, 0) < self.clock():
            return web.json_response({"error": {"status": 401, "message": "Invalid access token"}}, status=401)
        allowlists = [app.allowlist for app in self.apps.values() if app.allowlist is not None]
        if any(self.user not in allowed for allowed in allowlists):
            message = "Check settings on developer.spotify.com/dashboard, the user may not be registered."
            return web.json_response({"error": {"status": 403, "message": message}}, status=403)
        return web.json_response(
            {"id": self.user, "display_name": self.display_name, "type": "user", "uri": f"spotify:user:{self.user}"}
        )


def _refused(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def _error_page(message: str) -> web.Response:
    return web.Response(
        status=400,
        text=f"<!doctype html><title>Error</title><h1>{escape(message)}</h1>",
        content_type="text/html",
    )


def _consent_page(txn: str) -> str:
    allow = escape(f"/authorize/decide?{urlencode({'txn': txn, 'choice': 'allow'})}")
    deny = escape(f"/authorize/decide?{urlencode({'txn': txn, 'choice': 'deny'})}")
    return (
        "<!doctype html><title>Spotify stand-in — authorize</title>"
        "<h1>Allow Kometa to read your playlists, library, recently played and top items?</h1>"
        "<p>This is malcapture's built-in stand-in for Spotify; nothing leaves your machine.</p>"
        f'<p><a id="allow" href="{allow}">Agree</a> &nbsp; <a id="deny" href="{deny}">Cancel</a></p>'
    )


async def serve(fake: FakeSpotify, host: str = "127.0.0.1") -> tuple[web.AppRunner, str]:
    """Start the stand-in on loopback; returns the runner (to clean up) and its base URL."""
    return await serve_app(fake.application(), host)


def env_for(base: str) -> dict[str, str]:
    """The variables that point malcapture's Spotify side at the stand-in."""
    return {"MALCAPTURE_SPOTIFY_ACCOUNTS_URL": base, "MALCAPTURE_SPOTIFY_API_URL": f"{base}/v1"}


@contextlib.asynccontextmanager
async def demo() -> AsyncIterator[Demo]:
    fake = FakeSpotify()
    runner, base = await serve(fake)

    def options(config: Path, headless: bool) -> LoginOptions:
        from malcapture.login.contract import LoginOptions
        from malcapture.services import SPOTIFY

        redirect = f"http://127.0.0.1:{free_port()}/callback"
        app = fake.register(redirect)
        return LoginOptions(config, SPOTIFY, app.client_id, app.secret, redirect_uri=redirect, timeout=120, yes=True)

    try:
        yield Demo(env_for(base), "the loopback login (the redirect to 127.0.0.1)", fake, options, clicking_allow)
    finally:
        await runner.cleanup()
