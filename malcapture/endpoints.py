"""Where MyAnimeList and Trakt live (overridable for tests and the demo); no HTTP library needed to know it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from malcapture.errors import UsageError

DEFAULT_OAUTH_URL = "https://myanimelist.net/v1/oauth2"
DEFAULT_API_URL = "https://api.myanimelist.net/v2"
DEFAULT_TRAKT_AUTH_URL = "https://auth.trakt.tv"  # every /oauth/... request, since 2026
DEFAULT_TRAKT_API_URL = "https://api.trakt.tv"
DEFAULT_TRAKT_URL = "https://trakt.tv"  # the pages a browser opens
MAL_URLS = (("MALCAPTURE_OAUTH_URL", DEFAULT_OAUTH_URL), ("MALCAPTURE_API_URL", DEFAULT_API_URL))
TRAKT_URLS = (
    ("MALCAPTURE_TRAKT_AUTH_URL", DEFAULT_TRAKT_AUTH_URL),
    ("MALCAPTURE_TRAKT_API_URL", DEFAULT_TRAKT_API_URL),
    ("MALCAPTURE_TRAKT_URL", DEFAULT_TRAKT_URL),
)


@dataclass(frozen=True)
class Endpoints:
    oauth: str = DEFAULT_OAUTH_URL
    api: str = DEFAULT_API_URL
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Endpoints:
        oauth, api = _urls(env, *MAL_URLS)
        return cls(oauth, api, http_timeout(env))


@dataclass(frozen=True)
class TraktEndpoints:
    auth: str = DEFAULT_TRAKT_AUTH_URL
    api: str = DEFAULT_TRAKT_API_URL
    web: str = DEFAULT_TRAKT_URL
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TraktEndpoints:
        auth, api, web = _urls(env, *TRAKT_URLS)
        return cls(auth, api, web, http_timeout(env))


def _urls(env: Mapping[str, str], *named: tuple[str, str]) -> list[str]:
    """Each variable's URL without a trailing slash, or its default."""
    return [env.get(name, default).rstrip("/") for name, default in named]


def http_timeout(env: Mapping[str, str]) -> float:
    timeout = env.get("MALCAPTURE_HTTP_TIMEOUT", "30")
    try:
        seconds = float(timeout)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise UsageError(f"MALCAPTURE_HTTP_TIMEOUT={timeout!r} is not a number of seconds above 0.")
    return seconds
