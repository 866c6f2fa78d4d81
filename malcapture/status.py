"""`malcapture status`: every service configured in the file, one report each, with what fixes it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from malcapture.config import kometa
from malcapture.errors import ConfigError
from malcapture.lifecycle import Job, Report, describe_expiry, report, utc_now
from malcapture.services import SERVICES
from malcapture.ui import Quiet, Reporter


async def status(path: Path, env: Mapping[str, str], verbose: Reporter | None = None) -> list[Report]:
    """One report per configured service; `verbose`: where -v shows each exchange."""
    config = kometa.load(path)
    configured = [service for service in SERVICES if config.mapping(service.place().path)]
    if not configured:
        names = ", ".join(f"{service.name}:" for service in SERVICES)
        commands = ", ".join(f"`{service.command()}` ({service.title})" for service in SERVICES)
        raise ConfigError(
            f"{config.shown} has none of the sections malcapture checks ({names}) with settings.",
            f"Run {commands} to authorize one.",
        )
    return [await report(Job(path, service, env, _shown(verbose))) for service in configured]


def _shown(verbose: Reporter | None) -> Reporter:
    """-v's exchanges (and nothing else: each service's result is its line), or nothing at all."""
    if verbose is None:
        return Quiet()
    shown = verbose

    class Exchanges(Quiet):
        def debug(self, text: str) -> None:
            shown.debug(text)

    return Exchanges()


def line(found: Report) -> str:
    """One report in words: `NAME: works: ACCOUNT; the access token expires …`, or what is wrong and the fix."""
    name = found.service.name
    if found.works:
        expiry = describe_expiry(found.service, found.expires_at, utc_now(), "the access token")
        notes = "".join(f" ({note})" for note in found.notes)
        return f"{name}: works: {found.account}; {expiry}{notes}"
    fix = f" Fix: {found.fix}" if found.fix else ""
    return f"{name}: {found.kind}: {found.problem}{fix}"
