"""`malcapture trakt` and `malcapture status`, as a user runs them, against the fake Trakt on loopback."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from ruamel.yaml import YAML

from tests.helpers import (
    Mal,
    Result,
    TraktStandIn,
    run_cli,
    run_here,
    spawn_cli,
    stored,
    stored_trakt,
)

KOMETA_ORDER = ["access_token", "token_type", "expires_in", "refresh_token", "scope", "created_at"]
EMPTY = (
    "settings:\n  cache: true\ntrakt:\n  client_id:\n  client_secret:\n  pin:\n  authorization:\n    access_token:\n"
)


def trakt_section(config: Path) -> dict[str, object]:
    section: dict[str, object] = YAML(typ="safe").load(config.read_text())["trakt"]
    return section


async def device_login(
    trakt: TraktStandIn, config: Path, decide: Callable[[str], None] | None, *extra: str, polls: int = 2, **env: str
) -> Result:
    """Start `malcapture trakt`, read the user code, let `polls` polls pass pending, then decide."""
    process = await spawn_cli("trakt", *trakt.args(config, *extra), env=trakt.env(**env))
    assert process.stderr is not None
    shown = ""
    while "Waiting for your approval" not in shown:
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        if not line:
            break
        shown += line
    code = next((w for w in shown.split() if re.fullmatch(r"[0-9A-F]{8}", w)), None)
    if code is not None and decide is not None:
        while trakt.fake.hits["/oauth/device/token"] < polls:  # noqa: ASYNC110 (the fake only counts)
            await asyncio.sleep(0.05)
        decide(code)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), shown + err.decode())


async def test_the_device_flow_saves_after_a_few_pending_polls(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    result = await device_login(trakt, config, trakt.fake.decide)
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert lines[1] == f"{trakt.base}/activate"  # the URL and the code, each whole on its own line
    assert re.fullmatch(r"[0-9A-F]{8}", lines[2])
    assert "valid until" in result.err
    assert "Authorized as kometa_fan" in result.err
    section = trakt_section(config)
    auth = section["authorization"]
    assert isinstance(auth, dict)
    assert list(auth) == KOMETA_ORDER
    assert auth["expires_in"] == 86400
    assert auth["refresh_token"] in trakt.fake.refresh_tokens
    assert section["client_id"] == trakt.app.client_id
    assert config.read_text().startswith("settings:\n  cache: true\ntrakt:\n")
    assert trakt.fake.hits["/oauth/device/token"] >= 3


async def test_a_denied_code_exits_4_and_changes_nothing(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    result = await device_login(trakt, config, lambda code: trakt.fake.decide(code, "deny"))
    assert result.code == 4, result.err
    assert "denied" in result.err
    assert config.read_text() == EMPTY


async def test_an_expired_code_exits_5(trakt: TraktStandIn, tmp_path: Path) -> None:
    trakt.fake.device_lifetime = 2
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    result = await device_login(trakt, config, None)
    assert result.code == 5, result.err
    assert "expired" in result.err
    assert config.read_text() == EMPTY


async def test_a_429_slows_the_polling_down(trakt: TraktStandIn, tmp_path: Path) -> None:
    trakt.fake.enforced_interval = 2  # stricter than the 1 second it announces
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    result = await device_login(trakt, config, trakt.fake.decide, "-v")  # decided once a poll got a 429
    assert result.code == 0, result.err
    assert trakt.fake.slowed >= 1
    assert "poll more slowly: every 2 seconds" in result.err


async def test_a_deleted_app_is_explained_before_any_browser(
    trakt: TraktStandIn, tmp_path: Path, scripted_browser: Callable[..., Path]
) -> None:
    trakt.fake.deleted.add(trakt.app.client_id)
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    env = trakt.env(BROWSER=str(scripted_browser()), DISPLAY=":99")
    result = await run_cli("trakt", *trakt.args(config), env=env)
    assert result.code == 1
    assert "HTTP 403" in result.err
    assert "may have been deleted" in result.err
    assert "developer.trakt.tv" in result.err
    assert not (tmp_path / "browser.json").exists()
    assert config.read_text() == EMPTY


async def pin_from(url: str) -> str:
    """What the user sees on Trakt's PIN page after clicking Yes."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        page = await response.text()
    found = re.search(r"<code id=pin>(\w+)</code>", page)
    assert found is not None, page
    return found.group(1)


