"""plex.tv's PIN and user API as Kometa's device, and the user's own server: PlexClient, and Plex's answers
in plain words. Facts: ../shared/PLEX-AUTH.md."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from malcapture.answers import is_html, json_object, titled
from malcapture.errors import ConfigError, ServiceError, TimedOut
from malcapture.http import Answer, HttpClient, without_password
from malcapture.login.contract import Account, Setup, http_timeout, urls
from malcapture.services import PLEX as SERVICE
from malcapture.services.plex.words import server_url, xml_root
from malcapture.tokens import TokenSet

if TYPE_CHECKING:
    from malcapture.login.device import Pending
    from malcapture.services.plex.servers import Candidate


URLS = (
    ("MALCAPTURE_PLEX_TV_URL", "https://plex.tv"),  # the API (/api/v2/...) and /link
    ("MALCAPTURE_PLEX_APP_URL", "https://app.plex.tv"),  # the sign-in page
)
PRODUCT = "Kometa"  # plex.tv lists the token under Kometa's name, as Kometa's own requests say
POLL_EVERY = 1.0  # seconds, as the web pages that sign in to Plex do
AGAIN = "Run `malcapture plex` again and sign in within the PIN's time."
PROBE_DEADLINE = 3.0  # seconds for trying every connection of every server at once


@dataclass(frozen=True)
class Pin:
    id: int
    code: str
    expires_in: int


class PlexClient(HttpClient):
    """plex.tv's PIN and user API as Kometa's device, and the user's own server."""

    def __init__(self, setup: Setup, identifier: str | None = None) -> None:
        super().__init__(http_timeout(setup.env), setup.log, backoff=setup.backoff, sleep=setup.sleep)
        self.tv, self.app = urls(setup.env, *URLS)
        self.identifier = identifier or (stored_id(setup.folder) if setup.folder else None) or "malcapture"
        self.server = server_url(setup.settings.get("url"))
        self.verify_tls = str(setup.settings.get("verify_ssl") or "true").lower() not in ("false", "no", "0")
        self.chosen = setup.settings.get("server")  # --server NAME
        self.ask = setup.ask
        self.probe_deadline = min(PROBE_DEADLINE, http_timeout(setup.env))
        self._failing: str | None = None  # plex.tv's last trouble while the PIN is polled

    def failing(self) -> str | None:
        return self._failing

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "X-Plex-Client-Identifier": self.identifier,
            "X-Plex-Product": PRODUCT,
            "X-Plex-Provides": "sync",
        }

    @property
    def warm_urls(self) -> tuple[str, ...]:
        """The account check and the server check, asked at once when the PIN holds the token."""
        return (f"{self.tv}/api/v2/user", *([f"{self.server}/"] if self.server and self.verify_tls else []))

    def sign_in_url(self, pin: Pin, forward: str | None) -> str:
        params = {"clientID": self.identifier, "code": pin.code, "context[device][product]": PRODUCT}
        if forward:
            params["forwardUrl"] = forward
        return f"{self.app}/auth#?{urlencode(params, quote_via=quote)}"

    async def create_pin(self, strong: bool) -> Pin:
        url = f"{self.tv}/api/v2/pins" + ("?strong=true" if strong else "")
        answer = await self.send("POST", url, "PIN request", idempotent=False, headers=self.headers)
        if answer.status not in (200, 201):
            raise explain(answer, "PIN request")
        data = json_object(answer, SERVICE.title, "PIN request")
        try:
            pin = Pin(int(data["id"]), str(data["code"]), int(data.get("expiresIn") or 900))
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ServiceError("Plex answered the PIN request without a usable PIN.", "Try again later.") from None
        if not 0 < pin.expires_in <= 86400:
            raise ServiceError(
                f"Plex answered with a PIN valid for {pin.expires_in} seconds: that cannot be right.",
                "Try again later.",
            )
        return pin

    async def poll(self, pin: Pin) -> TokenSet | Pending:
        from malcapture.login.device import Pending

        url = f"{self.tv}/api/v2/pins/{pin.id}"
        answer = await self.send("GET", url, "PIN check", idempotent=True, headers=self.headers)
        if answer.status == 404:
            raise TimedOut(f"The PIN {pin.code} expired before it was used; the config was not changed.", AGAIN)
        if answer.status == 429:
            return Pending(slower=answer.retry_after or 0.0)
        if answer.status != 200:
            self._log(f"Plex answered HTTP {answer.status}; still waiting")
            self._failing = f"plex.tv answered every check of the PIN with HTTP {answer.status}"
            return Pending()
        self._failing = None
        token = json_object(answer, SERVICE.title, "PIN check").get("authToken")
        if not token:
            return Pending()
        if not isinstance(token, str) or not token.isprintable():
            raise ServiceError("Plex answered the PIN check with a token that is not text.", AGAIN)
        return TokenSet({"token": token}, access="token", refresh=None)

    async def verify(self, tokens: Mapping[str, object]) -> Account:
        """Whose the token is (plex.tv), and the server Kometa will use with it: the one at plex.url, asked at
        the same time; or, where plex.url is blank, the one found among the account's servers."""
        import asyncio

        from malcapture.services.plex import url as plex_url

        token = str(tokens["token"])
        if self.server is None:
            user, servers = await asyncio.gather(self._user(token), self.servers(token))
            said = await plex_url.fill_blank_url(self, token, servers)
        else:
            user, said = await asyncio.gather(self._user(token), plex_url.at_configured_url(self, token))
        return Account(user, said.notes, said.facts, said.writes, said.blocks)

    async def _user(self, token: str) -> str:
        headers = {**self.headers, "X-Plex-Token": token}
        answer = await self.send("GET", f"{self.tv}/api/v2/user", "account check", idempotent=True, headers=headers)
        if answer.status != 200:
            raise explain(answer, "account check")
        data = json_object(answer, SERVICE.title, "account check")
        return str(data.get("username") or data.get("title") or f"Plex user {data.get('id', '?')}")

    async def servers(self, token: str) -> list[Candidate] | None:
        """Every connection of every server of the account (plex.tv's resources); None when plex.tv will not say."""
        import json

        from malcapture.services.plex.servers import candidates

        url = f"{self.tv}/api/v2/resources?includeHttps=1&includeRelay=1&includeIPv6=1"
        headers = {**self.headers, "X-Plex-Token": token}
        try:
            answer = await self.send("GET", url, "server list", idempotent=True, headers=headers)
            listed = json.loads(answer.body) if answer.status == 200 else None
        except (ServiceError, ValueError) as exc:
            self._log(f"plex.tv's server list could not be read: {exc}")
            return None
        return candidates(listed) if isinstance(listed, list) else None

    async def identity(self, url: str) -> str | None:
        """The machineIdentifier the server at `url` says it has (no token needed), or None if none answers in time."""
        import asyncio

        import aiohttp

        assert self._session is not None
        deadline = aiohttp.ClientTimeout(total=self.probe_deadline)
        try:
            async with self._session.get(
                f"{url}/identity", timeout=deadline, ssl=self.verify_tls, allow_redirects=False
            ) as response:
                body = (await response.content.read(65536)).decode("utf-8", "replace")
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError) as exc:
            self._log(f"  {without_password(url)}: no answer ({type(exc).__name__})")
            return None
        root = xml_root(body) if status == 200 else None
        self._log(f"  {without_password(url)}: HTTP {status}")
        return root.get("machineIdentifier") if root is not None else None

    async def at(self, url: str, token: str) -> Answer:
        """`GET {url}/` with the token, as Kometa asks its server at start-up."""
        headers = {"X-Plex-Token": token, "X-Plex-Client-Identifier": self.identifier, "X-Plex-Product": PRODUCT}
        return await self.send("GET", f"{url}/", "server check", idempotent=True, headers=headers, ssl=self.verify_tls)


def stored_id(folder: Path) -> str | None:
    from malcapture.services.plex import device as plex_device

    with contextlib.suppress(ConfigError):
        return plex_device.read(folder / "UUID")
    return None


def explain(answer: Answer, action: str) -> ServiceError:
    status = answer.status
    if status in (401, 422):
        return ServiceError(
            f"Plex refused the {action}: HTTP {status} — the token is not valid (signed out, or revoked).",
            "Run `malcapture plex` to sign in again.",
            status,
        )
    if status == 400:
        return ServiceError(f"Plex refused the {action}: HTTP 400.", "Run again with -v to see the exchange.", status)
    if is_html(answer):
        return ServiceError(
            f"Plex answered the {action} with HTTP {status} and a web page{titled(answer.body)} instead of JSON.",
            "Plex may be down or blocking this network: try again later.",
            status,
        )
    return ServiceError(f"Plex answered the {action} with HTTP {status}.", "Try again in a few minutes.", status)
