"""The command line: parse options, call one function of the library, print, map errors to exit codes.

Heavy modules (asyncio, aiohttp, ruamel.yaml) are imported inside the commands, so `--help` and
`--version` stay fast, and the login opens the browser before asyncio and aiohttp load.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from malcapture import __version__
from malcapture.errors import MalcaptureError, TokensNotSaved
from malcapture.ui import StderrReporter

T = TypeVar("T")

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals hold tokens and secrets
    rich_markup_mode=None,
    help="Authorize Kometa's MyAnimeList connection without copy-paste. A bare `malcapture` runs `login`.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "-c",
        "--config",
        envvar="KOMETA_CONFIG",
        help="Kometa config file [default: config/config.yml if it exists, else config.yml]",
        show_default=False,
    ),
]
ClientIdOption = Annotated[
    str | None,
    typer.Option("--client-id", envvar="MAL_CLIENT_ID", help="MAL client ID [default: mal.client_id of the config]"),
]
ClientSecretOption = Annotated[
    str | None,
    typer.Option(
        "--client-secret",
        envvar="MAL_CLIENT_SECRET",
        help="MAL client secret [default: mal.client_secret of the config]",
    ),
]
VerboseOption = Annotated[bool, typer.Option("-v", "--verbose", help="Show each HTTP exchange, tokens redacted.")]
RedirectOption = Annotated[
    str | None,
    typer.Option(
        "--redirect-uri",
        envvar="MALCAPTURE_REDIRECT_URI",
        help="The redirect URL registered in the MAL app [default: http://localhost/, not sent to MAL]",
    ),
]
NoBrowserOption = Annotated[
    bool, typer.Option("--no-browser", help="Do not open a browser; print the URL, listen, and accept a paste.")
]
ManualOption = Annotated[bool, typer.Option("--manual", help="No server: print the URL and wait for the paste.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=1, metavar="SECONDS", help="Give up waiting for the redirect after this long.")
]
PrintOption = Annotated[
    bool, typer.Option("--print", help="Do not touch the config; print the whole mal: block to stdout.")
]
NoVerifyOption = Annotated[bool, typer.Option("--no-verify", help="Skip the users/@me check after the exchange.")]
BindOption = Annotated[
    str | None,
    typer.Option("--bind", metavar="HOST", help="Listen on HOST instead of loopback (a container's published port)."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"malcapture {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def default(
    ctx: typer.Context,
    config: ConfigOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    verbose: VerboseOption = False,
    redirect_uri: RedirectOption = None,
    no_browser: NoBrowserOption = False,
    manual: ManualOption = False,
    timeout: TimeoutOption = 300.0,
    print_block: PrintOption = False,
    no_verify: NoVerifyOption = False,
    bind: BindOption = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    if ctx.invoked_subcommand is None:
        login(
            config,
            client_id,
            client_secret,
            verbose,
            redirect_uri,
            no_browser,
            manual,
            timeout,
            print_block,
            no_verify,
            bind,
        )


@app.command()
def login(
    config: ConfigOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    verbose: VerboseOption = False,
    redirect_uri: RedirectOption = None,
    no_browser: NoBrowserOption = False,
    manual: ManualOption = False,
    timeout: TimeoutOption = 300.0,
    print_block: PrintOption = False,
    no_verify: NoVerifyOption = False,
    bind: BindOption = None,
) -> None:
    """Authorize Kometa on MyAnimeList and save the tokens into its config."""
    from malcapture import flow, kometa_config

    reporter = StderrReporter(verbose)
    opts = flow.LoginOptions(
        config_path=config or kometa_config.default_path(),
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        no_browser=no_browser,
        manual=manual,
        timeout=timeout,
        print_block=print_block,
        verify=not no_verify,
        bind=bind,
    )
    ask = _ask if sys.stdin.isatty() else None
    result = _run(lambda: flow.run(opts, flow.Io(reporter, ask=ask)))
    who = f"Authorized as {result.account}" if result.account else "Authorized"
    if result.block is not None:
        typer.echo(result.block, nl=False)
        reporter.info(f"{who}. The mal: block is on standard output; the config was not touched.")
    else:
        reporter.info(f"{who} — saved to {result.saved_to} (the previous version is beside it as .bak).")


@app.command()
def refresh(
    config: ConfigOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    verbose: VerboseOption = False,
    if_expiring_within: Annotated[
        str | None,
        typer.Option(
            "--if-expiring-within",
            metavar="DURATION",
            help="Refresh only when the access token expires within this long (e.g. 7d, 12h, 30m).",
        ),
    ] = None,
) -> None:
    """Trade the stored refresh token for new tokens (MyAnimeList rotates both) and save them."""
    from malcapture import kometa_config, lifecycle

    within = parse_duration(if_expiring_within) if if_expiring_within else None
    reporter = StderrReporter(verbose)
    path = config or kometa_config.default_path()
    result = _run(lambda: _until_done(lifecycle.refresh(path, client_id, client_secret, _environ(), reporter, within)))
    if result.refreshed:
        expiry = lifecycle.describe_expiry(result.expires, lifecycle.utc_now())
        reporter.info(f"Refreshed — saved to {result.saved_to}; the new access token: {expiry}.")


@app.command()
def check(
    config: ConfigOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Say whether the stored tokens work: who they belong to, and when the access token expires."""
    from malcapture import kometa_config, lifecycle

    reporter = StderrReporter(verbose)
    result = _run(lambda: _until_done(lifecycle.check(config or kometa_config.default_path(), _environ(), reporter)))
    reporter.info(f"MyAnimeList accepts the stored token: it belongs to {result.account}.")


@app.command()
def demo() -> None:
    """The whole login against a built-in MyAnimeList stand-in and a scratch config; nothing leaves the machine."""
    from malcapture import demo as demo_module

    reporter = StderrReporter()
    _run(lambda: _until_done(demo_module.run(reporter)))


def parse_duration(text: str) -> timedelta:
    units = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    parts = re.findall(r"(\d+)\s*([wdhms])", text.strip().lower())
    if not parts or re.sub(r"[\d\s]+[wdhms]", "", text.strip().lower()):
        raise typer.BadParameter(f"{text!r} is not a duration such as 7d, 12h, 30m or 1d12h.")
    return timedelta(**{units[unit]: int(number) for number, unit in parts})


def _ask(question: str, hide: bool) -> str:
    answer: str = typer.prompt(question, hide_input=hide, default="", show_default=False)
    return answer


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def _until_done(coroutine: Coroutine[Any, Any, T]) -> T:
    import asyncio

    return asyncio.run(coroutine)


def _run(work: Callable[[], T]) -> T:
    """The one place where the library's errors become messages and exit codes."""
    try:
        return work()
    except TokensNotSaved as exc:
        typer.echo(exc.block, nl=False)
        _fail(str(exc), exc.exit_code)
    except MalcaptureError as exc:
        _fail(str(exc), exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail("Interrupted. The config was not changed.", 130)
    raise AssertionError("unreachable")


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def main() -> None:
    app()
