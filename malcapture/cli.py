"""The command line: parse options, call one function of the library, print, map errors to exit codes.

Each service's commands are built from its Service value (services/). Heavy modules (asyncio,
aiohttp, ruamel.yaml) are imported inside the commands, so `--help` and `--version` stay fast, and
the login opens the browser before asyncio and aiohttp load.
"""

# No `from __future__ import annotations` here: Typer reads the annotations at run time, and each
# service's options (their variables, their help) are built inside _service_commands.

import json
import re
import sys
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from malcapture import __version__, interrupts, terminal
from malcapture.errors import MalcaptureError
from malcapture.login.contract import LoginOptions, Service
from malcapture.services import SERVICES
from malcapture.ui import StderrReporter, WarningsOnly

if TYPE_CHECKING:
    from malcapture.lifecycle import Job
    from malcapture.login.io import Io

T = TypeVar("T")
HELP_FLAGS = ("-h", "--help", "--version", "-V")
TITLES = ", ".join(service.title for service in SERVICES)


class LoginByDefault(TyperGroup):
    """A bare `malcapture [OPTIONS]` is `malcapture login [OPTIONS]` (the pattern of click's aliases
    example), and options written before a command apply to that command: `malcapture -c X check`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _point_to_services(ctx, self.commands, args)
        if args[:1] in (["help"], ["version"]):  # the words people type for --help and --version
            args = ["--help" if args[0] == "help" else "--version", *args[1:]]
        if args[:1] == ["refresh"] and "refresh" not in self.commands:
            service = next((s for s in SERVICES if s.group == ctx.info_name), None)
            title = service.title if service else "This service"
            ctx.fail(
                f"{title}'s token does not expire: there is nothing to refresh. `{ctx.command_path} check` "
                "says whether it works."
            )
        if not args or args[0] not in HELP_FLAGS:
            at = self._first_word(ctx, args)
            # The first word leads (an unknown one then gets "No such command", not login's help).
            args = ["login", *args] if at is None else [args[at], *args[:at], *args[at + 1 :]]
        return super().parse_args(ctx, args)

    def _first_word(self, ctx: Any, args: list[str]) -> int | None:
        """Where the first argument that is not an option or an option's value is, if any. An unknown
        option ends the search: login then names it (and what it may have meant)."""
        options = [p for c in self.commands.values() for p in c.get_params(ctx) if p.param_type_name == "option"]
        valued = {name for p in options if not getattr(p, "is_flag", False) for name in p.opts}
        known = {name for p in options for name in p.opts + p.secondary_opts} | set(HELP_FLAGS)
        skip = False
        for index, arg in enumerate(args):
            if skip:
                skip = False
            elif arg.startswith("-"):
                name = arg.split("=", 1)[0]
                if name not in known:
                    return None
                skip = name in valued and "=" not in arg
            else:
                return index
        return None

    def format_options(self, ctx: Any, formatter: Any) -> None:
        login = self.commands["login"]
        sub = typer.Context(login, info_name="login", parent=ctx)
        records = [r for p in login.get_params(sub) if p.name != "help" and (r := p.get_help_record(sub))]
        with formatter.section(f"Options of a bare {ctx.command_path} (the same as `{ctx.command_path} login`)"):
            formatter.write_dl(records)
        super().format_options(ctx, formatter)


def _point_to_services(ctx: Any, commands: Mapping[str, Any], args: list[str]) -> None:
    """`malcapture login --trakt` or `malcapture mal`: say where that service's commands are."""
    for service in SERVICES:
        words = {service.name, service.group} - {None}
        where = f"`{service.command()}`" + (" (login, refresh, check…)" if service.group is None else "")
        wrong = next((arg for arg in args if arg.lstrip("-") in words and arg.startswith("--")), None)
        if wrong:
            ctx.fail(f"No such option: {wrong}. {service.title} is {where}.")
        if args and args[0] in words and args[0] not in commands:
            ctx.fail(f"No such command '{args[0]}'. {service.title} is {where}.")


