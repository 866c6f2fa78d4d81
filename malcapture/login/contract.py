"""What a service is to the machinery: the `Service` value each one declares (services/), the `ServiceCode`
its module exports, and the types a login, refresh and check pass around (LoginOptions, Setup, TokenClient…).

They live with the machinery that reads them, so that arrows point one way: services/ builds these
values, generic code (the CLI, login/, the config, check, refresh, status, the demo) reads their
fields and calls their functions; it never names a service. A service's module keeps its
heavy imports inside its functions, so that reading the table costs nothing at start-up.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Protocol

from malcapture.errors import UsageError
from malcapture.login.ways import Redirect, Way
from malcapture.tokens import TokenSet

if TYPE_CHECKING:
    from datetime import datetime

    from malcapture.config.place import Place, Want, Wants
    from malcapture.login.io import Io


@dataclass(frozen=True, eq=False)  # compared by identity: no __eq__ to generate at start-up
class Credentials:
    """An app's ID and secret (the secret never in a repr)."""

    client_id: str
    client_secret: str | None = field(repr=False)


class App(NamedTuple):
    """A service whose tokens belong to an app the user registers there: its ID and secret."""

    env: tuple[str, str]  # the variables for --client-id and --client-secret
    id_length: int  # a client ID is this many hexadecimal characters
    apps: str  # where the user finds the app's ID and secret
    lone_id: str  # what to say when the app has an ID but no secret
    wrong_id: str = ""  # how a wrong client ID shows itself there, if it does


class Account(NamedTuple):
    """Whose the tokens are, and what the check found on the way."""

    name: str
    notes: tuple[str, ...] = ()  # warnings: what the user should know although the token works
    facts: tuple[str, ...] = ()  # what was found, in words (the server that takes the token, and why that one)
    writes: Wants | None = None  # settings found to write with the tokens (a blank plex.url, a server's token)
    blocks: str | None = None  # why Kometa would stop although the token is valid (a read-only token)


@dataclass(frozen=True, eq=False)  # compared by identity: no __eq__ to generate at start-up
class Setup:
    """What a service's client is made from."""

    env: Mapping[str, str]
    log: Callable[[str], None]
    creds: Credentials | None = None
    settings: Mapping[str, str | None] = field(default_factory=dict)  # other values of its section (a URL)
    folder: Path | None = None  # the config's folder
    backoff: float = 0.5  # seconds before a request that got no answer is tried again (then twice as long)
    sleep: Callable[[float], Awaitable[None]] | None = None  # the clock's wait (Io.clock.sleep); None: asyncio's
    wall: Callable[[], float] = time.time  # the clock's "now" in epoch seconds (Io.clock.wall), for expiries written
    ask: Callable[[str, bool], str] | None = None  # a question at the terminal (a server to choose); None: none


@dataclass(frozen=True, eq=False)  # compared by identity: no __eq__ to generate at start-up
class ServiceCode:
    """What a service's module exports as `CODE`, beside its value in SERVICES: every field is given
    (None where it does not apply), so that mypy finds a missing piece, not a user at a terminal."""

    sample: str  # its section in the demo's config
    client: Callable[[Setup], TokenClient]
    expiry: Callable[[Mapping[str, object]], datetime | None] | None  # None: its token does not expire
    owner: Callable[[str], str | None] | None  # whose an access token is, read from it offline
    # The page that asks the user to authorize the app (env, client ID, PKCE verifier, state, redirect URI):
    # services that can redirect the browser back with a code have one.
    authorize_url: Callable[[Mapping[str, str], str, str, str, str | None], str] | None
    # The login for the CLI (the browser may open before asyncio loads), and the same in a running event loop.
    login: Callable[[LoginOptions, Io], LoginResult]
    login_async: Callable[[LoginOptions, Io], Awaitable[LoginResult]]
    stand_in: Callable[[], TokenSet]  # tokens of the shape it issues, to prove a save before anything is spent


class TokenClient(Protocol):
    """A service's HTTP side. Every client can check an account; the rest is for services with an app."""

    async def __aenter__(self) -> TokenClient: ...
    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None: ...
    @property
    def warm_urls(self) -> tuple[str, ...]: ...
    async def keep_warm(self, urls: Sequence[str]) -> None: ...
    async def verify(self, tokens: Mapping[str, object]) -> Account: ...
    async def exchange_code(self, code: str, verifier: str, redirect_uri: str | None) -> TokenSet: ...
    async def refresh(self, refresh_token: str) -> TokenSet: ...
    async def check_secret(self) -> None: ...


