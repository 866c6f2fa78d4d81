"""Trakt: the device flow (the default), Kometa's PIN flow (--pin), the loopback capture (--redirect-uri);
its OAuth on auth.trakt.tv, /users/settings on api.trakt.tv; its failures in plain words.

Facts: ../shared/TRAKT-OAUTH.md. Trakt's OAuth is Doorkeeper's, whose code grant checks the client
before the grant: a code that cannot exist tells a wrong secret (401 invalid_client) from a right
one (401 invalid_grant) and spends nothing. (Its refresh grant checks the token first, so it cannot.)

Its parts: login.py (the ways in), client.py (the OAuth and API client), words.py (its refusals in words).
"""

from __future__ import annotations

from malcapture.login.contract import ServiceCode
from malcapture.services.trakt.client import TOKEN_KEYS, TraktClient, authorize_url, expiry
from malcapture.services.trakt.login import login, login_async
from malcapture.tokens import TokenSet


def stand_in() -> TokenSet:
    """Trakt's tokens: 64 hexadecimal characters, opaque; the answer says when it was made."""
    values = ("0" * 64, "bearer", 86400, "0" * 64, "public", 1_700_000_000)
    return TokenSet(dict(zip(TOKEN_KEYS, values, strict=True)))


sample = """\
trakt:
  client_id:
  client_secret:
  pin:
  authorization:
    access_token:
    token_type:
    expires_in:
    refresh_token:
    scope:
    created_at:
"""


CODE = ServiceCode(
    sample=sample,
    client=TraktClient,
    expiry=expiry,
    owner=None,
    authorize_url=authorize_url,
    login=login,
    login_async=login_async,
    stand_in=stand_in,
)