def _app(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=LoginByDefault,
        add_completion=False,
        pretty_exceptions_show_locals=False,  # locals hold tokens and secrets
        rich_markup_mode=None,
        help=help_text,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


app = _app(f"Authorize Kometa's connections ({TITLES}) without copy-paste. A bare `malcapture` runs `login`.")

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


def _version(value: bool) -> None:
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


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("-V", "--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Authorize Kometa's connections without copy-paste. A bare `malcapture` runs `login`."""


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


def _offering(names: set[str]) -> type[TyperCommand]:
    class Offered(TyperCommand):
        def __init__(self, *args: Any, params: list[Any], **kwargs: Any) -> None:
            super().__init__(*args, params=[p for p in params if p.name in names], **kwargs)

    return Offered


def _commands(group: typer.Typer, service: Service) -> None:
    """`login`, `refresh` (for tokens that expire) and `check` of one service. Every option any service has
    is a parameter here; each command offers only those `offered()` names for this service."""
    env = service.app.env if service.app else (None, None)
    redirect = service.redirect
    ClientId = Annotated[
        str | None,
        typer.Option(
            "--client-id",
            envvar=env[0],
            help=f"{service.title} client ID [default: {service.name}.client_id of the config]",
        ),
    ]
    ClientSecret = Annotated[
        str | None,
        typer.Option(
            "--client-secret",
            envvar=env[1],
            help=f"{service.title} client secret [default: {service.name}.client_secret of the config]",
        ),
    ]
    RedirectUri = Annotated[
        str | None,
        typer.Option(
            "--redirect-uri",
            envvar=redirect.env if redirect else None,
            metavar="URL",
            help=redirect.help if redirect else "",
        ),
    ]
    flags = {way.flag.param: way.flag.help for way in service.ways if way.flag}
    Manual = Annotated[bool, typer.Option("--manual", help=flags.get("manual", ""))]
    Pin = Annotated[bool, typer.Option("--pin", help=flags.get("pin", ""))]
    Link = Annotated[bool, typer.Option("--link", help=flags.get("link", ""))]
    PrintOption = Annotated[
        bool,
        typer.Option("--print", help=f"Do not touch the config; print the whole {service.name}: section to stdout."),
    ]
    names = offered(service)
    what = "tokens" if service.refreshable else "token"

    @group.command(
        cls=_offering(names),
        short_help=f"{service.summary} and save the {what} (the default command).",
        help=service.login_help,
    )
    def login(
        ctx: typer.Context,
        config: ConfigOption = None,
        client_id: ClientId = None,
        client_secret: ClientSecret = None,
        verbose: VerboseOption = False,
        redirect_uri: RedirectUri = None,
        manual: Manual = False,
        pin: Pin = False,
        link: Link = False,
        no_browser: NoBrowserOption = False,
        timeout: TimeoutOption = 300,
        url: UrlOption = None,
        library: LibraryOption = None,
        server: ServerOption = None,
        port: PortOption = None,
        print_block: PrintOption = False,
        no_verify: NoVerifyOption = False,
        bind: BindOption = None,
        yes: YesOption = False,
    ) -> None:
        _login(service, ctx.params)

    if service.refreshable:

        @group.command(
            cls=_offering(names),
            short_help=f"Trade the stored {service.title} refresh token for new tokens and save them.",
            help="Trade the stored refresh token for new tokens (each works once) and save them.",
        )
        def refresh(
            config: ConfigOption = None,
            client_id: ClientId = None,
            client_secret: ClientSecret = None,
            verbose: VerboseOption = False,
            if_expiring_within: ExpiringOption = None,
            quiet: QuietOption = False,
        ) -> None:
            _refresh(_job(service, config, verbose, client_id, client_secret, quiet=quiet), if_expiring_within)

    server = "url" in service.needs

    @group.command(
        cls=_offering(names),
        short_help=f"Say whether the stored {service.title} token works, whose it is"
        + (", and what the server says." if server else " and when it expires."),
        help="Say whether the stored token works: whose it is, and whether the server takes it."
        if server
        else "Say whether the stored token works (and the app's secret with it): whose it is, and when it expires.",
    )
    def check(
        config: ConfigOption = None,
        client_id: ClientId = None,
        client_secret: ClientSecret = None,
        verbose: VerboseOption = False,
        library: LibraryOption = None,
        url: UrlOption = None,
        as_json: JsonOption = False,
    ) -> None:
        _check(_job(service, config, verbose, client_id, client_secret, library, url, quiet=as_json), as_json)


def _io(reporter: StderrReporter) -> "Io":
    from malcapture.login.io import Io

    return Io(reporter, ask=_ask if terminal.is_terminal(0) else None)


def _login(service: Service, params: dict[str, Any]) -> None:
    """A login with the options given (its parameters are LoginOptions' fields, by name)."""
    from malcapture.config.kometa import default_path

    given = dict(params)
    reporter = StderrReporter(given.pop("verbose"))
    config, verify = given.pop("config"), not given.pop("no_verify", False)
    path = Path(config) if config else default_path()  # click's values: a str where Typer passes a Path
    chosen = [way for way in service.ways if way.flag and given.pop(way.flag.param, False)]
    if len(chosen) > 1:
        _fail(f"use one of {', '.join(way.flag.name for way in chosen if way.flag)}, not several.", 2)
    opts = LoginOptions(config_path=path, service=service, verify=verify, way=next(iter(chosen), None), **given)
    result = _run(lambda: opts.service.code.login(opts, _io(reporter)))
    if result.declined:
        return
    account = result.account
    who = f"{opts.service.done} as {account.name}" if account else opts.service.done
    if result.printed:
        place = opts.service.place(opts.library)
        reporter.info(f"{who}. The {place.path[0]}: section is on standard output; the config was not touched.")
        return
    reporter.info(f"{who} — saved to {result.saved_to}.")
    for line in result.changes:
        reporter.info(line)
    for fact in account.facts if account else ():
        reporter.info(fact)
    for note in account.notes if account else ():
        reporter.warn(note)


def _job(
    service: Service,
    config: Path | None,
    verbose: bool,
    client_id: str | None = None,
    client_secret: str | None = None,
    library: str | None = None,
    url: str | None = None,
    quiet: bool = False,
) -> "Job":
    from malcapture.config.kometa import default_path
    from malcapture.lifecycle import Job

    reporter = WarningsOnly(verbose) if quiet else StderrReporter(verbose)
    return Job(config or default_path(), service, _environ(), reporter, client_id, client_secret, library, url)


def _refresh(job: "Job", within: timedelta | None) -> None:
    from malcapture import lifecycle

    result = _run(lambda: _until_done(lifecycle.refresh(job, within)))
    expiry = lifecycle.describe_expiry(job.service, result.expires, lifecycle.utc_now(), "the new access token")
    if result.meanwhile:
        said = lifecycle.describe_expiry(job.service, result.expires, lifecycle.utc_now(), "the access token")
        job.reporter.info(f"The tokens in the config work (they belong to {result.meanwhile}); {said}.")
    elif result.refreshed:
        job.reporter.info(f"Refreshed — saved to {result.saved_to}; {expiry}.")
        for line in result.changes:
            job.reporter.info(line)


def _check(job: "Job", as_json: bool) -> None:
    from malcapture import lifecycle

    found = _run(lambda: _until_done(lifecycle.report(job)))
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2))
    if not found.works:
        _fail(f"{found.problem}\n{found.fix}" if found.fix else str(found.problem), found.exit_code)
    for note in found.notes:
        job.reporter.warn(note)
    if not as_json:  # the summary is the command's output: on stdout (`malcapture check | less`)
        for fact in found.facts:
            _out(fact)
        _out(f"{job.service.title} accepts the stored token: it belongs to {found.account}.")


