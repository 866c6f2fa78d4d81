"""PKCE verifiers and OAuth states: fresh, random and URL-safe."""

from __future__ import annotations

import secrets
import string

VERIFIER_ALPHABET = string.ascii_letters + string.digits + "-_"
VERIFIER_LENGTH = 128


def make_verifier() -> str:
    return "".join(secrets.choice(VERIFIER_ALPHABET) for _ in range(VERIFIER_LENGTH))


def make_state() -> str:
    # 32 bytes = 256 bits, URL-safe so it survives the round trip unescaped.
    return secrets.token_urlsafe(32)
