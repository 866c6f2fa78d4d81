"""MyAnimeList's token endpoint and users/@me, with its failures put into plain words."""

from __future__ import annotations

import json

from malcapture.endpoints import Endpoints
from malcapture.errors import MalError
from malcapture.http import HttpClient, json_object, titled, token_set
from malcapture.sections import MAL
from malcapture.tokens import TokenSet

RUN_AGAIN = "Codes work once and only for minutes: run malcapture again."
AUTHORIZE_AGAIN = (
    "The refresh token no longer works (each one works once, and they expire after about a month): "
    "run `malcapture` to authorize again."
)


class MalClient(HttpClient[Endpoints]):
    """MyAnimeList's token endpoint and users/@me."""

    @property
    def warm_urls(self) -> tuple[str, ...]:
        """The connections the code exchange and the account check will use."""
        return (f"{self.endpoints.oauth}/token", f"{self.endpoints.api}/users/@me")

    async def exchange_code(
        self, client_id: str, client_secret: str | None, code: str, verifier: str, redirect_uri: str | None
    ) -> TokenSet:
        form = {
            "client_id": client_id,
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
        }
        if client_secret:
            form["client_secret"] = client_secret
        if redirect_uri is not None:
            form["redirect_uri"] = redirect_uri
        return await self._token(form, "code exchange")

    async def refresh(self, client_id: str, client_secret: str | None, refresh_token: str) -> TokenSet:
        form = {"client_id": client_id, "grant_type": "refresh_token", "refresh_token": refresh_token}
        if client_secret:
            form["client_secret"] = client_secret
        return await self._token(form, "refresh")

    async def whoami(self, access_token: str) -> str:
        url = f"{self.endpoints.api}/users/@me"
        status, body, kind, _ = await self.send(
            "GET", url, "account check", idempotent=True, headers={"Authorization": f"Bearer {access_token}"}
        )
        if status != 200:
            raise explain_failure(status, body, kind, "account check", url)
        data = json_object(body, MAL.title)
        return str(data.get("name") or f"user {data.get('id', '?')}")

    async def _token(self, form: dict[str, str], action: str) -> TokenSet:
        url = f"{self.endpoints.oauth}/token"
        status, body, kind, _ = await self.send("POST", url, action, idempotent=False, data=form)
        if status != 200:
            raise explain_failure(status, body, kind, action, url)
        return token_set(body, MAL, action)


def explain_failure(status: int, body: str, kind: str, action: str, url: str) -> MalError:
    try:
        data = json.loads(body) if "json" in kind or body.lstrip().startswith("{") else None
    except ValueError:
        data = None
    if isinstance(data, dict) and "error" in data:
        error, message, hint = (str(data.get(k) or "") for k in ("error", "message", "hint"))
        said = " ".join(part if part.endswith((".", "!", "?")) else f"{part}." for part in (message, hint) if part)
        return MalError(
            f"MyAnimeList refused the {action}: HTTP {status} {error}" + (f" — {said}" if said else ""),
            _advice(status, error, f"{message} {hint}".lower(), action),
        )
    if "html" in kind or body.lstrip().lower().startswith(("<!doctype", "<html")):
        named = titled(body)
        return MalError(
            f"MyAnimeList answered the {action} with HTTP {status} and a web page{named} instead of JSON.",
            "MyAnimeList may be down for maintenance or blocking this network: try again later.",
        )
    return MalError(
        f"MyAnimeList answered the {action} with HTTP {status} ({kind or 'no content type'}).",
        "Try again later." if status >= 500 else "Run with -v to see the exchange.",
    )


def _advice(status: int, error: str, words: str, action: str) -> str:
    if error == "invalid_client":
        return (
            "Check the client ID and secret at https://myanimelist.net/apiconfig, "
            "and that the app type is web (only web apps get a secret)."
        )
    if "redirect" in words:
        return (
            "The redirect URL must match one registered in your MAL app exactly (scheme, host, port, "
            "path, trailing slash): register it, or pass the registered one with --redirect-uri."
        )
    if error == "invalid_token":
        return "The access token was refused: run `malcapture refresh` (or `malcapture` to authorize again)."
    if "not linked to client" in words:
        return (
            "The refresh token was issued to another MAL app than this client ID: put back the client ID "
            "it was issued to, or run `malcapture` to authorize again."
        )
    if action == "refresh" and ("refresh token" in words or "token" in words):
        return AUTHORIZE_AGAIN
    if any(w in words for w in ("expired", "revoked", "code_verifier", "not issued", "authorization code")):
        return RUN_AGAIN
    if status >= 500:
        return "MyAnimeList had a problem of its own: try again in a few minutes."
    return "Run again with -v to see the exchange; if it persists, run `malcapture` to authorize again."
