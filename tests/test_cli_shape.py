"""The command line's shape: a bare malcapture is login, and options before a command apply to it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from malcapture import __version__
from malcapture.cli import offered
from malcapture.login.contract import Service, ServiceCode
from malcapture.services import MYANIMELIST, SERVICES
from tests.helpers import MalStandIn, run_cli, run_here, stored


async def test_options_before_check_apply_to_it(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    result = await run_here("-c", str(config), "check", env=mal.env())
    assert result.code == 0, result.err
    assert "kometa_fan" in result.out


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


@pytest.mark.parametrize("service", SERVICES, ids=[service.name for service in SERVICES])
async def test_each_login_offers_exactly_the_options_of_its_ways(service: Service) -> None:
    """The options a service's login has are those of its ways, its app and its settings; the others are
    refused by name (a service without a redirect has no --redirect-uri)."""
    words = service.command("login").split()[1:]
    result = await run_here(*words, "--help", env={"COLUMNS": "200", "TERM": "dumb"})
    shown = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", result.out)) - {"--help"}
    names = {name.replace("print_block", "print").replace("_", "-") for name in offered(service)}
    expected = {f"--{name}" for name in names - {"ctx", "as-json", "if-expiring-within", "quiet"}}
    expected -= {"--config", "--verbose", "--yes"} - shown  # spelled -c/-v/-y too: present either way
    assert shown == expected, service.name
    for option in {"--redirect-uri", "--client-secret", "--bind", "--link", "--manual", "--pin"} - shown:
        refused = await run_here(*words, option, env={})
        assert refused.code == 2
        assert f"No such option: {option}" in refused.err


def test_a_service_module_without_a_piece_is_refused_by_mypy_and_at_run_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # mypy (make lint) needs this ignore: a ServiceCode without `stand_in` is a type error there. Were it not
    # one, strict mypy would call the ignore unused and fail.
    with pytest.raises(TypeError, match="stand_in"):
        ServiceCode(  # type: ignore[call-arg]
            sample="",
            client=lambda setup: None,  # type: ignore[arg-type,return-value]
            expiry=None,
            owner=None,
            authorize_url=None,
            login=lambda opts, io: None,  # type: ignore[arg-type,return-value]
            login_async=lambda opts, io: None,  # type: ignore[arg-type,return-value]
        )
    (tmp_path / "half_done_service.py").write_text("sample = ''\nclient = None\n")  # attributes, no CODE
    monkeypatch.syspath_prepend(str(tmp_path))
    service = dataclasses.replace(MYANIMELIST, module="half_done_service")
    with pytest.raises(TypeError, match="must export CODE = ServiceCode"):
        service.code  # noqa: B018


async def test_status_and_json_speak_for_every_service_in_the_table(tmp_path: Path) -> None:
    """Each service's own section of the demo's config, without tokens: status names every one, and the fix
    is that service's own login command."""
    import json

    config = tmp_path / "config.yml"
    config.write_text("".join(service.code.sample for service in SERVICES))
    result = await run_here("status", "--json", "-c", str(config), env={})
    assert result.code == 1
    found = {entry["service"]: entry for entry in json.loads(result.out)}
    assert list(found) == [service.name for service in SERVICES]
    for service in SERVICES:
        entry = found[service.name]
        assert entry["works"] is False
        assert entry["config"] == str(config.absolute())
        assert entry["fix"] == f"Run `{service.command()}` to authorize Kometa first.", entry
