"""The HTTP side every service shares: one session, retries where they are safe, redacted logs,
and a failure to connect put into plain words."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, NamedTuple, Protocol, TypeVar
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from malcapture.errors import MalError, NetworkError, UnusableTokens
from malcapture.sections import Section
from malcapture.tokens import TokenSet, redact

Client = TypeVar("Client", bound="HttpClient[Any]")
KEEP_WARM = 10.0  # seconds between touches of the warmed connections; aiohttp keeps idle ones 15
SECRET_FIELDS = {"code", "code_verifier", "client_secret", "refresh_token", "access_token", "token"}


class Answer(NamedTuple):
    status: int
    body: str
    kind: str  # the content type
    retry_after: float | None  # seconds, from a Retry-After header


class Host(Protocol):
    """A service's URLs (endpoints.py): all the client needs of them here is how long to wait."""

    @property
    def timeout(self) -> float: ...


Urls = TypeVar("Urls", bound=Host)


class HttpClient(Generic[Urls]):
    """Use as an async context manager: the session (and its connections) lives as long as the block."""

    def __init__(self, endpoints: Urls, log: Callable[[str], None], retries: int = 3, backoff: float = 0.5) -> None:
        self.endpoints = endpoints
        self._timeout = endpoints.timeout
        self._log = log
        self._retries = retries
        self._backoff = backoff
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self: Client) -> Client:
        timeout = aiohttp.ClientTimeout(total=self._timeout, connect=min(10, self._timeout))
        self._session = aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": "malcapture"})
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    async def warm(self, urls: Sequence[str]) -> None:
        """Open the connections that the next requests will use (DNS, TCP, TLS) and leave them in the pool.

        Nothing is sent: the service sees a connection, not a request. A connection still in the pool is
        only touched again, so calling this every few seconds keeps one connection per host ready
        (aiohttp drops a pooled connection after 15 seconds unused). Any failure is only logged: the
        real request then connects as it would have anyway.
        """
        assert self._session is not None, "use the client as an async context manager"
        loop = asyncio.get_running_loop()
        for url in urls:
            try:
                request = aiohttp.ClientRequest("GET", URL(url), loop=loop)
                connection = await self._session.connector.connect(request, [], self._session.timeout)  # type: ignore[union-attr]
                connection.release()
            except Exception as exc:  # whatever goes wrong here, the login must go on as it would have
                self._log(f"warming a connection to {urlsplit(url).netloc} failed ({exc}); it will connect when needed")

    async def keep_warm(self, urls: Sequence[str], every: float = KEEP_WARM) -> None:
        """warm(), again and again, until cancelled (while the user clicks, pastes or approves)."""
        while True:
            await self.warm(urls)
            await asyncio.sleep(every)

    async def send(self, method: str, url: str, action: str, idempotent: bool, **kwargs: Any) -> Answer:
        """One request; a connection that never opened is retried (unless refused), a 5xx or a broken one only
        if `idempotent`."""
        assert self._session is not None, "use the client as an async context manager"
        fields = kwargs.get("data") or kwargs.get("json") or {}
        shown = " ".join(f"{k}={redact(str(v)) if k in SECRET_FIELDS else v}" for k, v in fields.items())
        for attempt in range(1, self._retries + 1):
            self._log(f"{method} {url} {shown}".rstrip())
            try:
                async with self._session.request(method, url, **kwargs) as response:
                    body = await response.text(errors="replace")
                    self._log(f"  → HTTP {response.status} {response.content_type} {_redacted(body)}")
                    retry = idempotent and response.status >= 500
                    if not retry or attempt == self._retries:
                        return Answer(response.status, body, response.content_type, _seconds(response))
            except aiohttp.ClientConnectorError as exc:
                # Never connected: nothing reached the service, so even a code exchange may retry. A refused
                # connection is an answer, not a glitch (nothing listens there): it is not asked again.
                if attempt == self._retries or isinstance(exc.os_error, ConnectionRefusedError):
                    raise unreachable(url, action, exc) from None
                self._log(f"  → could not connect ({exc.os_error}); retrying")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if not idempotent or attempt == self._retries:
                    raise unreachable(url, action, exc) from None
                self._log(f"  → {type(exc).__name__}; retrying")
            await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover


def _seconds(response: aiohttp.ClientResponse) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _redacted(body: str) -> str:
    return re.sub(r'("(?:access|refresh)_token"\s*:\s*")([^"]{0,6})[^"]*', r"\1\2…", body)[:300]


def unreachable(url: str, action: str, exc: BaseException) -> NetworkError:
    host = urlsplit(url).netloc
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = "its TLS certificate could not be verified (a proxy or a wrong clock?)"
    elif isinstance(exc, aiohttp.ClientConnectorError) and "name" in str(exc.os_error).lower():
        reason = "its name could not be resolved (DNS)"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        reason = f"the connection failed ({exc.os_error.strerror or exc.os_error})"
    elif isinstance(exc, asyncio.TimeoutError):
        reason = "it did not answer in time"
    else:
        reason = f"the connection broke ({type(exc).__name__})"
    return NetworkError(
        f"Could not reach {host} for the {action}: {reason}.",
        "Check the network (DNS, proxy, firewall) and try again.",
    )


def json_object(body: str, title: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise MalError(f"{title} answered HTTP 200 with something other than JSON.", "Try again later.")
    return data


def token_set(body: str, section: Section, action: str) -> TokenSet:
    """A token answer: JSON, text that can be written into a config, and the fields Kometa keeps."""
    data = json_object(body, section.title)
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        again = "malcapture" if section.name == "mal" else f"malcapture {section.name}"
        raise UnusableTokens(
            f"{section.title} answered the {action} with tokens that cannot be written as text (broken characters).",
            f"Try again in a few minutes; if it persists, run `{again}` to authorize again.",
            json.dumps(data, ensure_ascii=True),
        ) from None
    try:
        return TokenSet(
            access_token=_text(data["access_token"]),
            token_type=_text(data.get("token_type", "Bearer")),
            expires_in=int(data["expires_in"]),
            refresh_token=_text(data["refresh_token"]),
            scope=str(data.get("scope") or "public") if "scope" in section.token_keys else None,
            created_at=int(data["created_at"]) if "created_at" in section.token_keys else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalError(
            f"{section.title} answered HTTP 200 but without usable tokens ({exc.__class__.__name__}: {exc}).",
            "Try again in a few minutes.",
        ) from None


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("a token is missing or not text")
    return value


def titled(page: str) -> str:
    """` titled 'Maintenance'` for an HTML page that has a title, else nothing."""
    title = re.search(r"<title[^>]*>(.*?)</title>", page, re.I | re.S)
    return f" titled {' '.join(title.group(1).split())[:80]!r}" if title else ""
