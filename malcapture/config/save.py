"""Save a login's values into Kometa's config: planned and proven (plan.py), then written — the config and
the `.env` beside it, neither left half-changed — into the file as it is now, under its lock.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from malcapture.config import lock
from malcapture.config.atomic import ChangedMeanwhile, Rename, replace_file
from malcapture.config.changes import where_backup
from malcapture.config.kometa import KometaConfig, advice_for, check_writable, parse
from malcapture.config.place import Place, Wants
from malcapture.config.plan import Plan, plan_save
from malcapture.errors import ConfigError

SAVE_TRIES = 3  # an edit made to the file during the save is spliced into, this many times at most


class Saved(NamedTuple):
    path: Path
    backup: Path | None
    changes: tuple[str, ...] = ()  # what changed, in words, with line numbers


def save(
    config: KometaConfig,
    place: Place,
    wants: Wants,
    env: Mapping[str, str],
    rename: Rename = os.replace,
    planned: Plan | None = None,
) -> Saved:
    """Write the values in; `planned`, made from the same values ahead of time, is used if the file is unchanged."""
    started = time.time()
    for _ in range(SAVE_TRIES):
        current = _read_again(config)
        if current != config.raw:  # edited since it was read: splice into what is there now
            config = parse(config.path, current)
        check_writable(config)
        fresh = planned is not None and planned.config.raw == current
        plan = planned if planned is not None and fresh else plan_save(config, place, wants, env)
        planned = None
        try:
            _write_held(plan, started)
        except ChangedMeanwhile:
            continue
        except OSError as exc:
            where = plan.dotenv.path if plan.dotenv else config.shown
            raise ConfigError(f"Could not write {where}: {exc.strerror or exc}.", advice_for(exc)) from None
        try:
            replaced = None
            if plan.raw != current:
                replaced = replace_file(config.target, plan.raw, old=current, rename=rename, started=started)
        except (ChangedMeanwhile, OSError) as exc:
            _put_back_held(plan, started)  # neither file half-changed: the .env's old values come back
            if isinstance(exc, ChangedMeanwhile):
                continue
            raise ConfigError(f"Could not write {config.shown}: {exc.strerror or exc}.", advice_for(exc)) from None
        told = where_backup(replaced) if replaced else ()
        only_dotenv = plan.dotenv is not None and plan.dotenv_raw is not None and plan.raw == current
        path = plan.dotenv.path if only_dotenv and plan.dotenv else config.shown
        return Saved(path, replaced.backup if replaced else None, plan.changes + told)
    raise ConfigError(f"{config.shown} kept changing while malcapture tried to save into it.", "Run it again.")


def _write_held(plan: Plan, started: float) -> None:
    """The values the config holds as placeholders, into the `.env` lines Kometa reads them from (the .env
    the plan read: ChangedMeanwhile if it is not that any more)."""
    if plan.dotenv is None or plan.dotenv_raw is None:
        return
    target = Path(os.path.realpath(plan.dotenv.path))
    replace_file(target, plan.dotenv_raw, old=plan.dotenv.raw, started=started)


def _put_back_held(plan: Plan, started: float) -> None:
    """The .env as it was, after the config could not be written: a failure leaves neither file half-changed."""
    if plan.dotenv is None or plan.dotenv_raw is None:
        return
    target = Path(os.path.realpath(plan.dotenv.path))
    try:
        replace_file(target, plan.dotenv.raw, old=plan.dotenv_raw, started=started)
    except (OSError, ChangedMeanwhile) as exc:
        raise ConfigError(
            f"The new tokens were written into {plan.dotenv.path}, but {plan.config.shown} could not be written, "
            f"and the old .env could not be put back ({exc}): the two files now disagree.",
            f"The previous .env is kept as {target}.bak: put it back, or write the config's values yourself.",
        ) from None


def _read_again(config: KometaConfig) -> bytes:
    try:
        return config.target.read_bytes()
    except OSError as exc:
        raise ConfigError(f"The config file {config.shown} cannot be read again: {exc.strerror}.") from None


def save_locked(
    config: KometaConfig,
    place: Place,
    wants: Wants,
    env: Mapping[str, str],
    lock_says: Callable[[str], None] | None,
    planned: Plan | None = None,
) -> Saved:
    """save() under the config's lock; with `lock_says` the lock is taken here (a wait is told through it),
    without, the caller holds it."""
    with lock.exclusive(config.path, lock_says) if lock_says else contextlib.nullcontext():
        return save(config, place, wants, env, planned=planned)
