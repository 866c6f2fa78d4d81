"""A Kometa user's day, told truly (the round after the first users' reports): what an unreadable config, a
folder or an undefined placeholder gets, and that --print prints the whole section."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.helpers import MalStandIn, address_after_allow, run_cli, run_here, run_without_privileges, spawn_cli, stored


def test_an_unreadable_config_is_exit_3_with_the_advice_and_json_gets_its_empty_list(
    mal: MalStandIn, config: Path
) -> None:
    stored(mal, config)
    config.chmod(0o000)
    try:
        variables = [f"{k}={v}" for k, v in mal.env().items() if k.startswith(("MALCAPTURE_", "PATH"))]
        status = run_without_privileges(
            "env", *variables, sys.executable, "-m", "malcapture", "status", "--json", "-c", str(config)
        )
        if status is None:
            pytest.skip("needs root without capabilities to meet a file it may not read")
        assert status.returncode == 3, status.stderr
        assert json.loads(status.stdout) == []
        assert "cannot be read: Permission denied" in status.stderr
        assert "is not readable" not in status.stderr  # click's words, without the advice
    finally:
        config.chmod(0o640)


async def test_a_folder_given_as_the_config_says_what_is_in_it(tmp_path: Path) -> None:
    result = await run_here("check", "-c", str(tmp_path), env={})
    assert result.code == 3
    assert "It holds no config.yml" in result.err
    (tmp_path / "config.yml").write_text("mal:\n")
    result = await run_here("check", "-c", str(tmp_path), env={})
    assert f"Pass {tmp_path / 'config.yml'}." in result.err


@pytest.mark.parametrize("command", [["check"], ["refresh"]])
async def test_an_undefined_placeholder_token_is_a_config_problem_named_as_written(
    mal: MalStandIn, config: Path, command: list[str]
) -> None:
    stored(mal, config)
    config.write_text(config.read_text().replace("    access_token: ", "    access_token: <<MAL_ACCESS_TOKEN>> #"))
    result = await run_here(*command, "-c", str(config), env=mal.env())
    assert result.code == 3, result.err
    assert "mal.authorization.access_token in" in result.err
    assert "KOMETA_MAL_ACCESS_TOKEN is not set" in result.err


async def test_print_prints_the_whole_section_as_it_would_be_saved(mal: MalStandIn, tmp_path: Path) -> None:
    """--print on Kometa's own template: every key of the section, the ones malcapture does not set included."""
    config = tmp_path / "config.yml"
    config.write_text(
        "mal:\n  client_id: keep\n  client_secret: keep-too\n  localhost_url:\n  cache_expiration: 60\n"
        "  authorization:\n    access_token:\n    token_type:\n    expires_in:\n    refresh_token:\n"
    )
    before = config.read_bytes()
    args = ["-c", str(config), "--client-id", mal.app.client_id, "--client-secret", str(mal.app.secret)]
    process = await spawn_cli(*args, "--redirect-uri", mal.redirect, "--manual", "--print", env=mal.env(), stdin=-1)
    assert process.stderr is not None
    url = ""
    while not url:
        line = (await process.stderr.readline()).decode()
        assert line
        url = line.strip() if "/authorize?" in line else ""
    pasted = await address_after_allow(url)
    out, _ = await process.communicate(pasted.encode() + b"\n")
    assert process.returncode == 0
    printed = out.decode()
    assert "cache_expiration: 60" in printed
    assert f"client_id: {mal.app.client_id}" in printed
    assert "access_token: eyJ" in printed
    assert config.read_bytes() == before


def test_backups_keep_the_last_five_versions_so_a_few_logins_keep_the_original(tmp_path: Path) -> None:
    from tests.helpers import SMALL_CONFIG, TOKENS, mal_tokens, save

    path = tmp_path / "config.yml"
    path.write_text(SMALL_CONFIG)
    original = path.read_bytes()
    for n in range(3):  # three logins in a row
        save(path, mal_tokens(f"access{n}" * 20, f"refresh{n}" * 20))
    assert (tmp_path / "config.yml.bak.2").read_bytes() == original
    assert b"access1" in (tmp_path / "config.yml.bak").read_bytes()
    for n in range(5):
        save(path, TOKENS if n % 2 else mal_tokens(f"more{n}" * 20, f"again{n}" * 20))
    names = sorted(p.name for p in tmp_path.iterdir() if ".bak" in p.name)
    assert names == ["config.yml.bak", "config.yml.bak.1", "config.yml.bak.2", "config.yml.bak.3", "config.yml.bak.4"]
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in tmp_path.iterdir() if ".bak" in p.name)


