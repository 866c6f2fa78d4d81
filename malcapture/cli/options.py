"""Every option of every command, typed (Typer reads these annotations), and which of them a service offers:
those of its ways to log in, its app and its settings (offered)."""

# No `from __future__ import annotations` here: Typer reads the annotations at run time.

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from malcapture import __version__
from malcapture.login.contract import Service

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "-c",
        "--config",
        envvar="KOMETA_CONFIG",
        help="Kometa config file [default: config/config.yml if it exists, else config.yml]",
        show_default=False,
        readable=False,  # malcapture says why it cannot read it, and what to do (exit 3), not click
    ),
]
VerboseOption = Annotated[bool, typer.Option("-v", "--verbose", help="Show each HTTP exchange, tokens redacted.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (messages stay on stderr).")
]
NoBrowserOption = Annotated[
    bool, typer.Option("--no-browser", help="Do not open a browser; print the URL and wait (listen, or read a paste).")
]
NoVerifyOption = Annotated[bool, typer.Option("--no-verify", help="Skip the account check after the exchange.")]
BindOption = Annotated[
    str | None,
    typer.Option("--bind", metavar="HOST", help="Listen on HOST instead of loopback (a container's published port)."),
]
QuietOption = Annotated[
    bool, typer.Option("-q", "--quiet", help="Say nothing when all is well (for cron): only problems, on stderr.")
]
YesOption = Annotated[bool, typer.Option("-y", "--yes", help="Replace tokens that still work without asking first.")]


def print_version(value: bool) -> None:
    if value:
        typer.echo(f"malcapture {__version__}")
        raise typer.Exit()


def _seconds(value: float) -> float:
    if not 1 <= value <= 86400:
        raise typer.BadParameter(f"{value:g} is not a number of seconds from 1 to 86400 (a day).")
    return value


def parse_duration(text: str | None) -> timedelta | None:
    if text is None:
        return None
    units = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    parts = re.findall(r"(\d+)\s*([wdhms])", text.strip().lower())
    if not parts or re.sub(r"[\d\s]+[wdhms]", "", text.strip().lower()):
        raise typer.BadParameter(f"{text!r} is not a duration such as 7d, 12h, 30m or 1d12h.")
    try:
        duration = timedelta(**{units[unit]: int(number) for number, unit in parts})
    except OverflowError:
        duration = timedelta.max
    if duration > timedelta(days=3650):
        raise typer.BadParameter(f"{text!r} is longer than any token lives: give at most 3650d.")
    return duration


TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        callback=_seconds,
        help="Give up waiting for a redirect, paste or PIN after this long (a code to approve elsewhere "
        "waits as long as it is valid).",
    ),
]
ExpiringOption = Annotated[
    timedelta | None,
    typer.Option(
        "--if-expiring-within",
        metavar="DURATION",
        parser=parse_duration,
        help="Refresh only when the access token expires within this long (e.g. 7d, 12h, 30m).",
    ),
]


LibraryOption = Annotated[
    str | None,
    typer.Option(
        "--library", metavar="NAME", help="The section of this library (libraries.NAME) instead of the root's."
    ),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", metavar="URL", help="The server to check the token against (filled in where the config has none)."
    ),
]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        metavar="NAME",
        help="The server to write into a blank url, by name, where the account has several [default: ask].",
    ),
]
PortOption = Annotated[
    int | None,
    typer.Option(
        "--port",
        metavar="PORT",
        min=1,
        max=65535,
        help="The loopback port the browser comes back to [default: any free one].",
    ),
]
ALWAYS = ("ctx", "config", "verbose", "print_block", "yes", "as_json", "if_expiring_within", "quiet")


def offered(service: Service) -> set[str]:
    """The parameters of its commands that do something for this service: those of its ways, its app's
    ID and secret, the settings its client needs. The rest are not offered (click refuses them by name)."""
    names = set(ALWAYS) | {name for way in service.ways for name in way.options}
    names |= {way.flag.param for way in service.ways if way.flag}
    if service.app is not None:
        names |= {"client_id", "client_secret"}
    if "url" in service.needs:
        names |= {"url", "library", "server"}
    return names


def offering(names: set[str]) -> type[TyperCommand]:
    class Offered(TyperCommand):
        def __init__(self, *args: Any, params: list[Any], **kwargs: Any) -> None:
            super().__init__(*args, params=[p for p in params if p.name in names], **kwargs)

    return Offered
