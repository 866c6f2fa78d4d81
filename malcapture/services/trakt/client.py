"""Trakt's OAuth on auth.trakt.tv and /users/settings on api.trakt.tv (TraktClient); its failures in plain
words are words.py's. Facts: ../shared/TRAKT-OAUTH.md."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from malcapture.answers import issued, json_object
from malcapture.errors import AccessDenied, ServiceError, TimedOut
from malcapture.http import Answer, HttpClient
from malcapture.login.contract import Account, Setup, http_timeout, urls
from malcapture.services import TRAKT as SERVICE
from malcapture.services.trakt.words import explain
from malcapture.tokens import TokenSet

if TYPE_CHECKING:
    from malcapture.login.device import Pending


URLS = (
    ("MALCAPTURE_TRAKT_AUTH_URL", "https://auth.trakt.tv"),  # every /oauth/... request, since 2026
    ("MALCAPTURE_TRAKT_API_URL", "https://api.trakt.tv"),
    ("MALCAPTURE_TRAKT_URL", "https://trakt.tv"),  # the pages a browser opens
)
OOB = "urn:ietf:wg:oauth:2.0:oob"  # what Kometa registers, and sends in every exchange and refresh
TOKEN_KEYS = ("access_token", "token_type", "expires_in", "refresh_token", "scope", "created_at")  # Kometa's order
AGAIN = "Run `malcapture trakt` again for a new code."


@dataclass(frozen=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_url: str
    expires_in: int
    interval: int


def authorize_url(env: Mapping[str, str], client_id: str, verifier: str, state: str, redirect_uri: str | None) -> str:
    """Trakt's authorize page: a PIN page for the oob URI, else a redirect back here carrying `state`."""
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri or OOB}
    if redirect_uri is not None:
        params["state"] = state  # a PIN page has no redirect to carry it
    return f"{urls(env, *URLS)[2]}/oauth/authorize?{urlencode(params)}"