for _service in SERVICES:
    if _service.group is None:
        _commands(app, _service)
        continue
    _group = _app(f"{_service.summary}. A bare `malcapture {_service.group}` runs `{_service.group} login`.")
    _what = "log in, refresh, check" if _service.refreshable else "sign in, check"
    app.add_typer(_group, name=_service.group, short_help=f"{_service.summary}: {_what}.")
    _commands(_group, _service)


@app.command(short_help="One line per service in the config: whose, until when, works or not, and the fix.")
def status(
    config: ConfigOption = None, as_json: JsonOption = False, quiet: QuietOption = False, verbose: VerboseOption = False
) -> None:
    """Check every service configured in the file; exit 0 only when every one works."""
    from malcapture.config.kometa import default_path
    from malcapture.status import line
    from malcapture.status import status as check_all

    reporter = StderrReporter()
    path = config or default_path()
    try:
        found = _run(lambda: _until_done(check_all(path, _environ(), StderrReporter(verbose) if verbose else None)))
    except typer.Exit:
        if as_json:
            typer.echo("[]")
        raise
    works = all(report.works for report in found)
    if as_json:
        typer.echo(json.dumps([report.as_json() for report in found], indent=2))
    elif not quiet:  # the summary is the command's output: on stdout (`malcapture status | less`)
        _out(f"{path.absolute()}:")
        for report in found:
            _out(line(report))
    if (as_json or quiet) and not works:  # for cron's mail: what does not work, on stderr
        for report in found:
            if not report.works:
                reporter.info(line(report))
    if not works:
        raise typer.Exit(1)


