"""Finding the user's Plex server for `plex.url`: plex.tv lists the account's servers and how each can be
reached; every candidate is tried from this machine at once, with a short deadline, and those that answer
are ranked as Plex's own clients rank them (python-plexapi): local before remote before relay, https before
http, then the fastest.

Each connection is tried twice: as plex.tv names it (`uri`, a `*.plex.direct` https name whose certificate
fits) and as its plain `http://address:port` (what works when that name does not resolve here). A server
answers `GET /identity` without a token; its `machineIdentifier` must be the one plex.tv listed, so a
different server on the same address is not taken for it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

PROBE_DEADLINE = 3.0  # seconds for all the tries together: a local server answers in milliseconds
DOCKER = ipaddress.ip_network("172.16.0.0/12")


class Candidate(NamedTuple):
    """One way to reach one server."""

    server: str  # its name
    machine: str  # its machineIdentifier
    owned: bool
    token: str  # the token this account uses there (a shared server's own)
    url: str
    local: bool
    relay: bool
    address: str

    @property
    def https(self) -> bool:
        return self.url.startswith("https://")


class Answered(NamedTuple):
    candidate: Candidate
    ms: int

    def describe(self) -> str:
        c = self.candidate
        where = "relay" if c.relay else "local" if c.local else "remote"
        owner = "owned" if c.owned else "shared with you"
        return f"{c.server} ({owner}, {where}, {'https' if c.https else 'http'}, answered in {self.ms} ms): {c.url}"


def candidates(resources: object) -> list[Candidate]:
    """The servers' connections in plex.tv's answer to /api/v2/resources, each as named and as plain http."""
    found: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    for resource in resources if isinstance(resources, list) else []:
        if not isinstance(resource, dict) or "server" not in str(resource.get("provides", "")).split(","):
            continue
        name, machine = str(resource.get("name") or "?"), str(resource.get("clientIdentifier") or "")
        owned, token = bool(resource.get("owned")), str(resource.get("accessToken") or "")
        for connection in resource.get("connections") or []:
            if not isinstance(connection, dict):
                continue
            for url in _urls(connection):
                if (machine, url) not in seen:
                    seen.add((machine, url))
                    local, relay = bool(connection.get("local")), bool(connection.get("relay"))
                    address = str(connection.get("address") or "")
                    found.append(Candidate(name, machine, owned, token, url, local, relay, address))
    return found


def _urls(connection: Mapping[str, Any]) -> list[str]:
    urls = []
    uri = str(connection.get("uri") or "").rstrip("/")
    if uri.startswith(("http://", "https://")):
        urls.append(uri)
    address, port = str(connection.get("address") or ""), connection.get("port")
    if address and isinstance(port, int) and 0 < port < 65536:
        host = f"[{address}]" if ":" in address else address
        urls.append(f"http://{host}:{port}")
    return urls


async def answering(
    found: Sequence[Candidate], identity: Callable[[str], Awaitable[str | None]], now: Callable[[], float]
) -> list[Answered]:
    """Those of `found` whose server answers as itself, all tried at once; ranked best first."""
    import asyncio

    async def attempt(candidate: Candidate) -> Answered | None:
        started = now()
        machine = await identity(candidate.url)
        if machine is None or (candidate.machine and machine != candidate.machine):
            return None
        return Answered(candidate, max(0, round((now() - started) * 1000)))

    tried = await asyncio.gather(*(attempt(candidate) for candidate in found))
    return rank([answer for answer in tried if answer is not None])


def rank(answers: Sequence[Answered]) -> list[Answered]:
    """As Plex's clients choose: local before remote before relay, https before http, then the fastest."""
    return sorted(answers, key=lambda a: (a.candidate.relay, not a.candidate.local, not a.candidate.https, a.ms))


def by_server(answers: Sequence[Answered]) -> dict[str, list[Answered]]:
    """The answers of each server (by machineIdentifier), best first, servers in their best answer's order."""
    grouped: dict[str, list[Answered]] = {}
    for answer in answers:
        grouped.setdefault(answer.candidate.machine, []).append(answer)
    return grouped


def reach_note(candidate: Candidate) -> str | None:
    """What an address tells of where it can be reached from."""
    try:
        address = ipaddress.ip_address(candidate.address)
    except ValueError:
        return None
    if address.version == 4 and address in DOCKER:
        return f"{candidate.address} is a Docker bridge address: only that Docker host (and its containers) reach it"
    if address.is_link_local:
        return f"{candidate.address} is a link-local address: only that network segment reaches it"
    return None


def same_server(url: str, found: Sequence[Candidate]) -> str | None:
    """The machineIdentifier of the listed server one of whose connections `url` is, if any."""
    wanted = _host_port(url)
    return next((c.machine for c in found if _host_port(c.url) == wanted), None)


def _host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
