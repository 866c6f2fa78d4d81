"""A stand-in for plex.tv's PIN sign-in and app.plex.tv's sign-in page (tv.py), and for a Plex Media Server
(server.py), as ../shared/PLEX-AUTH.md describes them.

Used by `malcapture demo` and by the tests.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from malcapture.standins.base import Demo, serve_app
from malcapture.standins.plex.server import FakePlexServer
from malcapture.standins.plex.tv import Connection, FakePlex, Resource

if TYPE_CHECKING:
    from malcapture.login.contract import LoginOptions

__all__ = ["Connection", "FakePlex", "FakePlexServer", "Resource", "demo", "env_for", "serve", "serve_server"]


async def serve(fake: FakePlex, tls: ssl.SSLContext | None = None) -> tuple[web.AppRunner, str]:
    return await serve_app(fake.application(), tls=tls)


async def serve_server(server: FakePlexServer, tls: ssl.SSLContext | None = None) -> tuple[web.AppRunner, str]:
    runner, server.url = await serve_app(server.application(), tls=tls)
    return runner, server.url


def env_for(base: str) -> dict[str, str]:
    """The variables that point malcapture's Plex side at the stand-in."""
    return {"MALCAPTURE_PLEX_TV_URL": base, "MALCAPTURE_PLEX_APP_URL": base}


@contextlib.asynccontextmanager
async def demo() -> AsyncIterator[Demo]:
    fake = FakePlex(consent="allow")
    server = FakePlexServer(plex=fake)
    runner, base = await serve(fake)
    server_runner, server_base = await serve_server(server)

    def options(config: Path, headless: bool) -> LoginOptions:
        from malcapture.login.contract import LoginOptions
        from malcapture.services import PLEX

        return LoginOptions(config, PLEX, yes=True, url=server_base, way=PLEX.way("link") if headless else None)

    try:
        yield Demo(env_for(base), "the PIN sign-in", fake, options, lambda io: fake.sign_in_when_shown())
    finally:
        await server_runner.cleanup()
        await runner.cleanup()
