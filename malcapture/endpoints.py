"""Where MyAnimeList lives (overridable for tests and the demo); no HTTP library needed to know it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from malcapture.errors import UsageError

DEFAULT_OAUTH_URL = "https://myanimelist.net/v1/oauth2"
DEFAULT_API_URL = "https://api.myanimelist.net/v2"


@dataclass(frozen=True)
class Endpoints:
    oauth: str = DEFAULT_OAUTH_URL
    api: str = DEFAULT_API_URL
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Endpoints:
        timeout = env.get("MALCAPTURE_HTTP_TIMEOUT", "30")
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = 0.0
        if not seconds > 0:
            raise UsageError(f"MALCAPTURE_HTTP_TIMEOUT={timeout!r} is not a number of seconds above 0.")
        return cls(
            env.get("MALCAPTURE_OAUTH_URL", DEFAULT_OAUTH_URL).rstrip("/"),
            env.get("MALCAPTURE_API_URL", DEFAULT_API_URL).rstrip("/"),
            seconds,
        )
