"""After login: refresh the stored tokens (MAL rotates both) and check that they still work."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from malcapture import kometa_config
from malcapture.credentials import resolve_credentials
from malcapture.endpoints import Endpoints
from malcapture.errors import MalError, NetworkError
from malcapture.tokens import jwt_expiry
from malcapture.ui import Reporter

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def describe_expiry(expires: datetime | None, now: datetime) -> str:
    if expires is None:
        return "its expiry cannot be read from it (not a JWT)"
    left = expires - now
    when = expires.strftime("%Y-%m-%d %H:%M UTC")
    if left.total_seconds() <= 0:
        return f"it expired {when} ({_span(-left)} ago)"
    return f"it expires {when} (in {_span(left)})"


def _span(delta: timedelta) -> str:
    if delta.days >= 2:
        return f"{delta.days} days"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} hours" if hours >= 2 else f"{int(delta.total_seconds() // 60)} minutes"


def _stored(config: kometa_config.KometaConfig, key: str, env: Mapping[str, str]) -> str:
    value = config.setting(key, env)
    if not value:
        raise MalError(
            f"No MyAnimeList {key.replace('_', ' ')} is stored in mal.authorization of {config.path}.",
            "Run `malcapture` to authorize Kometa first.",
        )
    return value


@dataclass(frozen=True)
class CheckResult:
    account: str
    expires: datetime | None


async def check(path: Path, env: Mapping[str, str], reporter: Reporter, now: Clock = utc_now) -> CheckResult:
    config = kometa_config.load(path)
    access = _stored(config, "access_token", env)
    expires = jwt_expiry(access)
    reporter.info(f"The stored access token: {describe_expiry(expires, now())}.")
    from malcapture.mal import MalClient

    try:
        async with MalClient(Endpoints.from_env(env), reporter.debug) as mal:
            account = await mal.whoami(access)
    except NetworkError as exc:
        raise NetworkError(
            f"{exc.what} (The expiry above was read offline, from the token itself.)", exc.advice
        ) from None
    return CheckResult(account, expires)


@dataclass(frozen=True)
class RefreshResult:
    refreshed: bool
    expires: datetime | None
    saved_to: Path | None


async def refresh(
    path: Path,
    client_id: str | None,
    client_secret: str | None,
    env: Mapping[str, str],
    reporter: Reporter,
    if_expiring_within: timedelta | None = None,
    now: Clock = utc_now,
) -> RefreshResult:
    config = kometa_config.load(path)
    kometa_config.check_writable(config)
    refresh_token = _stored(config, "refresh_token", env)
    if if_expiring_within is not None:
        access = config.setting("access_token", env)
        expires = jwt_expiry(access) if access else None
        if expires is not None and expires - now() > if_expiring_within:
            reporter.info(f"No refresh needed: the access token {describe_expiry(expires, now())[3:]}.")
            return RefreshResult(False, expires, None)
        reporter.info(f"Refreshing: the access token {describe_expiry(expires, now())[3:]}.")
    creds = resolve_credentials(client_id, client_secret, config, dict(env), reporter, None, path)
    from malcapture.mal import MalClient

    async with MalClient(Endpoints.from_env(env), reporter.debug) as mal:
        tokens = await mal.refresh(creds.client_id, creds.client_secret, refresh_token)
    # The old refresh token died the moment MyAnimeList answered: save the new pair at once.
    saved = kometa_config.save_issued(config, tokens, creds)
    return RefreshResult(True, jwt_expiry(tokens.access_token), saved.path)
