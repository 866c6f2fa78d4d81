"""Spotify: the loopback login with PKCE S256 (Kometa's exact redirect URI), its token endpoint and /v1/me.

Facts: ../shared/SPOTIFY-OAUTH.md. The client authenticates with a Basic header, as Kometa does. The
answer is written as Kometa writes it: the answer's keys in its order, then `expires_at`; a refresh
answer without a refresh token keeps the stored one. Kometa re-authorizes when a scope is missing,
so a token without all five does not work for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from malcapture.answers import is_html, issued, json_object, titled
from malcapture.errors import ServiceError
from malcapture.http import Answer, HttpClient
from malcapture.login import loopback
from malcapture.login.contract import Account, ServiceCode, Setup, http_timeout, urls
from malcapture.services import SPOTIFY as SERVICE
from malcapture.tokens import TokenSet

URLS = (
    ("MALCAPTURE_SPOTIFY_ACCOUNTS_URL", "https://accounts.spotify.com"),  # /authorize, /api/token
    ("MALCAPTURE_SPOTIFY_API_URL", "https://api.spotify.com/v1"),  # /me
)
# What Kometa asks for (modules/spotify.py); it authorizes again when the stored scope lacks one.
SCOPES = (
    "playlist-read-private",
    "playlist-read-collaborative",
    "user-library-read",
    "user-read-recently-played",
    "user-top-read",
)
ANSWER_KEYS = ("access_token", "token_type", "expires_in", "refresh_token", "scope")  # what Kometa keeps of it
DASHBOARD = "https://developer.spotify.com/dashboard"
CHECK_APP = f"Check the client ID and secret of your app at {DASHBOARD} (Settings)."
AUTHORIZE_AGAIN = (
    "The refresh token no longer works (revoked, or older than Spotify keeps them, about 6 months): "
    "run `malcapture spotify` to authorize again."
)


def authorize_url(env: Mapping[str, str], client_id: str, verifier: str, state: str, redirect_uri: str | None) -> str:
    """Kometa's request (its five scopes, the exact redirect URI) with PKCE S256 beside the secret."""
    from malcapture.login.pkce import s256

    assert redirect_uri is not None, "Spotify's redirect URI is always sent"
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(SCOPES),
        "state": state,
        "code_challenge_method": "S256",
        "code_challenge": s256(verifier),
    }
    return f"{urls(env, *URLS)[0]}/authorize?{urlencode(params)}"


