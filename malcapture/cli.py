"""The command line: parse options, call one function of the library, print, map errors to exit codes.

Heavy modules (asyncio, aiohttp, ruamel.yaml) are imported inside the commands, so `--help` and
`--version` stay fast, and the login opens the browser before asyncio and aiohttp load.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from malcapture import __version__, interrupts, terminal
from malcapture.errors import MalcaptureError, TokensNotSaved
from malcapture.sections import MAL, TRAKT, Section
from malcapture.ui import StderrReporter

if TYPE_CHECKING:
    from malcapture.lifecycle import Job
    from malcapture.session import Io, LoginOptions, LoginResult

T = TypeVar("T")
Command = TypeVar("Command", bound=Callable[..., None])
HELP_FLAGS = ("-h", "--help", "--version")


class LoginByDefault(TyperGroup):
    """A bare `malcapture [OPTIONS]` is `malcapture login [OPTIONS]` (the pattern of click's aliases
    example), and options written before a command apply to that command: `malcapture -c X check`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or args[0] not in HELP_FLAGS:
            at = self._first_word(ctx, args)
            # The first word leads (an unknown one then gets "No such command", not login's help).
            args = ["login", *args] if at is None else [args[at], *args[:at], *args[at + 1 :]]
        return super().parse_args(ctx, args)

    def _first_word(self, ctx: Any, args: list[str]) -> int | None:
        """Where the first argument that is not an option or an option's value is, if any."""
        valued = {
            name
            for command in self.commands.values()
            for param in command.get_params(ctx)
            if param.param_type_name == "option" and not getattr(param, "is_flag", False)
            for name in param.opts
        }
        skip = False
        for index, arg in enumerate(args):
            if skip or arg.startswith("-"):
                skip = not skip and arg in valued
                continue
            return index
        return None

    def format_options(self, ctx: Any, formatter: Any) -> None:
        login = self.commands["login"]
        sub = typer.Context(login, info_name="login", parent=ctx)
        records = [r for p in login.get_params(sub) if p.name != "help" and (r := p.get_help_record(sub))]
        with formatter.section(f"Options of a bare {ctx.command_path} (the same as `{ctx.command_path} login`)"):
            formatter.write_dl(records)
        super().format_options(ctx, formatter)


