"""After login: refresh the stored tokens (MAL rotates both) and check that they still work."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from malcapture import interrupts, kometa_config, lock, providers
from malcapture.credentials import clean, resolve_credentials
from malcapture.errors import ConfigError, MalError, NetworkError, UnusableTokens, UsageError
from malcapture.sections import MAL, Section
from malcapture.tokens import jwt_claims
from malcapture.ui import Reporter

if TYPE_CHECKING:
    from malcapture.providers import TokenClient


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


def _stored(config: kometa_config.KometaConfig, key: str, env: Mapping[str, str], section: Section) -> str:
    value = config.setting(key, env, section)
    if not value:
        raise ConfigError(
            f"No {section.title} {key.replace('_', ' ')} is stored in {section.name}.authorization of {config.path}.",
            f"Run `{login_command(section)}` to authorize Kometa first.",
        )
    return value


def login_command(section: Section) -> str:
    return "malcapture" if section is MAL else f"malcapture {section.name}"


def command(section: Section, name: str) -> str:
    return f"malcapture {name}" if section is MAL else f"malcapture {section.name} {name}"


@dataclass(frozen=True)
class Job:
    """What one check or refresh works on: a service's section of a config file, the environment its
    placeholders read, and where to tell the user."""

    path: Path
    section: Section
    env: Mapping[str, str]
    reporter: Reporter


@dataclass(frozen=True)
class CheckResult:
    account: str
    expires: datetime | None


async def check(job: Job, client_id: str | None = None) -> CheckResult:
    path, section, env, reporter = job.path, job.section, job.env, job.reporter
    config = kometa_config.load(path)
    access = _stored(config, "access_token", env, section)
    expires = kometa_config.stored_expiry(config, env, section)
    reporter.info(f"The stored {section.title} access token: {describe_expiry(expires, utc_now())}.")
    cid = clean(client_id) or clean(config.setting("client_id", env, section))
    if section is MAL:
        _compare_client(access, cid, reporter)
    elif not cid:
        raise UsageError(
            f"No {section.title} client ID: Trakt wants it with every request.",
            f"Pass --client-id, set {section.env[0]}, or fill in {section.name}.client_id in {path}.",
        )
    provider = providers.for_section(section, env)
    try:
        async with provider.client(cid or "", reporter.debug) as client:
            account = await client.whoami(access)
    except NetworkError as exc:
        raise NetworkError(f"{exc.what} (The expiry above was read offline, from the config.)", exc.advice) from None
    return CheckResult(account, expires)


def _compare_client(access: str, client_id: str | None, reporter: Reporter) -> None:
    """MAL's access token names the client it was issued to (`aud`): a mismatch breaks the next refresh."""
    audience = jwt_claims(access).get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id and audience and client_id not in audiences:
        reporter.warn(
            f"the stored token was issued to the MAL app {audiences[0]}, not to the client ID {client_id}: the next "
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
    job: Job, client_id: str | None, client_secret: str | None, if_expiring_within: timedelta | None = None
) -> RefreshResult:
    # From reading the refresh token to saving its successor: another run would spend the same token.
    with lock.exclusive(job.path, job.reporter.info):
        return await _refresh(job, client_id, client_secret, if_expiring_within)


async def _refresh(
    job: Job, client_id: str | None, client_secret: str | None, if_expiring_within: timedelta | None
) -> RefreshResult:
    path, section, env, reporter = job.path, job.section, job.env, job.reporter
    config = kometa_config.load(path)
    kometa_config.check_writable(config)
    refresh_token = _stored(config, "refresh_token", env, section)
    expires = kometa_config.stored_expiry(config, env, section)
    if if_expiring_within is not None:
        now = utc_now()
        if expires is not None and expires - now > if_expiring_within:
            reporter.info(f"No refresh needed: the access token {describe_expiry(expires, now)[3:]}.")
            return RefreshResult(False, expires, None)
        reporter.info(f"Refreshing: the access token {describe_expiry(expires, now)[3:]}.")
    creds = resolve_credentials(client_id, client_secret, config, dict(env), reporter, None, path, section)
    kometa_config.prove_save(config, creds, section)  # a refusal now, before the refresh token is spent
    provider = providers.for_section(section, env)
    with interrupts.held() as hold:  # the old refresh token dies when the service answers: save the new pair
        async with provider.client(creds.client_id, reporter.debug) as client:
            try:
                tokens = await client.refresh(creds.client_id, creds.client_secret, refresh_token)
            except UnusableTokens as exc:
                raise kometa_config.keep_unusable(config.target.parent, exc) from None
            except NetworkError:
                raise
            except MalError:
                found = await _refreshed_meanwhile(job, refresh_token, client)
                if found is None:
                    raise
                return found
        hold.block = kometa_config.config_block(creds, tokens, section)
        saved = kometa_config.save_issued(config, tokens, creds, section=section)  # the lock is held: see refresh()
        hold.saved_to = saved.path
    return RefreshResult(True, tokens.expires_at(), saved.path, saved.changes)


async def _refreshed_meanwhile(job: Job, sent: str, client: TokenClient) -> RefreshResult | None:
    """After a refused refresh: did another run (or Kometa) refresh first? Then check what it saved."""
    path, section, env = job.path, job.section, job.env
    try:
        config = kometa_config.load(path)
        stored = config.setting("refresh_token", env, section)
        access = config.setting("access_token", env, section)
        expires = kometa_config.stored_expiry(config, env, section)
    except (ConfigError, UsageError):
        return None
    if not stored or stored == sent or not access:
        return None
    job.reporter.info(
        f"{section.title} refused the refresh token, but {path} holds another one now: something else "
        "(another malcapture, or Kometa) refreshed meanwhile. Checking the tokens it saved…"
    )
    try:
        account = await client.whoami(access)
    except MalError:
        return None
    return RefreshResult(False, expires, None, meanwhile=account)