class SpotifyClient(HttpClient):
    """Spotify's token endpoint (Basic client authentication) and /v1/me."""

    def __init__(self, setup: Setup) -> None:
        super().__init__(http_timeout(setup.env), setup.log, backoff=setup.backoff, sleep=setup.sleep)
        self.accounts, self.api = urls(setup.env, *URLS)
        self.creds = setup.creds
        self.wall = setup.wall

    @property
    def warm_urls(self) -> tuple[str, ...]:
        return (f"{self.accounts}/api/token", f"{self.api}/me")

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str | None) -> TokenSet:
        assert redirect_uri is not None, "Spotify's redirect URI is always sent"
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return await self._token({**form, "code_verifier": verifier}, "code exchange", None)

    async def refresh(self, refresh_token: str) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._token(form, "refresh", refresh_token)

    async def check_secret(self) -> None:
        """A refresh token that cannot exist: the client is checked first, so a wrong secret is its answer."""
        import secrets

        if self.creds is None or not self.creds.client_secret:
            return
        form = {"grant_type": "refresh_token", "refresh_token": f"malcapture-{secrets.token_hex(8)}"}
        try:
            answer = await self._post(form, "check of the client secret")
        except ServiceError as exc:
            self._log(f"the client secret could not be checked: {exc.what}")
            return
        failure = explain(answer, "check of the client secret")
        if "invalid_client" in failure.what:
            raise ServiceError(
                f"{failure.what} — the client ID or secret is wrong, so Spotify would refuse every token request.",
                CHECK_APP,
                answer.status,
            )

    async def verify(self, tokens: Mapping[str, object]) -> Account:
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        answer = await self.send("GET", f"{self.api}/me", "account check", idempotent=True, headers=headers)
        if answer.status != 200:
            raise explain_api(answer, "account check")
        data = json_object(answer, SERVICE.title, "account check")
        missing = missing_scopes(tokens.get("scope"))
        if missing:
            raise ServiceError(
                f"The token lacks the scopes {', '.join(missing)}, so Kometa would ask to authorize again.",
                "Run `malcapture spotify` to authorize Kometa with all five.",
                403,
            )
        name = data.get("display_name") or data.get("id") or "an unnamed Spotify user"
        return Account(str(name))

    async def _token(self, form: dict[str, str], action: str, sent_refresh: str | None) -> TokenSet:
        answer = await self._post(form, action)
        if answer.status != 200:
            raise explain(answer, action)

        def read(data: Mapping[str, Any]) -> TokenSet:
            return read_tokens(data, self.wall(), sent_refresh)

        return issued(answer, SERVICE.title, action, "malcapture spotify", read)

    async def _post(self, form: dict[str, str], action: str) -> Answer:
        import base64

        assert self.creds is not None, "token requests need the app's client ID"
        pair = f"{self.creds.client_id}:{self.creds.client_secret or ''}".encode()
        headers = {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
        url = f"{self.accounts}/api/token"
        return await self.send("POST", url, action, idempotent=False, data=form, headers=headers)


def read_tokens(data: Mapping[str, Any], now: float, sent_refresh: str | None = None) -> TokenSet:
    """Kometa's mapping: the answer's keys in the answer's order, then `expires_at`; a refresh answer without
    a refresh token keeps the one sent."""
    values: dict[str, str | int] = {}
    for key in data:
        if key in ANSWER_KEYS:
            values[key] = int(data[key]) if key == "expires_in" else str(data[key])
    if "refresh_token" not in values and sent_refresh is not None:
        values["refresh_token"] = sent_refresh
    values["access_token"] = data["access_token"]  # KeyError: no access token, an unusable answer
    values["expires_at"] = int(now) + int(values["expires_in"])
    return TokenSet(values)


def missing_scopes(scope: object) -> list[str]:
    granted = set(str(scope or "").split())
    return [name for name in SCOPES if name not in granted]


def explain(answer: Answer, action: str) -> ServiceError:
    """The token endpoint's `{"error", "error_description"}` in plain words."""
    error, description = _error_of(answer)
    if error is None:
        return _not_json(answer, action)
    said = f"Spotify refused the {action}: HTTP {answer.status} {error}" + (f" — {description}" if description else "")
    if error == "invalid_client":
        return ServiceError(said, CHECK_APP, answer.status)
    if "redirect" in description.lower():
        return ServiceError(
            said,
            "The redirect URI must be the one registered in your app exactly, in both requests: check "
            f"spotify.redirect_uri against {DASHBOARD} (Settings → Redirect URIs).",
            answer.status,
        )
    if action == "refresh" and error == "invalid_grant":
        return ServiceError(said, AUTHORIZE_AGAIN, answer.status)
    if error == "invalid_grant":
        return ServiceError(
            said, "Codes work once and only for minutes: run `malcapture spotify` again.", answer.status
        )
    return ServiceError(said, "Run again with -v to see the exchange.", answer.status)


def explain_api(answer: Answer, action: str) -> ServiceError:
    """The Web API's `{"error": {"status", "message"}}` in plain words."""
    _, message = _error_of(answer)
    said = f"Spotify refused the {action}: HTTP {answer.status}" + (f" — {message}" if message else "")
    if answer.status == 401:
        return ServiceError(
            said, "The access token is not valid: run `malcapture spotify refresh` (or `malcapture spotify`).", 401
        )
    if answer.status == 403:
        return ServiceError(
            said,
            f"An app in development mode serves only the users added to it: open the app at {DASHBOARD}, "
            "User Management, and add this account's name and e-mail address; then run `malcapture spotify` again.",
            403,
        )
    if answer.status == 429:
        wait = f" {answer.retry_after:g} seconds" if answer.retry_after is not None else " a while"
        return ServiceError(said, f"Spotify asks to wait{wait} before asking again: try again then.", 429)
    if _error_of(answer)[0] is None and not message:
        return _not_json(answer, action)
    return ServiceError(said, "Try again in a few minutes.", answer.status)


def _error_of(answer: Answer) -> tuple[str | None, str]:
    import json

    try:
        data = json.loads(answer.body)
    except ValueError:
        return None, ""
    if not isinstance(data, dict):
        return None, ""
    error = data.get("error")
    if isinstance(error, dict):  # the Web API's shape
        return str(error.get("status", answer.status)), str(error.get("message") or "")
    if error is None:
        return None, ""
    return str(error), str(data.get("error_description") or "")


def _not_json(answer: Answer, action: str) -> ServiceError:
    if is_html(answer):
        return ServiceError(
            f"Spotify answered the {action} with HTTP {answer.status} and a web page{titled(answer.body)} instead "
            "of JSON.",
            "Spotify may be down or blocking this network: try again later.",
            answer.status,
        )
    return ServiceError(
        f"Spotify answered the {action} with HTTP {answer.status} ({answer.kind or 'no content type'}).",
        "Try again later." if answer.status >= 500 else "Run with -v to see the exchange.",
        answer.status,
    )


def expiry(values: Mapping[str, object]) -> datetime | None:
    """`expires_at`, epoch seconds, as Kometa writes it."""
    try:
        return datetime.fromtimestamp(int(str(values["expires_at"])), tz=timezone.utc)
    except (KeyError, ValueError, OverflowError, OSError):
        return None


def stand_in() -> TokenSet:
    """Spotify's tokens: opaque, about 300 and 130 characters; the five scopes; an expiry in epoch seconds."""
    answer = {
        "access_token": "BQ" + "0" * 300,
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "AQ" + "0" * 130,
        "scope": " ".join(SCOPES),
    }
    return read_tokens(answer, time.time())


sample = """\
spotify:
  client_id:                       # Enter Spotify Client ID
  client_secret:                   # Enter Spotify Client Secret
  redirect_uri:                    # The redirect URI registered in the app (http://127.0.0.1:PORT/callback)
  authorization: {}
"""


CODE = ServiceCode(
    sample=sample,
    client=SpotifyClient,
    expiry=expiry,
    owner=None,
    authorize_url=authorize_url,
    login=loopback.run,  # the loopback capture, its paste fallback with it
    login_async=loopback.login,
    stand_in=stand_in,
)