app = typer.Typer(
    cls=LoginByDefault,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals hold tokens and secrets
    rich_markup_mode=None,
    help="Authorize Kometa's MyAnimeList connection without copy-paste. A bare `malcapture` runs `login`.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

CONFIG = typer.Option(
    "-c",
    "--config",
    envvar="KOMETA_CONFIG",
    help="Kometa config file [default: config/config.yml if it exists, else config.yml]",
    show_default=False,
)
VERBOSE = typer.Option("-v", "--verbose", help="Show each HTTP exchange, tokens redacted.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"malcapture {__version__}")
        raise typer.Exit()


def _at_least_one_second(value: float) -> float:
    if not value >= 1:
        raise typer.BadParameter(f"{value:g} is not a number of seconds of at least 1.")
    return value


def parse_duration(text: str | None) -> timedelta | None:
    if text is None:
        return None
    units = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    parts = re.findall(r"(\d+)\s*([wdhms])", text.strip().lower())
    if not parts or re.sub(r"[\d\s]+[wdhms]", "", text.strip().lower()):
        raise typer.BadParameter(f"{text!r} is not a duration such as 7d, 12h, 30m or 1d12h.")
    return timedelta(**{units[unit]: int(number) for number, unit in parts})


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Authorize Kometa's MyAnimeList connection without copy-paste. A bare `malcapture` runs `login`."""


NoBrowserOption = Annotated[
    bool, typer.Option("--no-browser", help="Do not open a browser; print the URL and wait (listen, or read a paste).")
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout", metavar="SECONDS", callback=_at_least_one_second, help="Give up waiting after this long."
    ),
]
PrintOption = Annotated[
    bool, typer.Option("--print", help="Do not touch the config; print the whole section (mal: or trakt:) to stdout.")
]
NoVerifyOption = Annotated[bool, typer.Option("--no-verify", help="Skip the account check after the exchange.")]
BindOption = Annotated[
    str | None,
    typer.Option("--bind", metavar="HOST", help="Listen on HOST instead of loopback (a container's published port)."),
]
YesOption = Annotated[bool, typer.Option("-y", "--yes", help="Replace tokens that still work without asking first.")]
ExpiringOption = Annotated[
    timedelta | None,
    typer.Option(
        "--if-expiring-within",
        metavar="DURATION",
        parser=parse_duration,
        help="Refresh only when the access token expires within this long (e.g. 7d, 12h, 30m).",
    ),
]


def _option(name: str, option: Any, kind: Any = str | None, default: Any = None) -> inspect.Parameter:
    """A typer.Option as a parameter of a command's signature (see _with_options)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option])


def _with_options(*options: inspect.Parameter) -> Callable[[Command], Command]:
    """Puts `options` in front of a command's own options; the command receives them as keyword
    arguments (`**given`).

    Typer reads a command's options from its signature and has no way to share a set of them (typer
    issue 153), so this does what a stack of click option decorators does: it writes the signature.
    """

    def add(command: Command) -> Command:
        own = inspect.signature(command, eval_str=True).parameters.values()
        kept = [p.replace(kind=p.KEYWORD_ONLY) for p in own if p.kind is not p.VAR_KEYWORD]
        setattr(command, "__signature__", inspect.Signature([*options, *kept]))  # noqa: B010 (mypy: no such attribute)
        return command

    return add


def _common_options(section: Section) -> list[inspect.Parameter]:
    """What every command of a service has: -c, --client-id, --client-secret (its variables), -v."""
    id_env, secret_env = section.env
    client_id = typer.Option(
        "--client-id",
        envvar=id_env,
        help=f"{section.title} client ID [default: {section.name}.client_id of the config]",
    )
    client_secret = typer.Option(
        "--client-secret",
        envvar=secret_env,
        help=f"{section.title} client secret [default: {section.name}.client_secret of the config]",
    )
    return [
        _option("config", CONFIG, Path | None),
        _option("client_id", client_id),
        _option("client_secret", client_secret),
        _option("verbose", VERBOSE, bool, False),
    ]


@dataclass(frozen=True)
class Common:
    """The values of _common_options."""

    config: Path | None
    client_id: str | None
    client_secret: str | None
    verbose: bool

    @classmethod
    def take(cls, given: dict[str, Any]) -> Common:
        """Common's values, taken out of a command's `**given`."""
        return cls(given.pop("config"), given.pop("client_id"), given.pop("client_secret"), given.pop("verbose"))


@dataclass(frozen=True)
class LoginShape:
    """What a service's login command has of its own; every other option is the same for all."""

    help: str
    options: tuple[inspect.Parameter, ...]  # named as LoginOptions' fields: --redirect-uri, --manual or --pin
    run: Callable[[LoginOptions, Io], LoginResult]


