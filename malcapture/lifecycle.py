"""After login: check that the stored tokens work (and the app's secret with them), and refresh them.

Both take a Job: one service's section of one config file, the environment its placeholders read,
and where to tell the user. Neither names a service: what differs is in the Service value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from malcapture.config import kometa, lock
from malcapture.config.kometa import KometaConfig
from malcapture.config.place import Place
from malcapture.errors import ConfigError, NetworkError, ServiceError, UsageError
from malcapture.login.contract import Account, Credentials, Service, Setup, TokenClient
from malcapture.login.credentials import clean, credentials, prove, stored_expiry
from malcapture.login.keep import Destination, keep_issued
from malcapture.ui import Reporter


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def describe_expiry(service: Service, expires: datetime | None, now: datetime, subject: str = "it") -> str:
    """`it expires 2026-12-01 10:00 UTC (in 2 days)`, said of `subject`, in words that fit the service."""
    if service.code.expiry is None:
        return f"{subject} does not expire"
    if expires is None:
        return f"{subject} says nothing of when it expires (its expiry cannot be read from the config)"
    when = "after the year 9999" if expires.year == datetime.max.year else expires.strftime("%Y-%m-%d %H:%M UTC")
    left = expires - now
    if left.total_seconds() <= 0:
        return f"{subject} expired {when} ({_span(-left)} ago)"
    return f"{subject} expires {when} (in {_span(left)})"


def _span(delta: timedelta) -> str:
    if delta.days >= 2:
        return f"{delta.days} days"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} hours" if hours >= 2 else f"{int(delta.total_seconds() // 60)} minutes"


class NotAuthorized(ConfigError):
    """The config holds no token for the service."""


@dataclass(frozen=True)
class Job:
    """What one check or refresh works on: a service's section of a config file, the options that point
    at it, the environment its placeholders read, and where to tell the user."""

    path: Path
    service: Service
    env: Mapping[str, str]
    reporter: Reporter
    client_id: str | None = None
    client_secret: str | None = None
    library: str | None = None
    url: str | None = None

    @property
    def place(self) -> Place:
        return self.service.place(self.library)


@dataclass(frozen=True)
class Report:
    """What check and status say of one service (`--json` prints these fields)."""

    service: Service
    config: Path
    account: str | None
    expires_at: datetime | None
    works: bool
    problem: str | None = None
    fix: str | None = None
    kind: str = "works"  # in words: works, does not work, not checked, not authorized
    notes: tuple[str, ...] = ()  # what the user should know although it works (a read-only server…)
    exit_code: int = 0  # what the same check exits with
    facts: tuple[str, ...] = ()  # what was found, in words: the expiry read offline, the server that takes it

    def as_json(self) -> dict[str, Any]:
        expires = self.expires_at.isoformat().replace("+00:00", "Z") if self.expires_at else None
        return {
            "service": self.service.name,
            "config": str(self.config),
            "account": self.account,
            "expires_at": expires,
            "works": self.works,
            "problem": self.problem,
            "fix": self.fix,
        }


def _stored(config: KometaConfig, job: Job, key: str) -> str:
    value = config.setting(job.place, key, job.env, token=True)
    if not value:
        raise NotAuthorized(
            f"No {job.service.title} {key.replace('_', ' ')} is stored in "
            f"{job.place.dotted(*job.place.token_path(key))} "
            f"of {config.shown}.",
            f"Run `{job.service.command()}` to authorize Kometa first.",
        )
    return value


def _creds(config: KometaConfig, job: Job) -> Credentials | None:
    service, place = job.service, job.place
    if service.app is None:
        return None
    if not (clean(job.client_id) or config.setting(place, "client_id", job.env)):
        raise UsageError(
            f"No {service.title} client ID in {place.dotted('client_id')} of {config.shown}: "
            f"{service.title} wants the app's ID to check the tokens.",
            f"Fill it in from {service.app.apps}, or pass --client-id.",
        )
    return credentials(service, job.client_id, job.client_secret, config, place, job.env, job.reporter, None)


def _setup(config: KometaConfig, job: Job, creds: Credentials | None) -> Setup:
    settings = {key: job.url if key == "url" and job.url else _setting(config, job, key) for key in job.service.needs}
    return Setup(job.env, job.reporter.debug, creds, settings, Path(os.path.abspath(job.path)).parent)


def _setting(config: KometaConfig, job: Job, key: str) -> str | None:
    """A setting of the section; one a library's section leaves out is the root section's (as Kometa reads it)."""
    found = config.setting(job.place, key, job.env)
    if found is None and job.library:
        found = config.setting(job.service.place(), key, job.env)
    return found


async def check(job: Job) -> Report:
    """Whose the stored token is and until when; raises what is wrong (the CLI's message and exit code)."""
    service = job.service
    config = kometa.load(job.path)
    access = _stored(config, job, service.access_key)
    values = {key: config.setting(job.place, key, job.env, token=True) for key in service.token_keys}
    expires = stored_expiry(config, service, job.place, job.env)
    now = utc_now()
    offline = f"{config.shown}: {describe_expiry(service, expires, now, f'the stored {service.title} token')}."
    creds = _creds(config, job)
    try:
        async with service.code.client(_setup(config, job, creds)) as client:
            account = await client.verify({**values, service.access_key: access})
            await client.check_secret()
    except NetworkError as exc:
        raise Unchecked(f"{exc.what} (Read offline: {offline})", exc.advice, expires) from None
    except ServiceError as exc:
        if expires is not None and expires <= now and exc.refused:
            expired = describe_expiry(service, expires, now, "the access token")
            raise ServiceError(f"{expired} — {exc.what}", exc.advice, exc.status) from None
        raise
    if account.blocks:
        raise ServiceError(account.blocks, f"Run `{service.command()}` to sign in again.", 403)
    return Report(
        service, config.shown, account.name, expires, True, notes=account.notes, facts=(offline, *account.facts)
    )


class Unchecked(NetworkError):
    """The service could not be asked; what the config says offline (the expiry) is known all the same."""

    def __init__(self, what: str, advice: str, expires: datetime | None) -> None:
        super().__init__(what, advice)
        self.expires = expires


async def report(job: Job) -> Report:
    """check(), with what goes wrong put into the report instead of raised (status, --json)."""
    try:
        return await check(job)
    except NotAuthorized as exc:
        return _failed(job, exc, "not authorized")
    except (NetworkError, UsageError) as exc:
        return _failed(job, exc, "not checked")
    except (ServiceError, ConfigError) as exc:
        return _failed(job, exc, "does not work")


def _failed(job: Job, exc: ConfigError | ServiceError | UsageError, kind: str) -> Report:
    expires = exc.expires if isinstance(exc, Unchecked) else None  # known offline, though not checked
    return Report(
        job.service, job.path.absolute(), None, expires, False, exc.what, exc.advice or None, kind, (), exc.exit_code
    )


@dataclass(frozen=True)
class RefreshResult:
    refreshed: bool
    expires: datetime | None
    saved_to: Path | None
    changes: tuple[str, ...] = ()
    meanwhile: str | None = None  # another run refreshed first: whose tokens the config now holds


async def refresh(job: Job, if_expiring_within: timedelta | None = None) -> RefreshResult:
    # From reading the refresh token to saving its successor: another run would spend the same token.
    with lock.exclusive(job.path, job.reporter.info):
        return await _refresh(job, if_expiring_within)


async def _refresh(job: Job, if_expiring_within: timedelta | None) -> RefreshResult:
    service, place, reporter = job.service, job.place, job.reporter
    config = kometa.load(job.path)
    kometa.check_writable(config)
    assert service.refresh_key is not None, "only a service whose tokens expire is refreshed"
    refresh_token = _stored(config, job, service.refresh_key)
    expires = stored_expiry(config, service, place, job.env)
    if if_expiring_within is not None:
        now = utc_now()
        if expires is not None and expires - now > if_expiring_within:
            reporter.info(f"No refresh needed: {describe_expiry(service, expires, now, 'the access token')}.")
            return RefreshResult(False, expires, None)
        reporter.info(f"Refreshing: {describe_expiry(service, expires, now, 'the access token')}.")
    creds = credentials(service, job.client_id, job.client_secret, config, place, job.env, reporter, None)
    prove(config, service, place, creds, job.env, reporter)  # a refusal now, before the refresh token is spent
    dest = Destination(service, config, place, creds, config.target.parent, verify=False, lock=False)
    async with service.code.client(_setup(config, job, creds)) as client:
        try:
            kept = await keep_issued(lambda: client.refresh(refresh_token), client, dest, reporter, job.env)
        except NetworkError:
            raise
        except ServiceError as exc:
            found = await _refreshed_meanwhile(job, refresh_token, client) if exc.refused else None
            if found is None:
                raise
            return found
    assert kept.saved is not None
    assert service.code.expiry is not None
    return RefreshResult(True, service.code.expiry(kept.tokens.values), kept.saved.path, kept.saved.changes)


async def _refreshed_meanwhile(job: Job, sent: str, client: TokenClient) -> RefreshResult | None:
    """After a refused refresh: did another run (or Kometa) refresh first? Then check what it saved."""
    service, place = job.service, job.place
    try:
        config = kometa.load(job.path)
        values = {key: config.setting(place, key, job.env, token=True) for key in service.token_keys}
        expires = stored_expiry(config, service, place, job.env)
    except (ConfigError, UsageError):
        return None
    stored, access = values.get(service.refresh_key or ""), values.get(service.access_key)
    if not stored or stored == sent or not access:
        return None
    job.reporter.info(
        f"{service.title} refused the refresh token, but {config.shown} holds another one now: something else "
        "(another malcapture, or Kometa) refreshed meanwhile. Checking the tokens it saved…"
    )
    try:
        account: Account = await client.verify(values)
    except ServiceError:
        return None
    return RefreshResult(False, expires, None, meanwhile=account.name)
