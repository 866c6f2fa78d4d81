"""A stand-in for MyAnimeList's OAuth and users/@me, as ../shared/MAL-OAUTH.md describes it.

Used by `malcapture demo` and by the tests: one faithful fake. It refuses what MAL refuses
(a redirect URL not registered exactly, a second use of a code, a wrong verifier, a missing
secret, S256), checks the client before the grant (as league/oauth2-server does), and rotates
refresh tokens. `script()` makes the next answers fail on purpose.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web

from malcapture.login.ports import free_port
from malcapture.standins.base import Code, Demo, StandIn, basic_credentials, clicking_allow, route, serve_app

if TYPE_CHECKING:
    from malcapture.login.contract import LoginOptions

CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
INVALID_GRANT = (
    "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token "
    "is invalid, expired, revoked, does not match the redirection URI used in the authorization request, "
    "or was issued to another client."
)
MISSING = "The request is missing a required parameter."  # league/oauth2-server's words for most 400s
DENIED = {
    "error": "access_denied",
    "message": "The resource owner or authorization server denied the request.",
    "hint": "The user denied the request",
}


@dataclass
class App:
    client_id: str
    secret: str | None  # None: an app of type "other"/android/iOS, which has no secret
    redirect_uris: list[str]


@dataclass
class Grant(Code):
    """MyAnimeList's code also remembers the PKCE challenge and whether the redirect URL was sent."""

    challenge: str = ""
    sent_redirect: bool = False


