"""The Typer group every service's commands live in: a bare `malcapture [OPTIONS]` is `malcapture login
[OPTIONS]`, options may come before the command, and a service named in the wrong place is pointed to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import typer
from typer.core import TyperGroup

from malcapture.services import SERVICES

HELP_FLAGS = ("-h", "--help", "--version", "-V")


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


def new_group(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=LoginByDefault,
        add_completion=False,
        pretty_exceptions_show_locals=False,  # locals hold tokens and secrets
        rich_markup_mode=None,
        help=help_text,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
