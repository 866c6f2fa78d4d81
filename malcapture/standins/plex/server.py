"""A Plex Media Server, as ../shared/PLEX-AUTH.md describes it: `GET /identity` to anyone, `GET /` as XML
with `allowSync`, 401 without a token it knows, and /library/sections."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from aiohttp import web

from malcapture.standins.base import StandIn, route
from malcapture.standins.plex.tv import Connection, FakePlex, Resource


@dataclass
class FakePlexServer(StandIn):
    """A Plex Media Server: it takes the tokens plex.tv made for accounts it is shared with."""

    plex: FakePlex = field(default_factory=FakePlex)
    name: str = "Living room"
    machine: str = field(default_factory=lambda: secrets.token_hex(20))
    allow_sync: str = "1"  # "0": this account's token is read only here
    refused: set[str] = field(default_factory=set)  # accounts' tokens it answers 401
    shared: bool = False  # the account's own tokens are refused: only its access_tokens are taken
    access_tokens: set[str] = field(default_factory=set)  # its own tokens for the accounts it is shared with
    url: str = ""  # where serve_server put it

    def publish(self, *connections: Connection, owned: bool = True, name: str | None = None) -> Resource:
        """plex.tv lists this server among the account's resources, reached at `connections`; a shared one gets
        a token of its own, which it takes (the account's token it refuses, as a shared server does)."""
        token = None if owned else secrets.token_urlsafe(15)[:20]
        if token is not None:
            self.access_tokens.add(token)
        resource = Resource(name or self.name, self.machine, owned, token, list(connections))
        self.plex.servers.append(resource)
        return resource

    def _takes(self, request: web.Request) -> bool:
        token = request.headers.get("X-Plex-Token") or request.query.get("X-Plex-Token", "")
        if token in self.access_tokens:
            return True
        return token in self.plex.tokens and token not in self.refused and not self.shared

    @route("GET", "/identity")
    async def identity(self, request: web.Request) -> web.StreamResponse:
        """What a server says of itself to anyone: no token needed."""
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<MediaContainer size="0" claimed="1" machineIdentifier="{self.machine}" version="1.41.3.9314">\n'
            "</MediaContainer>\n"
        )
        return web.Response(text=xml, content_type="text/xml")

    @route("GET", "/")
    async def root(self, request: web.Request) -> web.StreamResponse:
        if not self._takes(request):
            return web.Response(
                status=401, text="<html><head><title>Unauthorized</title></head></html>", content_type="text/html"
            )
        attributes = {
            "size": "3",
            "allowSync": self.allow_sync,
            "friendlyName": self.name,
            "machineIdentifier": self.machine,
            "myPlexUsername": self.plex.user,
            "version": "1.41.3.9314",
        }
        shown = " ".join(f"{k}={quoteattr(v)}" for k, v in attributes.items())
        xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<MediaContainer {shown}>\n</MediaContainer>\n'
        return web.Response(text=xml, content_type="text/xml")

    @route("GET", "/library/sections")
    async def sections(self, request: web.Request) -> web.StreamResponse:
        if not self._takes(request):
            return web.Response(status=401)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<MediaContainer size="2" allowSync="0">\n'
            '<Directory key="1" type="movie" title="Movies" agent="tv.plex.agents.movie"/>\n'
            '<Directory key="2" type="show" title="Anime" agent="tv.plex.agents.series"/>\n</MediaContainer>\n'
        )
        return web.Response(text=xml, content_type="text/xml")
