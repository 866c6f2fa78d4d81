"""Connections kept ready while the user clicks, pastes or approves: the requests after it need no handshake."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from malcapture.login.contract import TokenClient


@contextlib.asynccontextmanager
async def warm(client: TokenClient, urls: Sequence[str]) -> AsyncIterator[None]:
    """While the block waits for the user, keep the connections the next requests need open and ready."""
    warming = asyncio.ensure_future(client.keep_warm(urls))
    try:
        yield
    finally:
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warming