def _service_commands(target: typer.Typer, section: Section, shape: LoginShape) -> None:
    """`login`, `refresh` and `check` of one service: the same commands and options, with its own
    client options and its login's own (LoginShape)."""
    common = _common_options(section)

    @target.command(short_help=f"Authorize Kometa on {section.title} and save the tokens (the default command).")
    @_with_options(*common, *shape.options)
    def login(
        no_browser: NoBrowserOption = False,
        timeout: TimeoutOption = 300,
        print_block: PrintOption = False,
        no_verify: NoVerifyOption = False,
        bind: BindOption = None,
        yes: YesOption = False,
        **given: Any,
    ) -> None:
        from malcapture import kometa_config
        from malcapture.session import LoginOptions

        shared = Common.take(given)
        reporter = StderrReporter(shared.verbose)
        opts = LoginOptions(
            config_path=shared.config or kometa_config.default_path(),
            client_id=shared.client_id,
            client_secret=shared.client_secret,
            no_browser=no_browser,
            timeout=timeout,
            print_block=print_block,
            verify=not no_verify,
            bind=bind,
            yes=yes,
            section=section,
            **given,  # the service's own: redirect_uri, and manual or pin
        )
        _report_login(_run(lambda: shape.run(opts, _io(reporter))), opts, reporter)

    login.__doc__ = shape.help

    @target.command(short_help=f"Trade the stored {section.title} refresh token for new tokens and save them.")
    @_with_options(*common)
    def refresh(if_expiring_within: ExpiringOption = None, **given: Any) -> None:
        """Trade the stored refresh token for new tokens (each works once) and save them."""
        _refresh(section, Common.take(given), if_expiring_within)

    @target.command(short_help=f"Say whether the stored {section.title} token works, whose it is and when it expires.")
    @_with_options(*common)
    def check(**given: Any) -> None:
        """Say whether the stored token works: whose it is, and when the access token expires."""
        _check(section, Common.take(given))


def _io(reporter: StderrReporter) -> Io:
    from malcapture.session import Io

    return Io(reporter, ask=_ask if terminal.is_terminal(0) else None)


def _report_login(result: LoginResult, opts: LoginOptions, reporter: StderrReporter) -> None:
    if result.kept:
        return
    who = f"Authorized as {result.account}" if result.account else "Authorized"
    if result.block is not None:
        typer.echo(result.block, nl=False)
        reporter.info(f"{who}. The {opts.section.name}: block is on standard output; the config was not touched.")
        return
    reporter.info(f"{who} — saved to {result.saved_to}.")
    for line in result.changes:
        reporter.info(line)


def _job(section: Section, given: Common) -> Job:
    from malcapture import kometa_config, lifecycle

    path = given.config or kometa_config.default_path()
    return lifecycle.Job(path, section, _environ(), StderrReporter(given.verbose))


def _refresh(section: Section, given: Common, within: timedelta | None) -> None:
    from malcapture import lifecycle

    job = _job(section, given)
    result = _run(lambda: _until_done(lifecycle.refresh(job, given.client_id, given.client_secret, within)))
    expiry = lifecycle.describe_expiry(result.expires, lifecycle.utc_now())
    if result.meanwhile:
        job.reporter.info(
            f"The tokens in the config work (they belong to {result.meanwhile}); the access token: {expiry}."
        )
    elif result.refreshed:
        job.reporter.info(f"Refreshed — saved to {result.saved_to}; the new access token: {expiry}.")
        for line in result.changes:
            job.reporter.info(line)


def _check(section: Section, given: Common) -> None:
    from malcapture import lifecycle

    job = _job(section, given)
    result = _run(lambda: _until_done(lifecycle.check(job, given.client_id)))
    job.reporter.info(f"{section.title} accepts the stored token: it belongs to {result.account}.")


def _mal_login(opts: LoginOptions, io: Io) -> LoginResult:
    from malcapture import flow

    return flow.run(opts, io)


def _trakt_login(opts: LoginOptions, io: Io) -> LoginResult:
    from malcapture import flow, trakt_flow

    if opts.pin and opts.redirect_uri:
        raise typer.BadParameter("use either --pin or --redirect-uri, not both", param_hint="'--pin'")
    if opts.redirect_uri:
        return flow.run(opts, io)
    return _until_done(trakt_flow.login(opts, io))


_service_commands(
    app,
    MAL,
    LoginShape(
        help="Authorize Kometa on MyAnimeList and save the tokens into its config.",
        options=(
            _option(
                "redirect_uri",
                typer.Option(
                    "--redirect-uri",
                    envvar="MALCAPTURE_REDIRECT_URI",
                    help="The redirect URL registered in the MAL app [default: http://localhost/, not sent to MAL]",
                ),
            ),
            _option(
                "manual", typer.Option("--manual", help="No server: print the URL and wait for the paste."), bool, False
            ),
        ),
        run=_mal_login,
    ),
)

