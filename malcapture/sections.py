"""The sections of Kometa's config that malcapture writes, one per service: what differs is data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    name: str  # the top-level key: `mal:`, `trakt:`
    title: str  # the service, in words
    spent: str  # a key holding a single-use code, emptied after a save (Kometa would retry it and fail)
    token_keys: tuple[str, ...]  # `authorization:` as Kometa writes it, in its order
    env: tuple[str, str]  # the variables for --client-id and --client-secret
    id_length: int  # a client ID is this many hexadecimal characters
    opaque_tokens: bool  # True: the expiry is created_at + expires_in; False: the access token is a JWT
    apps: str  # where the user finds the app's ID and secret

    def looks_like_client_id(self, value: str) -> bool:
        return len(value) == self.id_length and all(ch in "0123456789abcdef" for ch in value.lower())


MAL = Section(
    name="mal",
    title="MyAnimeList",
    spent="localhost_url",
    token_keys=("access_token", "token_type", "expires_in", "refresh_token"),
    env=("MAL_CLIENT_ID", "MAL_CLIENT_SECRET"),
    id_length=32,
    opaque_tokens=False,
    apps="https://myanimelist.net/apiconfig",
)
TRAKT = Section(
    name="trakt",
    title="Trakt",
    spent="pin",
    token_keys=("access_token", "token_type", "expires_in", "refresh_token", "scope", "created_at"),
    env=("TRAKT_CLIENT_ID", "TRAKT_CLIENT_SECRET"),
    id_length=64,
    opaque_tokens=True,
    apps="https://developer.trakt.tv (Your API Apps)",
)
SECTIONS = (MAL, TRAKT)
