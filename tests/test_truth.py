"""What malcapture tells the user is true: a wrong secret is found, placeholder tokens are kept where Kometa
reads them (or nothing is spent), slips get the answer they deserve, and --json says what the words say."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from malcapture.errors import ServiceError
from malcapture.login.contract import LoginOptions, LoginResult
from malcapture.standins.base import play_browser
from tests.helpers import (
    MAL,
    TRAKT,
    FakeClock,
    MalStandIn,
    TraktStandIn,
    desktop_login,
    quiet_io,
    read_record,
    run_cli,
    run_here,
    spawn_cli,
    stored,
    stored_trakt,
    until_waiting,
)


def browser_clicking_allow(url: str) -> bool:
    """The user's browser, in this process: on a thread of its own, as a browser is a process of its own."""
    status, _ = asyncio.run(play_browser(url))
    return status == 200


# 1. A wrong client secret: check and status say so, and nothing is spent.
def with_wrong_secret(config: Path, secret: str) -> None:
    config.write_text(config.read_text().replace(secret, "f" * len(secret)))


async def test_check_and_status_find_a_wrong_mal_secret_and_spend_nothing(mal: MalStandIn, config: Path) -> None:
    tokens = stored(mal, config)
    with_wrong_secret(config, str(mal.app.secret))
    before = config.read_bytes()
    result = await run_here("check", "-c", str(config), env=mal.env())
    assert result.code == 1
    assert "client secret (or the client ID) is wrong" in result.err
    assert "https://myanimelist.net/apiconfig" in result.err
    status = await run_here("status", "-c", str(config), env=mal.env())
    assert status.code == 1
    assert status.out.splitlines()[1].startswith(
        "mal: does not work: MyAnimeList refused the check of the client secret"
    )
    assert tokens["refresh_token"] in mal.fake.refresh_tokens  # the stored refresh token is unspent
    assert config.read_bytes() == before


