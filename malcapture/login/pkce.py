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


def s256(verifier: str) -> str:
    """The S256 code challenge of a verifier (RFC 7636 4.2): base64url(SHA-256(verifier)), unpadded."""
    import base64
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")
