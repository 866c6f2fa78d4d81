"""What the commands do with their options: build the login's options or a Job, call the library, print
what it found, and — in one place (guarded) — turn the library's errors into messages and exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from malcapture import interrupts, terminal
from malcapture.errors import MalcaptureError
from malcapture.login.contract import LoginOptions, Service
from malcapture.ui import StderrReporter, WarningsOnly

if TYPE_CHECKING:
    from malcapture.lifecycle import Job
    from malcapture.login.io import Io

T = TypeVar("T")


def io_for(reporter: StderrReporter) -> Io:
    from malcapture.login.io import Io

    return Io(reporter, ask=ask if terminal.is_terminal(0) else None)


def login(service: Service, params: dict[str, Any]) -> None:
    """A login with the options given (its parameters are LoginOptions' fields, by name)."""
    from malcapture.config.kometa import default_path

    given = dict(params)
    reporter = StderrReporter(given.pop("verbose"))
    config, verify = given.pop("config"), not given.pop("no_verify", False)
    path = Path(config) if config else default_path()  # click's values: a str where Typer passes a Path
    chosen = [way for way in service.ways if way.flag and given.pop(way.flag.param, False)]
    if len(chosen) > 1:
        fail(f"use one of {', '.join(way.flag.name for way in chosen if way.flag)}, not several.", 2)
    opts = LoginOptions(config_path=path, service=service, verify=verify, way=next(iter(chosen), None), **given)
    result = guarded(lambda: opts.service.code.login(opts, io_for(reporter)))
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


def job(
    service: Service,
    config: Path | None,
    verbose: bool,
    client_id: str | None = None,
    client_secret: str | None = None,
    library: str | None = None,
    url: str | None = None,
    quiet: bool = False,
) -> Job:
    from malcapture.config.kometa import default_path
    from malcapture.lifecycle import Job

    reporter = WarningsOnly(verbose) if quiet else StderrReporter(verbose)
    return Job(config or default_path(), service, environ(), reporter, client_id, client_secret, library, url)


def refresh(job: Job, within: timedelta | None) -> None:
    from malcapture import lifecycle

    result = guarded(lambda: until_done(lifecycle.refresh(job, within)))
    expiry = lifecycle.describe_expiry(job.service, result.expires, lifecycle.utc_now(), "the new access token")
    if result.meanwhile:
        said = lifecycle.describe_expiry(job.service, result.expires, lifecycle.utc_now(), "the access token")
        job.reporter.info(f"The tokens in the config work (they belong to {result.meanwhile}); {said}.")
    elif result.refreshed:
        job.reporter.info(f"Refreshed — saved to {result.saved_to}; {expiry}.")
        for line in result.changes:
            job.reporter.info(line)


def check(job: Job, as_json: bool) -> None:
    from malcapture import lifecycle

    found = guarded(lambda: until_done(lifecycle.report(job)))
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2))
    if not found.works:
        fail(f"{found.problem}\n{found.fix}" if found.fix else str(found.problem), found.exit_code)
    for note in found.notes:
        job.reporter.warn(note)
    if not as_json:  # the summary is the command's output: on stdout (`malcapture check | less`)
        for fact in found.facts:
            out(fact)
        out(f"{job.service.title} accepts the stored token: it belongs to {found.account}.")


def out(text: str) -> None:
    """A line of a command's output (status, check) on stdout, with a service's control characters escaped."""
    from malcapture.ui import printable

    typer.echo(printable(text))


def ask(question: str, hide: bool) -> str:
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


def environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def until_done(coroutine: Coroutine[Any, Any, T]) -> T:
    return interrupts.run(coroutine)


def guarded(work: Callable[[], T]) -> T:
    """The one place where the library's errors become messages and exit codes."""
    try:
        return work()
    except MalcaptureError as exc:
        fail(str(exc), exc.exit_code)
    except interrupts.Interrupted as exc:
        if exc.name == "Ctrl-C" and terminal.is_terminal(2):
            terminal.mark_line_open()  # the terminal echoed ^C where the cursor was
        cause = exc.__cause__
        if isinstance(cause, MalcaptureError):
            say(f"Error: {cause}")
        hold = exc.hold
        if hold and hold.saved_to:
            fail(f"Interrupted by {exc.name}, once the new tokens were saved to {hold.saved_to}.", 130)
        if hold and hold.printed:
            fail(f"Interrupted by {exc.name}. The new tokens are on standard output; the config was not changed.", 130)
        fail(f"Interrupted by {exc.name}. The config was not changed.", 130)
    except (KeyboardInterrupt, typer.Abort):
        fail("Interrupted. The config was not changed.", 130)
    raise AssertionError("unreachable")


def fail(message: str, code: int) -> NoReturn:
    say(f"Error: {message}")
    raise typer.Exit(code)


def say(message: str) -> None:
    """A last message, on a line of its own even when the user was typing one (or pressed Ctrl-C there)."""
    StderrReporter().info(f"\n{message}" if terminal.line_open() else message)
    terminal.close_line()
