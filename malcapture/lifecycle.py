"""After login: refresh the stored tokens (MAL rotates both) and check that they still work."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from malcapture import interrupts, kometa_config, lock
from malcapture.credentials import clean, resolve_credentials
from malcapture.endpoints import Endpoints
from malcapture.errors import ConfigError, MalError, NetworkError, UnusableTokens, UsageError
from malcapture.tokens import jwt_claims, jwt_expiry
from malcapture.ui import Reporter

if TYPE_CHECKING:
    from malcapture.mal import MalClient

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
        raise ConfigError(
            f"No MyAnimeList {key.replace('_', ' ')} is stored in mal.authorization of {config.path}.",
            "Run `malcapture` to authorize Kometa first.",
        )
    return value


@dataclass(frozen=True)
class CheckResult:
    account: str
    expires: datetime | None


async def check(
    path: Path, env: Mapping[str, str], reporter: Reporter, client_id: str | None = None, now: Clock = utc_now
) -> CheckResult:
    config = kometa_config.load(path)
    access = _stored(config, "access_token", env)
    expires = jwt_expiry(access)
    reporter.info(f"The stored access token: {describe_expiry(expires, now())}.")
    _compare_client(access, client_id or config.setting("client_id", env), reporter)
    from malcapture.mal import MalClient

    try:
        async with MalClient(Endpoints.from_env(env), reporter.debug) as mal:
            account = await mal.whoami(access)
    except NetworkError as exc:
        raise NetworkError(
            f"{exc.what} (The expiry above was read offline, from the token itself.)", exc.advice
        ) from None
    return CheckResult(account, expires)


def _compare_client(access: str, client_id: str | None, reporter: Reporter) -> None:
    """MAL's access token names the client it was issued to (`aud`): a mismatch breaks the next refresh."""
    audience = jwt_claims(access).get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    cid = clean(client_id)
    if cid and audience and cid not in audiences:
        reporter.warn(
            f"the stored token was issued to the MAL app {audiences[0]}, not to the client ID {cid}: the next "
            'refresh will fail ("Token is not linked to client"). Put back that app\'s client ID and secret, '
            "or run `malcapture` to authorize with this one."
        )


@dataclass(frozen=True)
class RefreshResult:
    refreshed: bool
    expires: datetime | None
    saved_to: Path | None
    changes: tuple[str, ...] = ()
    meanwhile: str | None = None  # another run refreshed first: whose tokens the config now holds


async def refresh(
    path: Path,
    client_id: str | None,
    client_secret: str | None,
    env: Mapping[str, str],
    reporter: Reporter,
    if_expiring_within: timedelta | None = None,
    now: Clock = utc_now,
) -> RefreshResult:
    # From reading the refresh token to saving its successor: another run would spend the same token.
    with lock.exclusive(path, reporter.info):
        return await _refresh(path, client_id, client_secret, env, reporter, if_expiring_within, now)


async def _refresh(
    path: Path,
    client_id: str | None,
    client_secret: str | None,
    env: Mapping[str, str],
    reporter: Reporter,
    if_expiring_within: timedelta | None,
    now: Clock,
) -> RefreshResult:
    config = kometa_config.load(path)
    kometa_config.check_writable(config)
    refresh_token = _stored(config, "refresh_token", env)
    access = config.setting("access_token", env)
    expires = jwt_expiry(access) if access else None
    if if_expiring_within is not None:
        if expires is not None and expires - now() > if_expiring_within:
            reporter.info(f"No refresh needed: the access token {describe_expiry(expires, now())[3:]}.")
            return RefreshResult(False, expires, None)
        reporter.info(f"Refreshing: the access token {describe_expiry(expires, now())[3:]}.")
    creds = resolve_credentials(client_id, client_secret, config, dict(env), reporter, None, path)
    kometa_config.prove_save(config, creds)  # a refusal now, before the refresh token is spent
    from malcapture.mal import MalClient

    with interrupts.held() as hold:  # the old refresh token dies when MyAnimeList answers: save the new pair
        async with MalClient(Endpoints.from_env(env), reporter.debug) as mal:
            try:
                tokens = await mal.refresh(creds.client_id, creds.client_secret, refresh_token)
            except UnusableTokens as exc:
                raise kometa_config.keep_unusable(config.target.parent, exc) from None
            except NetworkError:
                raise
            except MalError:
                found = await _refreshed_meanwhile(path, refresh_token, env, mal, reporter)
                if found is None:
                    raise
                return found
        hold.block = kometa_config.config_block(creds, tokens)
        saved = kometa_config.save_issued(config, tokens, creds)  # the lock is held: see refresh()
        hold.saved_to = saved.path
    return RefreshResult(True, jwt_expiry(tokens.access_token), saved.path, saved.changes)


async def _refreshed_meanwhile(
    path: Path, sent: str, env: Mapping[str, str], mal: MalClient, reporter: Reporter
) -> RefreshResult | None:
    """After a refused refresh: did another run (or Kometa) refresh first? Then check what it saved."""
    try:
        config = kometa_config.load(path)
        stored, access = config.setting("refresh_token", env), config.setting("access_token", env)
    except (ConfigError, UsageError):
        return None
    if not stored or stored == sent or not access:
        return None
    reporter.info(
        f"MyAnimeList refused the refresh token, but {path} holds another one now: something else "
        "(another malcapture, or Kometa) refreshed meanwhile. Checking the tokens it saved…"
    )
    try:
        account = await mal.whoami(access)
    except MalError:
        return None
    return RefreshResult(False, jwt_expiry(access), None, meanwhile=account)