@dataclass
class FakeMal(StandIn):
    user: str = "kometa_fan"
    user_id: int = 1234567
    access_lifetime: int = 2678400
    consent: str = "ask"  # "ask": a page with Allow and Deny; "allow"/"deny": answer at once
    apps: dict[str, App] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token → client_id (live ones)
    access_tokens: dict[str, float] = field(default_factory=dict)  # token → expiry
    last_token_form: dict[str, str] = field(default_factory=dict)
    pending: dict[str, dict[str, str]] = field(default_factory=dict)

    def register(self, redirect_uri: str = "http://localhost/", secret: bool = True) -> App:
        app = App(secrets.token_hex(16), secrets.token_hex(32) if secret else None, [redirect_uri])
        self.apps[app.client_id] = app
        return app

    def issue_tokens(self, client_id: str) -> dict[str, str | int]:
        access = self._jwt(client_id)
        refresh = "def50200" + secrets.token_hex(380)
        self.access_tokens[access] = self.clock() + self.access_lifetime
        self.refresh_tokens[refresh] = client_id
        return {
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
            "access_token": access,
            "refresh_token": refresh,
        }

    def _jwt(self, client_id: str) -> str:
        def part(data: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        now, jti = int(self.clock()), secrets.token_hex(40)
        header = part({"typ": "JWT", "alg": "RS256", "jti": jti})
        payload = part(
            {
                "aud": client_id,
                "jti": jti,
                "iat": now,
                "nbf": now,
                "exp": now + self.access_lifetime,
                "sub": str(self.user_id),
                "scopes": [],
            }
        )
        signature = base64.urlsafe_b64encode(secrets.token_bytes(512)).rstrip(b"=").decode()
        return f"{header}.{payload}.{signature}"

    @route("GET", "/v1/oauth2/authorize")
    async def authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        app = self.apps.get(q.get("client_id", ""))
        sent = q.get("redirect_uri")
        if app is None or (sent is not None and sent not in app.redirect_uris):
            # MAL shows this as an HTTP Basic password popup that keeps coming back.
            return error(
                401,
                "invalid_client",
                "Client authentication failed",
                headers={"WWW-Authenticate": 'Basic realm="OAuth"'},
            )
        if q.get("response_type") != "code":
            return error(400, "unsupported_response_type", "The authorization grant type is not supported.")
        if q.get("code_challenge_method", "plain") != "plain":
            return missing("Code challenge method must be `plain`")
        if not CHALLENGE.fullmatch(q.get("code_challenge", "")):
            return missing("Check the `code_challenge` parameter")
        redirect = sent if sent is not None else app.redirect_uris[0]
        txn = secrets.token_urlsafe(16)
        self.pending[txn] = {
            "client_id": app.client_id,
            "challenge": q["code_challenge"],
            "redirect": redirect,
            "sent": "1" if sent is not None else "",
            "state": q.get("state", ""),
        }
        if self.consent != "ask":
            raise web.HTTPFound(self._decision(txn, self.consent == "allow"))
        return web.Response(text=consent_page(txn, app.client_id), content_type="text/html")

    @route("GET", "/v1/oauth2/authorize/decide")
    async def decide(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("txn") not in self.pending:
            return error(400, "invalid_request", "This authorization request is no longer valid.")
        raise web.HTTPFound(self._decision(request.query["txn"], request.query.get("choice") == "allow"))

    def _decision(self, txn: str, allow: bool) -> str:
        p = self.pending.pop(txn)
        state = {"state": p["state"]} if p["state"] else {}
        if not allow:
            return f"{p['redirect']}?{urlencode({**state, **DENIED})}"
        code = secrets.token_hex(521)  # 1,042 hex characters, like a real one
        self.grants[code] = Grant(
            p["client_id"], p["redirect"], self.clock() + 600, False, p["challenge"], bool(p["sent"])
        )
        return f"{p['redirect']}?{urlencode({'code': code, **state})}"

    @route("POST", "/v1/oauth2/token")
    async def token(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/x-www-form-urlencoded":
            return missing("Check the `grant_type` parameter")
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.last_token_form = form
        client_id, secret = basic_credentials(request) or (form.get("client_id", ""), form.get("client_secret"))
        app = self.apps.get(client_id)
        if app is None or (app.secret is not None and secret != app.secret):
            return error(401, "invalid_client", "Client authentication failed")
        if form.get("grant_type") == "authorization_code":
            return self._code_grant(app, form)
        if form.get("grant_type") == "refresh_token":
            return self._refresh_grant(app, form)
        return error(
            400, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server."
        )

    def _code_grant(self, app: App, form: dict[str, str]) -> web.Response:
        grant = self.grants.get(form.get("code", ""))
        if grant is None:
            return missing("Cannot decrypt the authorization code")
        if grant.used:
            return missing("Authorization code has been revoked")
        if grant.expires < self.clock():
            return missing("Authorization code has expired")
        if grant.client_id != app.client_id:
            return missing("Authorization code was not issued to this client")
        if grant.sent_redirect and form.get("redirect_uri") != grant.redirect_uri:
            return missing("Invalid redirect URI")
        if "code_verifier" not in form:
            return missing("Check the `code_verifier` parameter")
        if form["code_verifier"] != grant.challenge:
            return error(400, "invalid_grant", INVALID_GRANT, "Failed to verify `code_verifier`.")
        grant.used = True
        return web.json_response(self.issue_tokens(app.client_id))

    def _refresh_grant(self, app: App, form: dict[str, str]) -> web.Response:
        sent = form.get("refresh_token", "")
        owner = self.refresh_tokens.get(sent)
        if owner is None:
            hint = "Token has been revoked" if sent.startswith("def50200") else "Cannot decrypt the refresh token"
            return error(401, "invalid_request", "The refresh token is invalid.", hint)
        if owner != app.client_id:
            return error(401, "invalid_request", "The refresh token is invalid.", "Token is not linked to client")
        del self.refresh_tokens[form["refresh_token"]]  # rotation: the old one dies now
        return web.json_response(self.issue_tokens(app.client_id))

    @route("GET", "/v2/users/@me")
    async def me(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.access_tokens.get(token, 0) < self.clock():
            return web.json_response(
                {"error": "invalid_token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="api.myanimelist.net", error="invalid_token"'},
            )
        return web.json_response(
            {"id": self.user_id, "name": self.user, "picture": "", "joined_at": "2014-03-12T00:00:00+00:00"}
        )


def error(status: int, name: str, message: str, hint: str = "", headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": name, "message": message, "hint": hint}, status=status, headers=headers)


def missing(hint: str) -> web.Response:
    """league/oauth2-server's 400 for most things wrong with a request: the same message, a hint of its own."""
    return error(400, "invalid_request", MISSING, hint)


def consent_page(txn: str, client_id: str) -> str:
    allow = escape(f"/v1/oauth2/authorize/decide?{urlencode({'txn': txn, 'choice': 'allow'})}")
    deny = escape(f"/v1/oauth2/authorize/decide?{urlencode({'txn': txn, 'choice': 'deny'})}")
    return (
        "<!doctype html><title>MyAnimeList stand-in — authorize</title>"
        f"<h1>Allow the app {escape(client_id[:8])}… to use your MyAnimeList account?</h1>"
        "<p>This is malcapture's built-in stand-in for MyAnimeList; nothing leaves your machine.</p>"
        f'<p><a id="allow" href="{allow}">Allow</a> &nbsp; <a id="deny" href="{deny}">Deny</a></p>'
    )


async def serve(
    fake: FakeMal, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, str]:
    """Start the stand-in on loopback; returns the runner (to clean up) and its base URL."""
    return await serve_app(fake.application(), host, port, tls)


def env_for(base: str) -> dict[str, str]:
    """The variables that point malcapture's MyAnimeList side at the stand-in."""
    return {"MALCAPTURE_OAUTH_URL": f"{base}/v1/oauth2", "MALCAPTURE_API_URL": f"{base}/v2"}


@contextlib.asynccontextmanager
async def demo() -> AsyncIterator[Demo]:
    fake = FakeMal()
    runner, base = await serve(fake)

    def options(config: Path, headless: bool) -> LoginOptions:
        from malcapture.login.contract import LoginOptions
        from malcapture.services import MYANIMELIST

        redirect = f"http://localhost:{free_port()}/"
        app = fake.register(redirect)
        return LoginOptions(
            config, MYANIMELIST, app.client_id, app.secret, redirect_uri=redirect, timeout=120, yes=True
        )

    try:
        yield Demo(env_for(base), "the loopback login", fake, options, clicking_allow)
    finally:
        await runner.cleanup()