@dataclass(frozen=True, eq=False)  # compared by identity: no __eq__ to generate at start-up
class Service:
    """A service Kometa needs malcapture for, as data: its section, words, commands and where its tokens go."""

    name: str  # its section of Kometa's config, and its name in `status --json`
    title: str  # in words
    group: str | None  # `malcapture GROUP …`; None: the bare `malcapture`
    summary: str  # what it does for Kometa, in a line
    token_keys: tuple[str, ...]  # what a login writes, as Kometa writes it, in its order
    tokens_under: str | None  # the mapping inside the section that holds them (None: the section itself)
    spent: str | None  # a key holding a single-use code, emptied after a save (Kometa would retry it and fail)
    app: App | None  # None: no app of the user's own (its tokens are not tied to a client ID)
    ways: tuple[Way, ...]  # the ways it logs in (login/ways.py), its default first
    login_help: str
    done: str  # what the user did, in the past tense: "Authorized", "Signed in"
    module: str  # its code (ServiceCode), imported when a command needs it
    needs: tuple[str, ...] = ()  # other settings of its section its client reads (a server's URL)
    redirect: Redirect | None = None  # where its loopback login's redirect comes back to (LOOPBACK ways)
    spent_url: bool = False  # its spent code comes inside a URL (MyAnimeList's localhost_url): only such is emptied

    access_key: str = "access_token"  # the token that opens the account
    refresh_key: str | None = "refresh_token"  # the token that renews it (None: nothing renews it)

    @property
    def refreshable(self) -> bool:
        return self.refresh_key is not None

    @property
    def code(self) -> ServiceCode:
        code = getattr(importlib.import_module(self.module), "CODE", None)
        if not isinstance(code, ServiceCode):
            raise TypeError(f"{self.module} must export CODE = ServiceCode(...), its part of the contract")
        return code

    def way(self, flag: str) -> Way | None:
        """The way that `--FLAG` chooses, if this service has one."""
        return next((way for way in self.ways if way.flag and way.flag.param == flag), None)

    def command(self, *words: str) -> str:
        """How the user runs one of its commands: `malcapture trakt refresh`, or `malcapture refresh`."""
        return " ".join(["malcapture", *([self.group] if self.group else []), *words])

    def place(self, library: str | None = None) -> Place:
        """Its section: at the root, or (a second server's) inside one library's settings."""
        from malcapture.config.place import Place

        path = ("libraries", library, self.name) if library else (self.name,)
        return Place(path, self.title, self.tokens_under)

    def wants(self, tokens: TokenSet, creds: Credentials | None, extra: Wants | None = None) -> Wants:
        """What a login or refresh writes, in Kometa's order: the app's ID and secret (filled when blank
        or different: tokens belong to one app), `extra` (a server's URL), the spent code, the tokens."""
        from malcapture.config.place import SPENT, SPENT_URL, Fill, Set

        wants: dict[str, Want | Wants] = {}
        if creds is not None:
            wants |= {"client_id": Fill(creds.client_id), "client_secret": Fill(creds.client_secret or "")}
        wants |= extra or {}
        if self.spent:
            wants[self.spent] = SPENT_URL if self.spent_url else SPENT
        values: dict[str, Want | Wants] = {key: Set(value) for key, value in tokens.values.items()}
        if self.tokens_under:
            wants[self.tokens_under] = values
        else:
            wants |= values
        return wants


def urls(env: Mapping[str, str], *named: tuple[str, str]) -> list[str]:
    """Each variable's URL without a trailing slash, or its default."""
    return [env.get(name, default).rstrip("/") for name, default in named]


def http_timeout(env: Mapping[str, str]) -> float:
    timeout = env.get("MALCAPTURE_HTTP_TIMEOUT", "30")
    try:
        seconds = float(timeout)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 3600:
        raise UsageError(f"MALCAPTURE_HTTP_TIMEOUT={timeout!r} is not a number of seconds above 0 (and below an hour).")
    return seconds


@dataclass(frozen=True, eq=False)  # compared by identity: no __eq__ to generate at start-up
class LoginOptions:
    """What the user asked of a login, from the command line."""

    config_path: Path
    service: Service
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None
    way: Way | None = None  # the way the user chose with its flag (--manual, --pin, --link); None: the default
    no_browser: bool = False
    timeout: float = 300.0
    print_block: bool = False
    verify: bool = True
    bind: str | None = None
    yes: bool = False  # replace tokens that still work without asking
    url: str | None = None  # a server to check the token against (and to fill in where the config has none)
    library: str | None = None  # write into this library's settings instead of the root's
    port: int | None = None  # the loopback port to listen on, where the service lets malcapture choose
    server: str | None = None  # the server to write, by name, where the account has several

    def chose(self, way: Way) -> bool:
        """Whether the user chose `way` with its flag."""
        return self.way is not None and self.way.name == way.name


class LoginResult(NamedTuple):
    account: Account | None
    saved_to: Path | None
    printed: bool = False  # --print: the section is on standard output
    changes: tuple[str, ...] = ()  # what the save changed, in words
    declined: bool = False  # nothing was issued: the user chose to keep the tokens that still work
