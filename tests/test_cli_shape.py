"""The command line's shape: a bare malcapture is login, and options before a command apply to it."""

from __future__ import annotations

from pathlib import Path

from malcapture import __version__
from tests.helpers import MalStandIn, run_cli, run_here, stored


async def test_options_before_check_apply_to_it(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    result = await run_here("-c", str(config), "check", env=mal.env())
    assert result.code == 0, result.err
    assert "kometa_fan" in result.err


async def test_options_after_check_apply_to_it(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    result = await run_here("check", "-c", str(config), env=mal.env())
    assert result.code == 0, result.err


async def test_options_before_refresh_apply_to_it(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    result = await run_here("-c", str(config), "-v", "refresh", env=mal.env())
    assert result.code == 0, result.err
    assert "Refreshed — saved to " + str(config) in result.err
    assert "[http] POST" in result.err  # -v, placed before the command, applies too


async def test_a_bare_malcapture_with_options_is_login(mal: MalStandIn, config: Path) -> None:
    result = await run_cli(
        "-c", str(config), "--print", "--manual", "--client-id", mal.app.client_id, env=mal.env(), stdin=b""
    )
    assert result.code == 2  # login ran: with --manual and nothing to paste it stops before the URL
    assert "only way to finish" in result.err


async def test_help_lists_the_commands_and_the_login_options() -> None:
    result = await run_here("--help", env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.code == 0
    for word in ("login", "refresh", "check", "demo", "--redirect-uri", "--manual", "--config"):
        assert word in result.out


async def test_version_prints_this_version() -> None:
    result = await run_here("--version", env={})
    assert result.out == f"malcapture {__version__}\n"


async def test_an_unknown_option_before_a_command_is_named(config: Path) -> None:
    result = await run_here("--bogus", "check", "-c", str(config), env={})
    assert result.code == 2
    assert "--bogus" in result.err


async def test_a_login_option_before_check_is_refused_by_name(config: Path) -> None:
    result = await run_here("--manual", "check", "-c", str(config), env={})
    assert result.code == 2
    assert "--manual" in result.err


async def test_an_unknown_command_is_named_not_handed_to_login() -> None:
    result = await run_here("frobnicate", "--help", env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.code == 2
    assert "No such command 'frobnicate'" in result.err
