"""What a service is to the login, refresh and check: its authorize URL and its client.

A third service would be one more small class here, a section in sections.py, and its client.
The clients are imported when asked for, so that the login opens the browser before aiohttp loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol
from urllib.parse import urlencode

from malcapture import pkce
from malcapture.endpoints import Endpoints, TraktEndpoints
from malcapture.sections import TRAKT, Section
from malcapture.tokens import TokenSet


class TokenClient(Protocol):
    async def __aenter__(self) -> TokenClient: ...
    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None: ...
    async def exchange_code(
        self, client_id: str, client_secret: str | None, code: str, verifier: str, redirect_uri: str | None
    ) -> TokenSet: ...
    async def refresh(self, client_id: str, client_secret: str | None, refresh_token: str) -> TokenSet: ...
    async def whoami(self, access_token: str) -> str: ...
    async def keep_warm(self, urls: Sequence[str]) -> None: ...
    @property
    def warm_urls(self) -> tuple[str, ...]: ...


class Provider(Protocol):
    def authorize_url(self, client_id: str, verifier: str, state: str, redirect_uri: str | None) -> str: ...
    def client(self, client_id: str, log: Callable[[str], None]) -> TokenClient: ...


@dataclass(frozen=True)
class MyAnimeList:
    endpoints: Endpoints

    def authorize_url(self, client_id: str, verifier: str, state: str, redirect_uri: str | None) -> str:
        return pkce.authorize_url(self.endpoints.oauth, client_id, verifier, state, redirect_uri)

    def client(self, client_id: str, log: Callable[[str], None]) -> TokenClient:
        from malcapture.mal import MalClient

        return MalClient(self.endpoints, log)


@dataclass(frozen=True)
class Trakt:
    endpoints: TraktEndpoints

    def authorize_url(self, client_id: str, verifier: str, state: str, redirect_uri: str | None) -> str:
        from malcapture.trakt import OOB

        params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri or OOB}
        if redirect_uri is not None:
            params["state"] = state  # a PIN page has no redirect to carry it
        return f"{self.endpoints.web}/oauth/authorize?{urlencode(params)}"

    def client(self, client_id: str, log: Callable[[str], None]) -> TokenClient:
        from malcapture.trakt import TraktClient

        return TraktClient(self.endpoints, client_id, log)


def for_section(section: Section, env: Mapping[str, str]) -> Provider:
    if section is TRAKT:
        return Trakt(TraktEndpoints.from_env(env))
    return MyAnimeList(Endpoints.from_env(env))