trakt_app = typer.Typer(
    cls=LoginByDefault,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    help="Authorize Kometa's Trakt connection. A bare `malcapture trakt` runs `trakt login` (the device flow).",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(trakt_app, name="trakt", short_help="Authorize, refresh and check Kometa's Trakt connection.")
_service_commands(
    trakt_app,
    TRAKT,
    LoginShape(
        help="Authorize Kometa on Trakt: the device flow by default (no redirect URL, port or paste).",
        options=(
            _option(
                "redirect_uri",
                typer.Option(
                    "--redirect-uri",
                    metavar="URL",
                    help="Catch the redirect to this loopback URL registered in the Trakt app (e.g. http://localhost:8765/).",
                ),
            ),
            _option(
                "pin",
                typer.Option("--pin", help="Kometa's PIN flow: type the PIN Trakt shows (trakt.pin is used first)."),
                bool,
                False,
            ),
        ),
        run=_trakt_login,
    ),
)


@app.command(short_help="One line per service in the config: whose, until when, works or not, and the fix.")
def status(config: Annotated[Path | None, CONFIG] = None) -> None:
    """Check every service configured in the file (mal:, trakt:); exit 0 only when every one works."""
    from malcapture import kometa_config
    from malcapture.status import status as check_all

    reporter = StderrReporter()
    path = config or kometa_config.default_path()
    lines = _run(lambda: _until_done(check_all(path, _environ())))
    for line in lines:
        reporter.info(line.text)
    if not all(line.works for line in lines):
        raise typer.Exit(1)


@app.command(short_help="The whole login against a built-in MyAnimeList stand-in; nothing leaves the machine.")
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the scratch folder with the demo's config.")] = False,
) -> None:
    """The whole login against a built-in MyAnimeList stand-in and a scratch config; nothing leaves the machine."""
    from malcapture import demo as demo_module

    reporter = StderrReporter()
    _run(lambda: _until_done(demo_module.run(reporter, keep)))


def _ask(question: str, hide: bool) -> str:
    """A question at the terminal, on stderr (stdout is --print's); an empty answer at end of input."""
    import getpass

    if hide:
        try:
            return getpass.getpass(f"{question}: ", stream=sys.stderr)
        except EOFError:  # Ctrl-D: no answer
            sys.stderr.write("\n")
            return ""
    sys.stderr.write(f"{question}: ")
    sys.stderr.flush()
    return sys.stdin.readline()


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def _until_done(coroutine: Coroutine[Any, Any, T]) -> T:
    return interrupts.run(coroutine)


def _run(work: Callable[[], T]) -> T:
    """The one place where the library's errors become messages and exit codes."""
    try:
        return work()
    except TokensNotSaved as exc:
        typer.echo(exc.tokens, nl=False)
        _fail(str(exc), exc.exit_code)
    except MalcaptureError as exc:
        _fail(str(exc), exc.exit_code)
    except interrupts.Interrupted as exc:
        hold = exc.hold
        if hold and hold.saved_to:
            _fail(f"Interrupted by {exc.name}, once the new tokens were saved to {hold.saved_to}.", 130)
        if hold and hold.block:
            typer.echo(hold.block, nl=False)
            _fail(f"Interrupted by {exc.name}. The new tokens are on standard output; the config was not changed.", 130)
        _fail(f"Interrupted by {exc.name}. The config was not changed.", 130)
    except (KeyboardInterrupt, typer.Abort):
        _fail("Interrupted. The config was not changed.", 130)
    raise AssertionError("unreachable")


def _fail(message: str, code: int) -> NoReturn:
    StderrReporter().info(f"Error: {message}")
    raise typer.Exit(code)


def main() -> None:
    interrupts.install()
    with terminal.kept(0):
        app()
