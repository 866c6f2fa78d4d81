"""PKCE (plain, the only method MyAnimeList supports), state, and the authorize URL."""

from __future__ import annotations

import secrets
import string
from urllib.parse import urlencode

VERIFIER_ALPHABET = string.ascii_letters + string.digits + "-_"
VERIFIER_LENGTH = 128


def make_verifier() -> str:
    return "".join(secrets.choice(VERIFIER_ALPHABET) for _ in range(VERIFIER_LENGTH))


def make_state() -> str:
    # 32 bytes = 256 bits, URL-safe so it survives the round trip unescaped.
    return secrets.token_urlsafe(32)


def authorize_url(oauth_base: str, client_id: str, verifier: str, state: str, redirect_uri: str | None) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "code_challenge": verifier,
        "code_challenge_method": "plain",
        "state": state,
    }
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    return f"{oauth_base.rstrip('/')}/authorize?{urlencode(params)}"
