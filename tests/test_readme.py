"""The README stays true to --help, for every service in the table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from malcapture.login.contract import Service
from malcapture.services import SERVICES
from tests.helpers import run_here

README = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
HELP_ENV = {"COLUMNS": "200", "TERM": "dumb"}


def commands_of(service: Service) -> list[str]:
    words = [service.command("login"), service.command("check")]
    if service.refreshable:
        words.append(service.command("refresh"))
    return [" ".join(command.split()[1:]) for command in words]


async def test_every_option_of_the_shared_commands_is_in_the_readme() -> None:
    for command in ("demo", "status"):
        result = await run_here(command, "--help", env=HELP_ENV)
        for option in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", result.out)) - {"--help"}:
            assert f"`{option}" in README or f", {option}" in README, f"{option} of `{command}` is not in README.md"


@pytest.mark.parametrize("service", SERVICES, ids=[service.name for service in SERVICES])
async def test_every_option_and_command_of_each_service_is_in_the_readme(service: Service) -> None:
    assert f"## {service.title}" in README, f"README.md has no section for {service.title}"
    for command in commands_of(service):
        result = await run_here(*command.split(), "--help", env=HELP_ENV)
        assert result.code == 0, result.err
        for option in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", result.out)) - {"--help"}:
            assert f"`{option}" in README or f", {option}" in README, (
                f"{option} of `malcapture {command}` is missing from README.md"
            )