@app.command(short_help="Every login against built-in stand-ins of the services; nothing leaves the machine.")
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the scratch folder with the demo's config.")] = False,
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Only serve the stand-ins, until Ctrl-C: print the variables to try any command."),
    ] = False,
) -> None:
    """Every login, against built-in stand-ins of the services and a scratch config; nothing leaves the machine."""
    from malcapture import demo as demo_module

    reporter = StderrReporter()
    if serve:
        try:
            _until_done(demo_module.serve(reporter, _out))
        except (interrupts.Interrupted, KeyboardInterrupt):
            reporter.info("Stopped the stand-ins.")
        return
    _run(lambda: _until_done(demo_module.run(reporter, keep)))


def _out(text: str) -> None:
    """A line of a command's output (status, check) on stdout, with a service's control characters escaped."""
    from malcapture.ui import printable

    typer.echo(printable(text))


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
    except MalcaptureError as exc:
        _fail(str(exc), exc.exit_code)
    except interrupts.Interrupted as exc:
        if exc.name == "Ctrl-C" and terminal.is_terminal(2):
            terminal.mark_line_open()  # the terminal echoed ^C where the cursor was
        cause = exc.__cause__
        if isinstance(cause, MalcaptureError):
            _say(f"Error: {cause}")
        hold = exc.hold
        if hold and hold.saved_to:
            _fail(f"Interrupted by {exc.name}, once the new tokens were saved to {hold.saved_to}.", 130)
        if hold and hold.printed:
            _fail(f"Interrupted by {exc.name}. The new tokens are on standard output; the config was not changed.", 130)
        _fail(f"Interrupted by {exc.name}. The config was not changed.", 130)
    except (KeyboardInterrupt, typer.Abort):
        _fail("Interrupted. The config was not changed.", 130)
    raise AssertionError("unreachable")


def _fail(message: str, code: int) -> NoReturn:
    _say(f"Error: {message}")
    raise typer.Exit(code)


def _say(message: str) -> None:
    """A last message, on a line of its own even when the user was typing one (or pressed Ctrl-C there)."""
    StderrReporter().info(f"\n{message}" if terminal.line_open() else message)
    terminal.close_line()


def main() -> None:
    interrupts.install()
    with terminal.kept(0):
        app()