class TraktClient(HttpClient):
    """Bodies are JSON; API calls carry `trakt-api-version: 2` and `trakt-api-key: CLIENT_ID`."""

    def __init__(self, setup: Setup) -> None:
        super().__init__(http_timeout(setup.env), setup.log, backoff=setup.backoff, sleep=setup.sleep)
        self.auth, self.api, self.web = urls(setup.env, *URLS)
        self.creds = setup.creds

    @property
    def client_id(self) -> str:
        return self.creds.client_id if self.creds else ""

    @property
    def warm_urls(self) -> tuple[str, ...]:
        """The connections the code exchange and the account check will use."""
        return (f"{self.auth}/oauth/token", f"{self.api}/users/settings")

    async def device_code(self) -> DeviceCode:
        answer = await self._post("/oauth/device/code", {"client_id": self.client_id}, "device code request")
        if answer.status != 200:
            raise explain(answer, "device code request")
        data = json_object(answer, SERVICE.title, "device code request")
        try:
            code = DeviceCode(
                str(data["device_code"]),
                str(data["user_code"]),
                str(data["verification_url"]),
                int(data["expires_in"]),
                int(data.get("interval", 5)),
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ServiceError(
                "Trakt answered the device code request without a usable code.", "Try again later."
            ) from None
        if not (0 < code.expires_in <= 86400 and 0 < code.interval <= code.expires_in):
            raise ServiceError(
                f"Trakt answered the device code request with a code valid for {code.expires_in} seconds, polled every "
                f"{code.interval}: that cannot be right.",
                "Try again later.",
            )
        return code

    async def poll(self, device: DeviceCode) -> TokenSet | Pending:
        from malcapture.login.device import Pending

        secret = self.creds.client_secret if self.creds else None
        body = {"code": device.device_code, "client_id": self.client_id, "client_secret": secret or ""}
        answer = await self._post("/oauth/device/token", body, "approval check", idempotent=True)
        status = answer.status
        if status == 200:
            return issued(answer, SERVICE.title, "approval check", "malcapture trakt", read_tokens)
        if status == 429:
            return Pending(slower=answer.retry_after or 0.0)
        if status == 418:
            raise AccessDenied("The code was denied on Trakt.", "Run `malcapture trakt` again and approve it.")
        if status == 410:
            raise TimedOut(
                f"The code {device.user_code} expired before it was approved; the config was not changed.", AGAIN
            )
        if status in (404, 409):
            what = "does not know this code" if status == 404 else "says this code was already used"
            raise ServiceError(f"Trakt {what} (HTTP {status}).", AGAIN, status)
        if status == 403:  # the app was deleted meanwhile
            raise explain(answer, "approval check")
        if status != 400:
            self._log(f"Trakt answered HTTP {status}; still waiting")
        return Pending()

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str | None) -> TokenSet:
        return await self._token(
            {"code": code, "redirect_uri": redirect_uri or OOB, "grant_type": "authorization_code"}, "code exchange"
        )

    async def refresh(self, refresh_token: str) -> TokenSet:
        body = {"refresh_token": refresh_token, "redirect_uri": OOB, "grant_type": "refresh_token"}
        return await self._token(body, "refresh")

    async def check_secret(self) -> None:
        """A code that cannot exist: Trakt's code grant checks the client first, so a wrong secret is its answer."""
        if self.creds is None:
            return
        import secrets

        body = {"code": f"malcapture-{secrets.token_hex(8)}", "redirect_uri": OOB, "grant_type": "authorization_code"}
        try:
            answer = await self._post("/oauth/token", self._with_client(body), "check of the client secret")
        except ServiceError as exc:
            self._log(f"the client secret could not be checked: {exc.what}")
            return
        if answer.status == 403:
            raise explain(answer, "check of the client secret")
        failure = explain(answer, "check of the client secret")
        if answer.status == 401 and "invalid_client" in failure.what:
            raise ServiceError(
                f"{failure.what} — the client secret is wrong, so Trakt would refuse every token request with it.",
                "Check the client ID and secret of your app at https://developer.trakt.tv.",
                401,
            )

    async def verify(self, tokens: Mapping[str, object]) -> Account:
        headers = {
            "Authorization": f"Bearer {tokens['access_token']}",
            "trakt-api-version": "2",
            "trakt-api-key": self.client_id,
            "Content-Type": "application/json",
        }
        answer = await self.send("GET", f"{self.api}/users/settings", "account check", idempotent=True, headers=headers)
        if answer.status != 200:
            raise explain(answer, "account check")
        user = json_object(answer, SERVICE.title, "account check").get("user")
        name = user.get("username") if isinstance(user, dict) else None
        return Account(str(name or "an unnamed Trakt user"))

    def _with_client(self, body: dict[str, str]) -> dict[str, str]:
        secret = self.creds.client_secret if self.creds else None
        return {**body, "client_id": self.client_id, "client_secret": secret or ""}

    async def _token(self, body: dict[str, str], action: str) -> TokenSet:
        answer = await self._post("/oauth/token", self._with_client(body), action)
        if answer.status != 200:
            raise explain(answer, action)
        return issued(answer, SERVICE.title, action, "malcapture trakt", read_tokens)

    async def _post(self, path: str, body: dict[str, str], action: str, idempotent: bool = False) -> Answer:
        return await self.send("POST", f"{self.auth}{path}", action, idempotent=idempotent, json=body)


def read_tokens(data: Mapping[str, Any]) -> TokenSet:
    return TokenSet(
        {
            "access_token": data["access_token"],
            "token_type": str(data.get("token_type") or "bearer"),
            "expires_in": int(data["expires_in"]),
            "refresh_token": data["refresh_token"],
            "scope": str(data.get("scope") or "public"),
            "created_at": int(data["created_at"]),
        }
    )


def expiry(values: Mapping[str, object]) -> datetime | None:
    """`created_at + expires_in` of the stored answer (Trakt's tokens are opaque, not JWTs)."""
    try:
        return datetime.fromtimestamp(int(str(values["created_at"])) + int(str(values["expires_in"])), tz=timezone.utc)
    except (KeyError, ValueError, OverflowError, OSError):
        return None
