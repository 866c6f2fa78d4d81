"""Plex: the PIN sign-in as Kometa's own device, the token checked against plex.tv and the user's server.

Facts: ../shared/PLEX-AUTH.md. On a desktop a strong PIN is signed in at app.plex.tv, which sends the
browser back to a loopback server of ours (forwardUrl: no secret in it, it only brings the next
poll forward); elsewhere a 4-character code is typed at plex.tv/link. Either way the PIN is polled
until it holds the token, which never expires. The client identifier is Kometa's (the file UUID
beside the config), so that plex.tv lists Kometa as one device.

Its parts: login.py (the sign-in), client.py (plex.tv and the server), url.py (plex.url checked, or found
and filled), servers.py (the account's servers tried and ranked), device.py (Kometa's device ID, the file
UUID).
"""

from __future__ import annotations

from malcapture.login.contract import ServiceCode
from malcapture.services.plex.client import PlexClient
from malcapture.services.plex.login import login, login_async
from malcapture.tokens import TokenSet

sample = """\
plex:
  url:                             # Enter Plex URL (REQUIRED)
  token:                           # Enter Plex Token (REQUIRED)
  timeout: 60
"""


def stand_in() -> TokenSet:
    """Plex's tokens: 20 characters."""
    return TokenSet({"token": "x" * 20}, access="token", refresh=None)


CODE = ServiceCode(
    sample=sample,
    client=PlexClient,
    expiry=None,  # the classic token does not expire
    owner=None,
    authorize_url=None,
    login=login,
    login_async=login_async,
    stand_in=stand_in,
)