async def test_pin_typed_after_opening_the_page(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    process = await spawn_cli(
        "trakt", "login", *trakt.args(config, "--pin"), env=trakt.env(), stdin=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    url = ""
    while not url:
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode().strip()
        url = line if line.startswith(f"{trakt.base}/oauth/authorize?") else ""
    assert "redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob" in url
    pin = await pin_from(url)
    _, err = await asyncio.wait_for(process.communicate(pin.lower().encode() + b"\n"), 30)  # case insensitive
    assert process.returncode == 0, err.decode()
    assert trakt.fake.last_token_body["redirect_uri"] == "urn:ietf:wg:oauth:2.0:oob"
    auth = trakt_section(config)["authorization"]
    assert isinstance(auth, dict)
    assert list(auth) == KOMETA_ORDER


async def test_a_pin_in_the_config_is_used_first_and_emptied(trakt: TraktStandIn, tmp_path: Path) -> None:
    url = f"{trakt.base}/oauth/authorize?response_type=code&client_id={trakt.app.client_id}"
    pin = await pin_from(url + "&redirect_uri=urn:ietf:wg:oauth:2.0:oob")
    config = tmp_path / "config.yml"
    config.write_text(EMPTY.replace("  pin:\n", f"  pin: {pin}\n"))
    result = await run_cli("trakt", "--pin", *trakt.args(config), env=trakt.env())
    assert result.code == 0, result.err
    assert "Using the PIN in trakt.pin" in result.err
    assert "/oauth/authorize?" not in result.err  # no page to open: the PIN was enough
    section = trakt_section(config)
    assert section["pin"] is None
    assert "Emptied trakt.pin" in result.err


async def test_a_used_pin_without_a_terminal_stops_before_the_page(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY.replace("  pin:\n", "  pin: ABCD1234\n"))
    before = config.read_bytes()
    result = await run_cli("trakt", "--pin", *trakt.args(config), env=trakt.env())
    assert result.code == 2
    assert "was refused" in result.err
    assert "device flow needs no typing" in result.err
    assert config.read_bytes() == before


async def test_a_loopback_redirect_with_its_state_checked(trakt: TraktStandIn, tmp_path: Path) -> None:
    from malcapture.ports import free_port

    port = free_port()
    redirect = f"http://localhost:{port}/callback"
    app = trakt.fake.register(redirect, "urn:ietf:wg:oauth:2.0:oob")
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    args = ["-c", str(config), "--client-id", app.client_id, "--client-secret", app.secret, "--redirect-uri", redirect]
    process = await spawn_cli("trakt", *args, "--no-browser", env=trakt.env(), stdin=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    url = ""
    while not url:
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode().strip()
        url = line if line.startswith(f"{trakt.base}/oauth/authorize?") else ""
    async with aiohttp.ClientSession() as session:
        forged = f"http://localhost:{port}/callback?code=stolen&state=not-this-login"
        async with session.get(forged) as response:
            assert response.status == 400  # a wrong state is turned away; the wait goes on
        async with session.get(url) as response:  # the user says yes; Trakt redirects to malcapture
            page = await response.text()
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert "Authorized as <b>kometa_fan</b>" in page
    assert trakt.fake.last_token_body["redirect_uri"] == redirect


async def test_refresh_rotates_and_the_old_refresh_token_is_then_refused(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    old = stored_trakt(trakt, config)
    before = config.read_bytes()
    result = await run_cli("trakt", "refresh", "-c", str(config), env=trakt.env())
    assert result.code == 0, result.err
    auth = trakt_section(config)["authorization"]
    assert isinstance(auth, dict)
    assert auth["refresh_token"] != old["refresh_token"]
    assert trakt.fake.last_token_body["redirect_uri"] == "urn:ietf:wg:oauth:2.0:oob"  # as Kometa refreshes
    assert config.read_text().startswith("mal:\n  client_id: keep-me\n")
    config.write_bytes(before)  # the old refresh token again: spent
    result = await run_cli("trakt", "refresh", "-c", str(config), env=trakt.env())
    assert result.code == 1
    assert "invalid_grant" in result.err
    assert "authorize again" in result.err
    assert config.read_bytes() == before


async def test_refresh_if_expiring_reads_created_at_plus_expires_in(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    stored_trakt(trakt, config)  # created now, 24 hours
    result = await run_here("trakt", "refresh", "-c", str(config), "--if-expiring-within", "12h", env=trakt.env())
    assert result.code == 0
    assert "No refresh needed" in result.err
    stored_trakt(trakt, config, created_at=int(time.time()) - 20 * 3600)  # 4 hours left
    result = await run_here("trakt", "refresh", "-c", str(config), "--if-expiring-within", "12h", env=trakt.env())
    assert result.code == 0, result.err
    assert "Refreshed" in result.err


async def test_check_names_the_user_and_explains_a_deactivated_or_locked_account(
    trakt: TraktStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    stored_trakt(trakt, config)
    result = await run_here("trakt", "check", "-c", str(config), env=trakt.env())
    assert result.code == 0, result.err
    assert "Trakt accepts the stored token: it belongs to kometa_fan." in result.err
    assert "(in 23 hours)" in result.err
    for status, words in ((410, "deactivated"), (423, "locked")):
        trakt.fake.account = status
        result = await run_here("trakt", "check", "-c", str(config), env=trakt.env())
        assert result.code == 1
        assert f"HTTP {status}" in result.err
        assert words in result.err


async def test_status_names_what_works_and_the_fix_for_what_does_not(
    trakt: TraktStandIn, mal: Mal, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    stored(mal, config)  # mal: works
    mal_text = config.read_text()
    stored_trakt(trakt, config, created_at=int(time.time()) - 2 * 86400)  # trakt: expired a day ago
    config.write_text(mal_text + config.read_text().split("\n", 2)[2])
    env = {**mal.env(), **trakt.env()}
    result = await run_here("status", "-c", str(config), env=env)
    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[0].startswith("mal: works: kometa_fan")
    assert lines[1].startswith("trakt: does not work: the access token expired")
    assert "Fix: `malcapture trakt refresh`" in lines[1]
    result = await run_here("trakt", "refresh", "-c", str(config), env=env)
    assert result.code == 0, result.err
    result = await run_here("status", "-c", str(config), env=env)
    assert result.code == 0, result.err
    assert result.err.splitlines()[1].startswith("trakt: works: kometa_fan")


async def test_the_code_can_be_approved_on_the_stand_ins_page(trakt: TraktStandIn, tmp_path: Path) -> None:
    """What the demo's user does on a desktop: type the code on the activate page and approve."""
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    pages: list[asyncio.Task[str]] = []

    async def approve(code: str) -> str:
        async with aiohttp.ClientSession() as session:
            query = {"user_code": code.lower(), "choice": "allow"}
            async with session.get(f"{trakt.base}/activate/decide", params=query) as response:
                return await response.text()

    result = await device_login(trakt, config, lambda code: pages.append(asyncio.ensure_future(approve(code))))
    assert result.code == 0, result.err
    assert "approved" in await pages[0]


async def test_status_without_a_trakt_client_id_says_what_to_fill_in(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    stored_trakt(trakt, config)
    config.write_text(config.read_text().replace(f"client_id: {trakt.app.client_id}", "client_id:"))
    result = await run_here("status", "-c", str(config), env=trakt.env())
    assert result.code == 1
    assert "trakt: not checked: no trakt.client_id. Fix: fill it in from https://developer.trakt.tv" in result.err


async def test_pin_and_a_redirect_url_together_are_refused_before_anything_starts(
    trakt: TraktStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    args = ("trakt", "--pin", "--redirect-uri", "http://localhost:8765/", *trakt.args(config))
    result = await run_here(*args, env=trakt.env())
    assert result.code == 2
    assert "use either --pin or --redirect-uri, not both" in result.err
    assert trakt.fake.hits == {}
    assert config.read_text() == EMPTY
