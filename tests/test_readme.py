"""The README's option list stays true to --help."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import run_cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")


async def test_every_option_in_help_is_in_the_readme() -> None:
    commands = ("login", "refresh", "check", "demo", "status", "trakt login", "trakt refresh", "trakt check")
    for command in (*commands, "plex login", "plex check"):
        result = await run_cli(*command.split(), "--help", env={"COLUMNS": "200", "TERM": "dumb"})
        for option in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", result.out)) - {"--help"}:
            assert f"`{option}" in README or f", {option}" in README, (
                f"{option} of `{command}` is missing from README.md"
            )
