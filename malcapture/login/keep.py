"""Tokens just issued: hold signals, check the account, save — or keep them where the user finds them.

Written once, for every way a service issues tokens: a code exchanged, a device or PIN approved, a
refresh. From the request that spends a code or refresh token to the end of the save, a stopping
signal waits (interrupts.held). Issued tokens are never dropped: saved where Kometa reads them, or
printed on standard output first and then written to a file of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from malcapture import interrupts
from malcapture.config.blocks import config_block, keep_tokens, whole_section
from malcapture.config.kometa import KometaConfig
from malcapture.config.place import Place, Wants
from malcapture.config.plan import Plan, plan_save
from malcapture.config.save import Saved, save_locked
from malcapture.errors import ConfigError, NetworkError, ServiceError, TokensNotSaved, UnusableTokens
from malcapture.login.contract import Account, Credentials, LoginOptions, LoginResult, Service, TokenClient
from malcapture.login.prepare import Prepared
from malcapture.tokens import TokenSet
from malcapture.ui import Reporter

Pending = TypeVar("Pending")


@dataclass(frozen=True)
class Destination:
    """Where issued tokens go: a place in a config (or standard output, for --print), with what else is written."""

    service: Service
    config: KometaConfig | None
    place: Place
    creds: Credentials | None
    folder: Path  # where a file of rescued tokens goes first
    extra: Wants | None = None  # written with the tokens (a server's URL)
    print_only: bool = False
    verify: bool = True  # check whose the tokens are before saving them
    lock: bool = True  # take the config's lock for the save (a refresh already holds it)

    @classmethod
    def of(cls, opts: LoginOptions, prepared: Prepared, extra: Wants | None = None) -> Destination:
        """Where a login's tokens go: the config it prepared, or standard output with --print."""
        folder = prepared.config.target.parent if prepared.config else opts.config_path.absolute().parent
        return cls(
            opts.service, prepared.config, prepared.place, prepared.creds, folder, extra, opts.print_block, opts.verify
        )


@dataclass(frozen=True)
class Kept:
    """Issued tokens, kept: saved where Kometa reads them, or printed (--print)."""

    tokens: TokenSet
    account: Account | None
    saved: Saved | None  # None: printed (--print)

    def result(self) -> LoginResult:
        saved = self.saved
        return LoginResult(
            self.account, saved.path if saved else None, printed=saved is None, changes=saved.changes if saved else ()
        )


async def keep_issued(
    spend: Callable[[], Awaitable[TokenSet | Pending]],
    client: TokenClient,
    dest: Destination,
    reporter: Reporter,
    env: Mapping[str, str],
) -> Kept | Pending:
    """Run `spend` (the request that may issue tokens) and keep what it issues; what it returns when it
    issued nothing (a pending poll) is returned as it is."""
    with interrupts.held() as hold:
        try:
            got = await spend()
        except UnusableTokens as exc:
            raise _unusable(exc, dest, reporter, hold) from None
        if not isinstance(got, TokenSet):
            return got
        wants = dest.service.wants(got, dest.creds, dest.extra)
        block = config_block(dest.place, wants)
        account = await _checked(got, client, dest, block, wants, reporter, env, hold)
        found = account.account.writes if account.account else None
        if found:  # the check found what else to write (a server's URL): the save is worked out again
            wants = {**wants, **found}
            block = config_block(dest.place, wants)
            account = _Checked(account.account, None)
        if dest.print_only or dest.config is None:
            whole = whole_section(dest.config, dest.place, wants, env) if dest.config is not None else None
            reporter.block(whole or block)
            hold.printed = True
            return Kept(got, account.account, None)
        try:
            lock_says = reporter.info if dest.lock else None
            saved = save_locked(dest.config, dest.place, wants, env, lock_says, account.planned)
        except ConfigError as exc:
            kept = _rescue(block, dest, reporter, hold)
            raise TokensNotSaved(
                f"{dest.service.title} issued tokens, but they could not be saved: {exc.what}",
                f"{_where(kept, dest.place)} paste it into Kometa's config.yml yourself. {exc.advice}",
            ) from None
        hold.saved_to = saved.path
        return Kept(got, account.account, saved)


@dataclass(frozen=True)
class _Checked:
    account: Account | None
    planned: Plan | None


async def _checked(
    tokens: TokenSet,
    client: TokenClient,
    dest: Destination,
    block: str,
    wants: Wants,
    reporter: Reporter,
    env: Mapping[str, str],
    hold: interrupts.Hold,
) -> _Checked:
    """Whose the tokens are, asked while the save is worked out. A service that refuses the new tokens
    gets them printed, not saved; one that cannot be asked gets them saved, with a warning."""
    checking = asyncio.ensure_future(client.verify(tokens.as_mapping())) if dest.verify else None
    try:
        planned = _plan_meanwhile(dest, wants, env)
        return _Checked(await checking if checking else None, planned)
    except ServiceError as exc:
        if exc.refused and not isinstance(exc, NetworkError):
            kept = _rescue(block, dest, reporter, hold)
            raise ServiceError(
                f"{dest.service.title} issued tokens, but {exc.what[0].lower()}{exc.what[1:]}",
                f"The config was not changed. {_where(kept, dest.place)} {exc.advice}",
                exc.status,
            ) from None
        reporter.warn(
            f"the new tokens could not be checked ({exc.what}); they are saved all the same: "
            f"run `{dest.service.command('check')}` later to see whose they are."
        )
        return _Checked(None, None)
    finally:
        if checking:
            checking.cancel()


def _plan_meanwhile(dest: Destination, wants: Wants, env: Mapping[str, str]) -> Plan | None:
    """The save worked out ahead; anything odd is left for the save itself to find and explain."""
    if dest.config is None or dest.print_only:
        return None
    try:
        return plan_save(dest.config, dest.place, wants, env)
    except ConfigError:
        return None


def _rescue(block: str, dest: Destination, reporter: Reporter, hold: interrupts.Hold) -> Path | None:
    """Issued tokens that will not be saved: on standard output first, then in a file (cron and
    systemd discard standard output). Neither may fail the other."""
    with contextlib.suppress(OSError):
        reporter.block(block)
        hold.printed = True
    return keep_tokens(dest.folder, block)


def _where(kept: Path | None, place: Place) -> str:
    also = f" and in {kept}" if kept else ""
    return f"The new tokens are on standard output as a {place.path[0]}: block{also}:"


def _unusable(exc: UnusableTokens, dest: Destination, reporter: Reporter, hold: interrupts.Hold) -> UnusableTokens:
    """A service's answer that cannot be saved as text, kept escaped: its new refresh token is in it."""
    answer = f"# {dest.service.title}'s answer, with its broken characters escaped\n{exc.answer}\n"
    kept = _rescue(answer, dest, reporter, hold)
    where = f" Its answer is on standard output{f' and in {kept}' if kept else ''}."
    return UnusableTokens(exc.what + where, exc.advice, exc.answer)
