"""The HTTP side every service shares: one session, retries where they are safe, redacted logs,
answers of bounded size, no redirects followed, and a failure to connect put into plain words.

aiohttp (and asyncio) are imported where they are used: the services' modules import this one,
and `--help` must not load them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from malcapture import interrupts
from malcapture.errors import NetworkError, ServiceError
from malcapture.tokens import TokenSet, redact

if TYPE_CHECKING:
    import aiohttp

Client = TypeVar("Client", bound="HttpClient")
KEEP_WARM = 10.0  # seconds between touches of the warmed connections; aiohttp keeps idle ones 15
MAX_ANSWER = 256 * 1024  # bytes: far more than any answer of theirs; an endless one is cut here
# Fields whose values are secrets, in what is sent and in what comes back: -v shows 6 characters.
SECRET_FIELDS = frozenset(
    {"code", "code_verifier", "client_secret", "refresh_token", "access_token", "token", "device_code", "authToken"}
)
_NAMES = "|".join(sorted(SECRET_FIELDS))
SECRET_JSON = re.compile(rf'("(?:{_NAMES})"\s*:\s*")([^"]*)')
SECRET_XML = re.compile(rf'(\b(?:{_NAMES})=")([^"]*)')


class Answer(NamedTuple):
    status: int
    body: str
    kind: str  # the content type
    retry_after: float | None  # seconds, from a Retry-After header


class HttpClient:
    """Use as an async context manager: the session (and its connections) lives as long as the block."""

    def __init__(
        self,
        timeout: float,
        log: Callable[[str], None],
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._timeout = timeout
        self._log = log
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep  # the clock's wait between tries (None: asyncio.sleep)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self: Client) -> Client:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self._timeout, connect=min(10, self._timeout))
        # One connection per host: requests that overlap (the secret's check while the connections are
        # warmed) take turns on it instead of paying for a second TCP and TLS handshake.
        connector = aiohttp.TCPConnector(limit_per_host=1)
        self._session = aiohttp.ClientSession(
            timeout=timeout, headers={"User-Agent": "malcapture"}, connector=connector
        )
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def warm_urls(self) -> tuple[str, ...]:
        """The connections the next requests will use (a service names its own)."""
        return ()

    async def check_secret(self) -> None:
        """Whether the app's secret is right, asking without spending anything: a service without an app
        of the user's has none to check."""

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str | None) -> TokenSet:
        raise NotImplementedError(f"{type(self).__name__}: this service issues no codes to exchange")

    async def refresh(self, refresh_token: str) -> TokenSet:
        raise NotImplementedError(f"{type(self).__name__}: this service's tokens do not expire")

    async def warm(self, urls: Sequence[str]) -> None:
        """Open the connections that the next requests will use (DNS, TCP, TLS) and leave them in the pool.

        Nothing is sent: the service sees a connection, not a request. A connection still in the pool is
        only touched again, so calling this every few seconds keeps one connection per host ready
        (aiohttp drops a pooled connection after 15 seconds unused). Any failure is only logged: the
        real request then connects as it would have anyway.
        """
        import asyncio

        import aiohttp
        from yarl import URL

        assert self._session is not None, "use the client as an async context manager"
        loop = asyncio.get_running_loop()
        for url in urls:
            try:
                request = aiohttp.ClientRequest("GET", URL(url), loop=loop)
                connection = await self._session.connector.connect(request, [], self._session.timeout)  # type: ignore[union-attr]
                connection.release()
            except Exception as exc:  # whatever goes wrong here, the login must go on as it would have
                self._log(f"warming a connection to {_host(url)} failed ({exc}); it will connect when needed")

    async def keep_warm(self, urls: Sequence[str], every: float = KEEP_WARM) -> None:
        """warm(), again and again, until cancelled (while the user clicks, pastes or approves)."""
        import asyncio

        while True:
            await self.warm(urls)
            await asyncio.sleep(every)

    async def send(self, method: str, url: str, action: str, idempotent: bool, **kwargs: Any) -> Answer:
        """One request; a connection that never opened is retried (unless refused), a 5xx or a broken one only
        if `idempotent`. Between tries a waiting Ctrl-C stops it: nothing was spent yet."""
        import asyncio

        import aiohttp

        assert self._session is not None, "use the client as an async context manager"
        fields = kwargs.get("data") or kwargs.get("json") or {}
        shown = " ".join(f"{k}={redact(str(v)) if k in SECRET_FIELDS else v}" for k, v in fields.items())
        for attempt in range(1, self._retries + 1):
            self._log(f"{method} {without_password(url)} {shown}".rstrip())
            try:
                async with self._session.request(method, url, allow_redirects=False, **kwargs) as response:
                    answer = await _read(response, url, action)
                    self._log(f"  → HTTP {answer.status} {answer.kind} {redacted(answer.body)}")
                    retry = idempotent and answer.status >= 500
                    if not retry or attempt == self._retries:
                        return answer
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
            interrupts.raise_pending()
            await (self._sleep or asyncio.sleep)(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover


async def _read(response: aiohttp.ClientResponse, url: str, action: str) -> Answer:
    """The answer, read up to MAX_ANSWER bytes; a redirect is refused, never followed: it would carry the
    request's secrets (a refresh token, the client secret) to wherever it points."""
    host = _host(url)
    if 300 <= response.status < 400:
        where = response.headers.get("Location", "nowhere")
        raise ServiceError(
            f"{host} answered the {action} with a redirect (HTTP {response.status}) to {where[:200]}; "
            "malcapture does not follow redirects with secrets in them.",
            "Check the service's address (a proxy, or an endpoint variable such as MALCAPTURE_…_URL) and try again.",
            response.status,
        )
    body = bytearray()
    async for chunk in response.content.iter_chunked(65536):
        body += chunk
        if len(body) > MAX_ANSWER:
            raise ServiceError(
                f"{host} answered the {action} with more than {MAX_ANSWER // 1024} KB, far more than any real "
                "answer; malcapture stopped reading.",
                "Check the service's address (a proxy, or an endpoint variable) and try again later.",
                response.status,
            )
    text = bytes(body).decode(_charset(response.charset, response.content_type), errors="replace")
    return Answer(response.status, text, response.content_type, _seconds(response.headers.get("Retry-After", "")))


def _charset(label: str | None, kind: str) -> str:
    """The codec an answer is read with: JSON is UTF-8 whatever its label says (RFC 8259; a `charset=utf8mb4`
    Python does not know must not fail after a code was spent); other text as labelled, when Python knows it."""
    import codecs

    if not label or "json" in kind:
        return "utf-8"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return "utf-8"


def _seconds(header: str) -> float | None:
    try:
        seconds = float(header)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _host(url: str) -> str:
    """`host:port` of a URL, for messages: never its user or password."""
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def without_password(url: str) -> str:
    """A URL as messages and logs show it: the password of its user (a reverse proxy's) replaced by ***."""
    from urllib.parse import urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a URL that cannot be read)"
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def redacted(body: str) -> str:
    """An answer as -v shows it: every secret field cut to its first 6 characters, the whole to 300."""
    body = SECRET_JSON.sub(lambda m: f"{m.group(1)}{m.group(2)[:6]}…", body)
    return SECRET_XML.sub(lambda m: f"{m.group(1)}{m.group(2)[:6]}…", body)[:300]


def unreachable(url: str, action: str, exc: BaseException) -> NetworkError:
    import asyncio

    import aiohttp

    host = _host(url)
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
