"""Trakt's OAuth (device flow, code and PIN exchange, refresh) and /users/settings, failures in plain words.

OAuth requests go to auth.trakt.tv, the API to api.trakt.tv (TRAKT-OAUTH.md). Bodies are JSON;
API calls carry `trakt-api-version: 2` and `trakt-api-key: CLIENT_ID`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from malcapture.endpoints import TraktEndpoints
from malcapture.errors import MalError
from malcapture.http import Answer, HttpClient, json_object, titled, token_set
from malcapture.sections import TRAKT
from malcapture.tokens import TokenSet

OOB = "urn:ietf:wg:oauth:2.0:oob"  # what Kometa registers, and sends in every exchange and refresh
DELETED_APP = (
    "Check the app at https://developer.trakt.tv (Your API Apps): in 2026 Trakt deleted the apps of free "
    "accounts, and only VIP accounts can create new ones. Put the app's client ID and secret in trakt: "
    "(or pass them), then run `malcapture trakt` again."
)
AUTHORIZE_AGAIN = "The refresh token no longer works (each one works once): run `malcapture trakt` to authorize again."


@dataclass(frozen=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_url: str
    expires_in: int
    interval: int


@dataclass(frozen=True)
class Poll:
    """One answer of /oauth/device/token: tokens when approved, else the status and any Retry-After."""

    status: int
    tokens: TokenSet | None = None
    retry_after: float | None = None


class TraktClient(HttpClient[TraktEndpoints]):
    def __init__(self, endpoints: TraktEndpoints, client_id: str, log: Callable[[str], None]) -> None:
        super().__init__(endpoints, log)
        self._client_id = client_id  # Trakt wants it with every API request

    @property
    def warm_urls(self) -> tuple[str, ...]:
        """The connections the code exchange and the account check will use."""
        return (f"{self.endpoints.auth}/oauth/token", f"{self.endpoints.api}/users/settings")

    async def device_code(self) -> DeviceCode:
        answer = await self._post("/oauth/device/code", {"client_id": self._client_id}, "device code request")
        if answer.status != 200:
            raise explain(answer, "device code request")
        data = json_object(answer.body, TRAKT.title)
        try:
            return DeviceCode(
                str(data["device_code"]),
                str(data["user_code"]),
                str(data["verification_url"]),
                int(data["expires_in"]),
                max(1, int(data.get("interval", 5))),
            )
        except (KeyError, TypeError, ValueError):
            raise MalError(
                "Trakt answered the device code request without a usable code.", "Try again later."
            ) from None

    async def poll(self, device: DeviceCode, client_secret: str | None) -> Poll:
        body = {"code": device.device_code, "client_id": self._client_id, "client_secret": client_secret or ""}
        answer = await self._post("/oauth/device/token", body, "approval check", idempotent=True)
        if answer.status == 200:
            return Poll(200, token_set(answer.body, TRAKT, "approval check"))
        if answer.status == 403:  # the app was deleted meanwhile, or the secret is wrong
            raise explain(answer, "approval check")
        return Poll(answer.status, None, answer.retry_after)

    async def exchange_code(
        self, client_id: str, client_secret: str | None, code: str, verifier: str | None, redirect_uri: str | None
    ) -> TokenSet:
        body = {
            "code": code,
            "client_id": client_id,
            "client_secret": client_secret or "",
            "redirect_uri": redirect_uri or OOB,
            "grant_type": "authorization_code",
        }
        return await self._token(body, "code exchange")

    async def refresh(
        self, client_id: str, client_secret: str | None, refresh_token: str, redirect_uri: str | None = None
    ) -> TokenSet:
        body = {
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret or "",
            "redirect_uri": redirect_uri or OOB,
            "grant_type": "refresh_token",
        }
        return await self._token(body, "refresh")

    async def whoami(self, access_token: str) -> str:
        url = f"{self.endpoints.api}/users/settings"
        headers = {
            "Authorization": f"Bearer {access_token}",
            "trakt-api-version": "2",
            "trakt-api-key": self._client_id,
            "Content-Type": "application/json",
        }
        answer = await self.send("GET", url, "account check", idempotent=True, headers=headers)
        if answer.status != 200:
            raise explain(answer, "account check")
        user = json_object(answer.body, TRAKT.title).get("user")
        name = user.get("username") if isinstance(user, dict) else None
        return str(name or "an unnamed Trakt user")

    async def _token(self, body: dict[str, str], action: str) -> TokenSet:
        answer = await self._post("/oauth/token", body, action)
        if answer.status != 200:
            raise explain(answer, action)
        return token_set(answer.body, TRAKT, action)

    async def _post(self, path: str, body: dict[str, str], action: str, idempotent: bool = False) -> Answer:
        url = f"{self.endpoints.auth}{path}"
        return await self.send("POST", url, action, idempotent=idempotent, json=body)


def explain(answer: Answer, action: str) -> MalError:
    """Trakt's refusal, with the HTTP status and what to do."""
    status = answer.status
    if status == 403:
        return MalError(
            f"Trakt answered the {action} with HTTP 403: the app of this client ID may have been deleted, "
            "or the client ID is wrong.",
            DELETED_APP,
        )
    if status == 410:
        return MalError(f"Trakt answered the {action} with HTTP 410: this Trakt account is deactivated.", ACCOUNT)
    if status == 423:
        return MalError(f"Trakt answered the {action} with HTTP 423: this Trakt account is locked.", ACCOUNT)
    if status == 429:
        wait = f" (it asks to wait {answer.retry_after:g} seconds)" if answer.retry_after else ""
        return MalError(f"Trakt answered the {action} with HTTP 429: too many requests{wait}.", "Try again later.")
    data = _error_json(answer.body)
    if data is not None:
        error, description = str(data.get("error") or ""), str(data.get("error_description") or "")
        said = f" — {description}" if description else ""
        return MalError(f"Trakt refused the {action}: HTTP {status} {error}{said}", _advice(status, error, action))
    if "html" in answer.kind or answer.body.lstrip().lower().startswith(("<!doctype", "<html")):
        named = titled(answer.body)
        return MalError(
            f"Trakt answered the {action} with HTTP {status} and a web page{named} instead of JSON.",
            "Trakt may be down or blocking this network: try again later.",
        )
    return MalError(
        f"Trakt answered the {action} with HTTP {status}.",
        "Trakt had a problem of its own: try again in a few minutes." if status >= 500 else _advice(status, "", action),
    )


ACCOUNT = "Sign in at https://trakt.tv to see why; Kometa cannot use this account until then."


def _error_json(body: str) -> Mapping[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "error" in data else None


def _advice(status: int, error: str, action: str) -> str:
    if error == "invalid_client":
        return "Check the client ID and secret of your app at https://developer.trakt.tv."
    if action == "refresh":
        return AUTHORIZE_AGAIN
    if action == "account check" and status == 401:
        return (
            "The access token was refused: run `malcapture trakt refresh` (or `malcapture trakt` to authorize again)."
        )
    if error == "invalid_grant":
        return (
            "Codes and PINs work once and only for minutes, and the redirect URL must be one the app registered "
            "exactly: run `malcapture trakt` again."
        )
    return "Run again with -v to see the exchange."
