"""The commands: each service's `login`, `refresh` (for tokens that expire) and `check`, built by one
builder from its Service value; `status` and `demo`; and main()."""

# No `from __future__ import annotations` here: Typer reads the annotations at run time, and each
# service's options (their variables, their help) are built inside _commands.

import json
from typing import Annotated

import typer

from malcapture import interrupts, terminal
from malcapture.cli import actions
from malcapture.cli.group import new_group
from malcapture.cli.options import (
    BindOption,
    ConfigOption,
    ExpiringOption,
    JsonOption,
    LibraryOption,
    NoBrowserOption,
    NoVerifyOption,
    PortOption,
    QuietOption,
    ServerOption,
    TimeoutOption,
    UrlOption,
    VerboseOption,
    YesOption,
    offered,
    offering,
    print_version,
)
from malcapture.login.contract import Service
from malcapture.services import SERVICES
from malcapture.ui import StderrReporter

TITLES = ", ".join(service.title for service in SERVICES)
app = new_group(f"Authorize Kometa's connections ({TITLES}) without copy-paste. A bare `malcapture` runs `login`.")


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("-V", "--version", callback=print_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Authorize Kometa's connections without copy-paste. A bare `malcapture` runs `login`."""


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
        cls=offering(names),
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
        actions.login(service, ctx.params)

    if service.refreshable:

        @group.command(
            cls=offering(names),
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
            actions.refresh(
                actions.job(service, config, verbose, client_id, client_secret, quiet=quiet), if_expiring_within
            )

    server = "url" in service.needs

    @group.command(
        cls=offering(names),
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
        actions.check(
            actions.job(service, config, verbose, client_id, client_secret, library, url, quiet=as_json), as_json
        )


for _service in SERVICES:
    if _service.group is None:
        _commands(app, _service)
        continue
    _group = new_group(f"{_service.summary}. A bare `malcapture {_service.group}` runs `{_service.group} login`.")
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
        found = actions.guarded(
            lambda: actions.until_done(check_all(path, actions.environ(), StderrReporter(verbose) if verbose else None))
        )
    except typer.Exit:
        if as_json:
            typer.echo("[]")
        raise
    works = all(report.works for report in found)
    if as_json:
        typer.echo(json.dumps([report.as_json() for report in found], indent=2))
    elif not quiet:  # the summary is the command's output: on stdout (`malcapture status | less`)
        actions.out(f"{path.absolute()}:")
        for report in found:
            actions.out(line(report))
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
            actions.until_done(demo_module.serve(reporter, actions.out))
        except (interrupts.Interrupted, KeyboardInterrupt):
            reporter.info("Stopped the stand-ins.")
        return
    actions.guarded(lambda: actions.until_done(demo_module.run(reporter, keep)))


def main() -> None:
    interrupts.install()
    with terminal.kept(0):
        app()