def test_what_a_save_says_is_worded_truly(tmp_path: Path) -> None:
    from tests.helpers import CREDS, SMALL_CONFIG, TOKENS, mal_tokens, save

    path = tmp_path / "config.yml"
    path.write_text(SMALL_CONFIG.replace("mal:\n", "mal:\n  localhost_url: (redacted)\n"))
    first = save(path)
    assert any(line.startswith("Filled in mal.client_id and mal.client_secret") for line in first.changes)
    assert not any("Emptied" in line for line in first.changes)  # `(redacted)` holds no code: left alone
    assert "localhost_url: (redacted)" in path.read_text()
    from malcapture.login.contract import Credentials

    other = Credentials("f" * 32, CREDS.client_secret)
    second = save(path, TOKENS, other)
    assert any(line.startswith("Replaced mal.client_id") for line in second.changes)
    one = save(path, mal_tokens("eyJ1" + "c" * 900, TOKENS.refresh_token or ""), other)  # the access token alone
    assert one.changes[0].startswith("Changed line ")  # one line: "line", not "lines"
    path.write_text(path.read_text().replace("(redacted)", "http://localhost/?code=abc"))
    third = save(path)
    assert any(line.startswith("Emptied mal.localhost_url") for line in third.changes)


async def test_the_words_people_type_get_what_they_mean(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    helped = await run_here("help", env={"COLUMNS": "200"})
    assert helped.code == 0
    assert "Usage: malcapture" in helped.out
    version = await run_here("version", env={})
    assert version.out.startswith("malcapture ")
    plex = await run_here("plex", "refresh", env={})
    assert plex.code == 2
    assert "Plex's token does not expire: there is nothing to refresh" in plex.err
    status = await run_here("status", "-v", "-c", str(config), env=mal.env())
    assert status.code == 0, status.err
    assert "[http] GET" in status.err  # -v shows the exchanges of status too
    owner = await run_cli("-c", str(config), "--no-browser", "--timeout", "1", *_app(mal), env=mal.env())
    assert "a MyAnimeList token of user ID" in owner.err  # not "of MyAnimeList user ID"
    waiting = next(line for line in owner.err.splitlines() if line.startswith("Waiting until"))
    assert re.match(r"Waiting until \d\d:\d\d:\d\d [A-Z]", waiting)  # with its time zone


def _app(mal: MalStandIn) -> list[str]:
    return ["--client-id", mal.app.client_id, "--client-secret", str(mal.app.secret), "--redirect-uri", mal.redirect]


async def test_demo_serve_lets_any_command_be_tried_against_the_stand_ins(tmp_path: Path) -> None:
    """`malcapture demo --serve` prints what to export; a real `plex --link` sign-in then runs against it."""
    import asyncio
    import os
    import signal

    import aiohttp

    served = await spawn_cli("demo", "--serve", env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert served.stdout is not None
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("# Spotify"):
            lines.append((await asyncio.wait_for(served.stdout.readline(), 30)).decode().strip())
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env |= dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
        plex = next(line for line in lines if line.startswith("# Plex"))
        config = tmp_path / "config.yml"
        config.write_text("plex:\n  url:\n  token:\n")
        login = await spawn_cli("plex", "-c", str(config), "--url", plex.rsplit(" ", 1)[1], env=env)
        assert login.stderr is not None
        shown = ""
        while "Waiting for your approval" not in shown:
            shown += (await asyncio.wait_for(login.stderr.readline(), 30)).decode()
        code = shown.splitlines()[shown.splitlines().index(f"{env['MALCAPTURE_PLEX_TV_URL']}/link") + 1]
        link = f"{env['MALCAPTURE_PLEX_TV_URL']}/link/decide"
        async with aiohttp.ClientSession() as session, session.get(link, params={"code": code}) as page:
            assert page.status == 200
        _, err = await asyncio.wait_for(login.communicate(), 30)
        assert login.returncode == 0, shown + err.decode()
        assert "Signed in as kometa_fan" in err.decode()
        served.send_signal(signal.SIGINT)
        _, stopped = await asyncio.wait_for(served.communicate(), 30)
        assert served.returncode == 0
        assert "Stopped the stand-ins." in stopped.decode()
    finally:
        if served.returncode is None:
            served.kill()
            await served.wait()
