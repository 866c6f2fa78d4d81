"""The tokens MyAnimeList issues, and what can be read from them without asking it."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def redact(secret: str | None) -> str:
    """What `-v` may show of a secret: its first 6 characters."""
    if not secret:
        return "(none)"
    return f"{secret[:6]}…({len(secret)} chars)"


@dataclass(frozen=True)
class TokenSet:
    """`authorization:` as Kometa stores it; repr never shows the tokens. Trakt's answers also carry
    `scope` and `created_at`; MyAnimeList's do not."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int
    refresh_token: str = field(repr=False)
    scope: str | None = None
    created_at: int | None = None

    def as_mapping(self) -> dict[str, str | int]:
        # Kometa's own order (modules/mal.py, modules/trakt.py).
        values: dict[str, str | int | None] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
            "created_at": self.created_at,
        }
        return {key: value for key, value in values.items() if value is not None}

    def expires_at(self) -> datetime | None:
        """`created_at + expires_in` where the answer says when it was made (Trakt), else the JWT's `exp`."""
        if self.created_at is not None:
            return datetime.fromtimestamp(self.created_at + self.expires_in, tz=timezone.utc)
        return jwt_expiry(self.access_token)

    def secrets(self) -> tuple[str, str]:
        return self.access_token, self.refresh_token


def jwt_claims(access_token: str) -> dict[str, Any]:
    """The payload of MAL's RS256 access token (`aud`, `sub`, `exp`…), read without checking the signature.

    The signature is MyAnimeList's business; we only want to tell the user whose token it is and
    when it runs out. Not a JWT: no claims.
    """
    parts = access_token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def jwt_expiry(access_token: str) -> datetime | None:
    """The `exp` claim of the access token, if it has one."""
    try:
        return datetime.fromtimestamp(int(jwt_claims(access_token)["exp"]), tz=timezone.utc)
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        return None


def _stand_in_jwt() -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"aud": "0" * 32, "jti": "0" * 80, "iat": 0, "nbf": 0, "exp": 0, "sub": "0", "scopes": []}
    return f"{part({'typ': 'JWT', 'alg': 'RS256', 'jti': '0' * 80})}.{part(claims)}.{'A' * 683}"


# Tokens of the shape each service issues, for proving that a save will work before a real code or
# refresh token is spent: MyAnimeList's ~1,000-character RS256 JWT and def50200… refresh token,
# Trakt's 64-hex-character opaque tokens.
STAND_INS = {
    "mal": TokenSet(_stand_in_jwt(), "Bearer", 2678400, "def50200" + "0" * 1000),
    "trakt": TokenSet("0" * 64, "bearer", 86400, "0" * 64, "public", 1_700_000_000),
}