async def test_check_finds_a_wrong_trakt_secret_and_spends_nothing(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    tokens = stored_trakt(trakt, config)
    with_wrong_secret(config, trakt.app.secret)
    result = await run_here("trakt", "check", "-c", str(config), env=trakt.env())
    assert result.code == 1
    assert "the client secret is wrong" in result.err
    assert tokens["refresh_token"] in trakt.fake.refresh_tokens
    assert trakt.fake.codes == {}  # the check's code was one that cannot exist


async def test_a_wrong_mal_secret_is_found_before_the_code_is_spent(
    mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    before = config.read_bytes()
    args = mal.args(config)
    args[args.index("--client-secret") + 1] = "f" * 64
    result = await run_cli(*args, env=mal.env(BROWSER=str(scripted_browser()), DISPLAY=":99"))
    assert result.code == 1
    assert "client secret (or the client ID) is wrong" in result.err
    assert "Got the code" not in result.err
    assert not any(grant.used for grant in mal.fake.grants.values())  # Allow was clicked, or not: nothing spent
    assert config.read_bytes() == before
    page = str(read_record(config.parent / "browser.json")["page"])  # the browser was told, not left stranded
    assert "client secret (or the client ID) is wrong" in page


async def test_a_wrong_trakt_secret_stops_the_device_flow_before_approval(
    trakt: TraktStandIn, tmp_path: Path, no_input: int
) -> None:
    config = tmp_path / "config.yml"
    config.write_text("trakt:\n  client_id:\n")
    clock = FakeClock()
    trakt.fake.clock = clock.wall
    io, said = quiet_io(trakt.env(), no_input, clock)
    with pytest.raises(ServiceError, match="the client secret is wrong"):
        await TRAKT.code.login_async(LoginOptions(config, TRAKT, trakt.app.client_id, "f" * 64), io)
    assert config.read_text() == "trakt:\n  client_id:\n"
    assert said.lines[1] == f"{trakt.base}/activate"  # the code was shown first: the check did not delay it


# 2. Token values written as placeholders: saved where Kometa reads them, or nothing is spent.
MAL_HELD = (
    "mal:\n  client_id: {cid}\n  client_secret: {secret}\n  authorization:\n    access_token: <<MAL_ACCESS_TOKEN>>\n"
    "    token_type: Bearer\n    expires_in: 2678400\n    refresh_token: <<MAL_REFRESH_TOKEN>>\n"
)
TRAKT_HELD = (
    "trakt:\n  client_id: {cid}\n  client_secret: {secret}\n  pin:\n  authorization:\n"
    "    access_token: <<TRAKT_ACCESS_TOKEN>>\n    token_type: bearer\n    expires_in: <<TRAKT_EXPIRES_IN>>\n"
    "    refresh_token: <<TRAKT_REFRESH_TOKEN>>\n    scope: public\n    created_at: <<TRAKT_CREATED_AT>>\n"
)
DOTENV = {
    "mal": "KOMETA_MAL_ACCESS_TOKEN=old\nKOMETA_MAL_REFRESH_TOKEN=old\n",
    "trakt": "KOMETA_TRAKT_ACCESS_TOKEN=old\nKOMETA_TRAKT_EXPIRES_IN=1\n"
    "KOMETA_TRAKT_REFRESH_TOKEN=old\nKOMETA_TRAKT_CREATED_AT=1\n",
}


def dotenv_values(folder: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in (folder / ".env").read_text().splitlines())


async def mal_desktop_login(mal: MalStandIn, config: Path, no_input: int) -> LoginResult:
    io, _ = quiet_io(mal.env(), no_input, open_browser=browser_clicking_allow, headless=lambda env: None)
    opts = LoginOptions(config, MAL, mal.app.client_id, mal.app.secret, redirect_uri=mal.redirect, yes=True)
    return await MAL.code.login_async(opts, io)


async def trakt_device_login(trakt: TraktStandIn, config: Path, no_input: int) -> LoginResult:
    clock = FakeClock()
    trakt.fake.clock = clock.wall
    io, _ = quiet_io(trakt.env(), no_input, clock)
    login = asyncio.ensure_future(
        TRAKT.code.login_async(LoginOptions(config, TRAKT, trakt.app.client_id, trakt.app.secret, yes=True), io)
    )
    approved = asyncio.ensure_future(trakt.fake.approve_when_shown())
    try:
        return await asyncio.wait_for(login, 30)
    finally:
        approved.cancel()


async def test_a_login_saves_placeholder_tokens_into_dotenv(
    mal: MalStandIn, trakt: TraktStandIn, tmp_path: Path, no_input: int
) -> None:
    for name, text, login in (
        (
            "mal",
            MAL_HELD.format(cid=mal.app.client_id, secret=mal.app.secret),
            mal_desktop_login(mal, tmp_path / "mal" / "config.yml", no_input),
        ),
        (
            "trakt",
            TRAKT_HELD.format(cid=trakt.app.client_id, secret=trakt.app.secret),
            trakt_device_login(trakt, tmp_path / "trakt" / "config.yml", no_input),
        ),
    ):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.yml").write_text(text)
        (folder / ".env").write_text(DOTENV[name])
        result = await login
        assert result.saved_to == folder / ".env"  # the config is byte for byte what it was: "saved to" says so
        assert (folder / "config.yml").read_text() == text  # the placeholders stay
        assert not any(line.startswith("Changed line") for line in result.changes)
        values = dotenv_values(folder)
        fake = mal.fake if name == "mal" else trakt.fake
        assert values[f"KOMETA_{name.upper()}_REFRESH_TOKEN"] in fake.refresh_tokens  # never "saved" into nowhere
        assert values[f"KOMETA_{name.upper()}_ACCESS_TOKEN"] in fake.access_tokens
        assert any(".env" in line for line in result.changes)


async def test_a_login_with_placeholder_tokens_defined_nowhere_spends_nothing(
    mal: MalStandIn, trakt: TraktStandIn, tmp_path: Path, scripted_browser: Callable[..., Path]
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(MAL_HELD.format(cid=mal.app.client_id, secret=mal.app.secret))
    result = await desktop_login(mal, config, scripted_browser())
    assert result.code == 3
    assert "KOMETA_MAL_ACCESS_TOKEN" in result.err
    assert "--print" in result.err
    assert "/authorize?" not in result.err  # before the browser: no code to waste
    config.write_text(TRAKT_HELD.format(cid=trakt.app.client_id, secret=trakt.app.secret))
    result = await run_cli("trakt", "-c", str(config), env=trakt.env(KOMETA_TRAKT_ACCESS_TOKEN="in-env-only"))
    assert result.code == 3
    assert trakt.fake.hits["/oauth/device/code"] == 0


async def test_a_pin_and_a_refresh_save_placeholder_tokens_into_dotenv(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    pin = await trakt_pin(trakt)
    config.write_text(
        TRAKT_HELD.format(cid=trakt.app.client_id, secret=trakt.app.secret).replace("  pin:\n", f"  pin: {pin}\n")
    )
    (tmp_path / ".env").write_text(DOTENV["trakt"])
    result = await run_cli("trakt", "--pin", "-c", str(config), env=trakt.env())
    assert result.code == 0, result.err
    first = dotenv_values(tmp_path)["KOMETA_TRAKT_REFRESH_TOKEN"]
    assert first in trakt.fake.refresh_tokens
    result = await run_here("trakt", "refresh", "-c", str(config), env=trakt.env())
    assert result.code == 0, result.err
    second = dotenv_values(tmp_path)["KOMETA_TRAKT_REFRESH_TOKEN"]
    assert second != first
    assert second in trakt.fake.refresh_tokens
    assert "<<TRAKT_REFRESH_TOKEN>>" in config.read_text()


async def trakt_pin(trakt: TraktStandIn) -> str:
    import aiohttp

    query = f"response_type=code&client_id={trakt.app.client_id}&redirect_uri=urn:ietf:wg:oauth:2.0:oob"
    url = f"{trakt.base}/oauth/authorize?{query}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        page = await response.text()
    return page.split("<code id=pin>")[1].split("</code>")[0]


# 3. Slips get the answer they deserve.
@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--redirect-url", "http://localhost:8765/"], "No such option: --redirect-url"),
        (["--confg", "x.yml", "check"], "No such option: --confg"),
        (["--client_id", "abc"], "No such option: --client_id"),
        (["login", "--trakt"], "No such option: --trakt. Trakt is `malcapture trakt`."),
        (["mal"], "No such command 'mal'. MyAnimeList is `malcapture` (login, refresh, check…)."),
    ],
)
async def test_a_slip_is_named(args: list[str], said: str) -> None:
    result = await run_here(*args, env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.code == 2
    assert said in " ".join(result.err.split())
    assert "Traceback" not in result.err


async def test_a_misspelled_option_gets_a_suggestion() -> None:
    result = await run_here("--redirect-url", "http://localhost:8765/", env={"COLUMNS": "200", "TERM": "dumb"})
    assert "Possible options: --redirect-uri" in result.err  # click's suggestion


async def test_check_and_status_name_the_config_they_read(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    for command in (["check"], ["status"]):
        result = await run_here(*command, "-c", str(config), env=mal.env())
        assert result.code == 0, result.err
        assert str(config.absolute()) in result.out


async def test_another_malcapture_on_the_port_is_recognised(mal: MalStandIn, config: Path) -> None:
    waiting = await spawn_cli(*mal.args(config, "--no-browser"), env=mal.env(), stdin=asyncio.subprocess.PIPE)
    try:
        assert waiting.stderr is not None
        while b"Waiting until" not in await asyncio.wait_for(waiting.stderr.readline(), 20):
            pass
        second = await until_waiting(*mal.args(config, "--no-browser"), env=mal.env())
    finally:
        waiting.kill()
        await waiting.wait()
    assert f"Another malcapture (pid {waiting.pid}) is already waiting for this redirect" in second.err
    assert "Python/" not in second.err


# 4. Machine-readable status and check.
async def test_status_and_check_in_json(mal: MalStandIn, trakt: TraktStandIn, tmp_path: Path) -> None:
    import time

    config = tmp_path / "config.yml"
    stored(mal, config)
    mal_text = config.read_text()
    stored_trakt(trakt, config, created_at=int(time.time()) - 2 * 86400)
    config.write_text(mal_text + config.read_text().split("\n", 2)[2])
    env = {**mal.env(), **trakt.env()}
    result = await run_here("status", "-c", str(config), "--json", env=env)
    assert result.code == 1
    found = json.loads(result.out)
    assert [entry["service"] for entry in found] == ["mal", "trakt"]
    assert set(found[0]) == {"service", "config", "account", "expires_at", "works", "problem", "fix"}
    assert found[0]["works"] is True
    assert found[0]["account"] == "kometa_fan"
    assert found[0]["expires_at"].endswith("Z")
    assert found[0]["config"] == str(config.absolute())
    assert (found[1]["works"], found[1]["account"]) == (False, None)
    assert "expired" in found[1]["problem"]
    assert "malcapture trakt refresh" in found[1]["fix"]
    assert "trakt: does not work" in result.err  # the words still go to stderr
    check = await run_here("check", "-c", str(config), "--json", env=env)
    assert check.code == 0
    assert json.loads(check.out)["works"] is True
    empty = tmp_path / "empty.yml"
    empty.write_text("mal:\n  client_id: x\n")
    check = await run_here("check", "-c", str(empty), "--json", env=env)
    assert check.code == 3
    assert json.loads(check.out)["problem"].startswith("No MyAnimeList access token is stored")
    missing = await run_here("status", "-c", str(tmp_path / "missing.yml"), "--json", env=env)
    assert (missing.code, json.loads(missing.out)) == (3, [])


# 5. The rest, each small.
async def test_a_yaml_error_points_where_it_says(tmp_path: Path, mal: MalStandIn) -> None:
    config = tmp_path / "config.yml"
    config.write_text("settings:\n  run_order: [operations,\n  cache: true\n")
    result = await run_here("check", "-c", str(config), env=mal.env())
    assert result.code == 3
    assert "at the end of the file" in result.err
    numbered = [line for line in result.err.splitlines() if line.startswith("  ") and " | " in line]
    assert len(numbered) == len(set(numbered))  # no line shown twice
    assert numbered[-1] == "    | " + " " * len("  cache: true") + "^"  # the caret after the end of the last line


async def test_help_says_what_each_service_does() -> None:
    env = {"COLUMNS": "200", "TERM": "dumb"}
    mal = " ".join((await run_here("login", "--help", env=env)).out.split())
    assert "print the whole mal: section" in mal
    assert "--redirect-uri URL" in mal
    trakt = " ".join((await run_here("trakt", "login", "--help", env=env)).out.split())
    assert "print the whole trakt: section" in trakt
    assert "--redirect-uri URL" in trakt
    assert "waits as long as it is valid" in trakt
    version = await run_here("-V", env=env)
    assert version.out.startswith("malcapture ")


async def test_no_terminal_and_no_display_offers_only_what_is_possible(mal: MalStandIn, config: Path) -> None:
    result = await until_waiting(*mal.args(config), env=mal.env(SSH_CONNECTION="10.0.0.2 5 10.0.0.1 22"))
    assert "ssh -L" in result.err
    assert "paste" not in result.err.split("Waiting until")[0]  # standard input is /dev/null: nothing to paste
