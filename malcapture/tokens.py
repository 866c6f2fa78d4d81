"""The tokens MyAnimeList issues, and what can be read from them without asking it."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone


def redact(secret: str | None) -> str:
    """What `-v` may show of a secret: its first 6 characters."""
    if not secret:
        return "(none)"
    return f"{secret[:6]}…({len(secret)} chars)"


@dataclass(frozen=True)
class TokenSet:
    """`mal.authorization` as Kometa stores it; repr never shows the tokens."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int
    refresh_token: str = field(repr=False)

    def as_mapping(self) -> dict[str, str | int]:
        # Kometa's own order (modules/mal.py).
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }

    def secrets(self) -> tuple[str, str]:
        return self.access_token, self.refresh_token


def jwt_expiry(access_token: str) -> datetime | None:
    """The `exp` claim of MAL's RS256 access token, read without checking the signature.

    The signature is MyAnimeList's business; we only want to tell the user when it runs out.
    """
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return datetime.fromtimestamp(int(claims["exp"]), tz=timezone.utc)
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        return None
