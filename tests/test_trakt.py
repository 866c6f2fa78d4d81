"""Trakt (services/trakt/): the device flow, the PIN, the loopback capture, refresh, check and status,
against its stand-in on loopback. The device flow's polling runs on a FakeClock shared with the stand-in:
its intervals and expiry pass at once."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from ruamel.yaml import YAML

from malcapture.errors import AccessDenied, ConfigError, TimedOut
from malcapture.login.contract import Credentials, LoginOptions, LoginResult
from malcapture.standins.base import Code
from malcapture.standins.trakt import OOB
from malcapture.tokens import TokenSet
from tests.helpers import (
    TRAKT,
    FakeClock,
    MalStandIn,
    Recorder,
    TraktStandIn,
    copy_alone,
    quiet_io,
    run_cli,
    run_here,
    run_without_privileges,
    save,
    shared_data,
    spawn_cli,
    stored,
    stored_trakt,
    without_our_values,
)

KOMETA_ORDER = ["access_token", "token_type", "expires_in", "refresh_token", "scope", "created_at"]
EMPTY = (
    "settings:\n  cache: true\ntrakt:\n  client_id:\n  client_secret:\n  pin:\n  authorization:\n    access_token:\n"
)


def trakt_section(config: Path) -> dict[str, object]:
    section: dict[str, object] = YAML(typ="safe").load(config.read_text())["trakt"]
    return section


async def device_login(
    trakt: TraktStandIn,
    config: Path,
    no_input: int,
    decide: Callable[[str], None] | None = None,
    polls: int = 2,
    **options: object,
) -> tuple[LoginResult, Recorder]:
    """The device flow in this event loop, on a FakeClock the stand-in shares: the user enters the
    code once `polls` polls were answered pending, and `decide`s (approves, by default)."""
    clock = FakeClock()
    trakt.fake.clock = clock.wall
    io, said = quiet_io(trakt.env(), no_input, clock)
    opts = LoginOptions(config, TRAKT, trakt.app.client_id, trakt.app.secret, **options)  # type: ignore[arg-type]
    login = asyncio.ensure_future(TRAKT.code.login_async(opts, io))
    polled = asyncio.ensure_future(trakt.fake.requested("/oauth/device/token", polls))
    try:
        await asyncio.wait({login, polled}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if decide is not None and not login.done():
            decide(next(device.user_code for device in trakt.fake.devices.values()))
        return await asyncio.wait_for(login, 30), said
    finally:
        login.cancel()
        polled.cancel()


async def test_the_device_flow_saves_after_a_few_pending_polls(
    trakt: TraktStandIn, tmp_path: Path, no_input: int
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    result, said = await device_login(trakt, config, no_input, trakt.fake.decide)
    assert result.account is not None
    assert result.account.name == "kometa_fan"
    assert said.lines[1] == f"{trakt.base}/activate"  # the URL and the code, each whole on its own line
    assert re.fullmatch(r"[0-9A-F]{8}", said.lines[2])
    assert "valid until" in said.text
    section = trakt_section(config)
    auth = section["authorization"]
    assert isinstance(auth, dict)
    assert list(auth) == KOMETA_ORDER
    assert auth["expires_in"] == 86400
    assert auth["refresh_token"] in trakt.fake.refresh_tokens
    assert section["client_id"] == trakt.app.client_id
    assert config.read_text().startswith("settings:\n  cache: true\ntrakt:\n")
    assert trakt.fake.hits["/oauth/device/token"] >= 3


async def test_the_device_flow_through_the_real_command(trakt: TraktStandIn, tmp_path: Path) -> None:
    """As a user runs it: the page and the code on lines of their own, approved, saved (one real poll interval)."""
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    process = await spawn_cli("trakt", *trakt.args(config), env=trakt.env())
    assert process.stderr is not None
    shown = ""
    while "Waiting for your approval" not in shown:
        shown += (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
    trakt.fake.decide(shown.splitlines()[2])
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, shown + err.decode()
    assert f"Authorized as kometa_fan — saved to {config}." in err.decode()


async def test_a_denied_code_ends_the_login_and_changes_nothing(
    trakt: TraktStandIn, tmp_path: Path, no_input: int
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    with pytest.raises(AccessDenied, match="denied") as denied:
        await device_login(trakt, config, no_input, lambda code: trakt.fake.decide(code, "deny"))
    assert denied.value.exit_code == 4
    assert config.read_text() == EMPTY


async def test_an_expired_code_ends_the_login_and_changes_nothing(
    trakt: TraktStandIn, tmp_path: Path, no_input: int
) -> None:
    trakt.fake.device_lifetime = 5
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    with pytest.raises(TimedOut, match="expired") as expired:
        await device_login(trakt, config, no_input)
    assert expired.value.exit_code == 5
    assert config.read_text() == EMPTY


async def test_a_429_slows_the_polling_down(trakt: TraktStandIn, tmp_path: Path, no_input: int) -> None:
    trakt.fake.enforced_interval = 2  # stricter than the 1 second it announces
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    result, said = await device_login(trakt, config, no_input, trakt.fake.decide, polls=3)
    assert result.saved_to is not None
    assert trakt.fake.slowed >= 1
    assert "poll more slowly: every 2 seconds" in said.text


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


@pytest.mark.parametrize("pin", ["01234567", "1234E567"])  # YAML reads these as 1234567 and infinity
async def test_a_pin_that_yaml_reads_as_a_number_is_used_as_written(
    trakt: TraktStandIn, tmp_path: Path, pin: str
) -> None:
    trakt.fake.codes[pin] = Code(trakt.app.client_id, OOB, trakt.fake.clock() + 600)
    config = tmp_path / "config.yml"
    config.write_text(EMPTY.replace("  pin:\n", f"  pin: {pin}\n"))
    result = await run_here("trakt", "--pin", *trakt.args(config), env=trakt.env())
    assert result.code == 0, result.err
    assert trakt.fake.last_token_body["code"] == pin
    assert trakt_section(config)["pin"] is None


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
    from tests.helpers import free_port

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
    result = await run_here("trakt", "refresh", "-c", str(config), env=trakt.env())
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
    assert "Trakt accepts the stored token: it belongs to kometa_fan." in result.out  # the summary: stdout
    assert "(in 23 hours)" in result.out
    for status, words in ((410, "deactivated"), (423, "locked")):
        trakt.fake.account = status
        result = await run_here("trakt", "check", "-c", str(config), env=trakt.env())
        assert result.code == 1
        assert f"HTTP {status}" in result.err
        assert words in result.err


async def test_status_names_what_works_and_the_fix_for_what_does_not(
    trakt: TraktStandIn, mal: MalStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    stored(mal, config)  # mal: works
    mal_text = config.read_text()
    stored_trakt(trakt, config, created_at=int(time.time()) - 2 * 86400)  # trakt: expired a day ago
    config.write_text(mal_text + config.read_text().split("\n", 2)[2])
    env = {**mal.env(), **trakt.env()}
    result = await run_here("status", "-c", str(config), env=env)
    assert result.code == 1
    lines = result.out.splitlines()  # the summary is the command's output
    assert lines[0] == f"{config}:"  # which config it read
    assert lines[1].startswith("mal: works: kometa_fan")
    assert lines[2].startswith("trakt: does not work: the access token expired")
    assert "Fix: The access token was refused: run `malcapture trakt refresh`" in lines[2]
    result = await run_here("trakt", "refresh", "-c", str(config), env=env)
    assert result.code == 0, result.err
    result = await run_here("status", "-c", str(config), env=env)
    assert result.code == 0, result.err
    assert result.out.splitlines()[2].startswith("trakt: works: kometa_fan")


async def test_the_code_can_be_approved_on_the_stand_ins_page(
    trakt: TraktStandIn, tmp_path: Path, no_input: int
) -> None:
    """What the demo's user does on a desktop: type the code on the activate page and approve."""
    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    pages: list[asyncio.Task[str]] = []

    async def approve(code: str) -> str:
        async with aiohttp.ClientSession() as session:
            query = {"user_code": code.lower(), "choice": "allow"}
            async with session.get(f"{trakt.base}/activate/decide", params=query) as response:
                return await response.text()

    result, _ = await device_login(
        trakt, config, no_input, lambda code: pages.append(asyncio.ensure_future(approve(code)))
    )
    assert result.saved_to is not None
    assert "approved" in await pages[0]


async def test_status_without_a_trakt_client_id_says_what_to_fill_in(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    stored_trakt(trakt, config)
    config.write_text(config.read_text().replace(f"client_id: {trakt.app.client_id}", "client_id:"))
    result = await run_here("status", "-c", str(config), env=trakt.env())
    assert result.code == 1
    assert "trakt: not checked: No Trakt client ID in trakt.client_id" in result.out
    assert "Fix: Fill it in from https://developer.trakt.tv" in result.out


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


TRAKT_TOKENS = TokenSet(
    dict(zip(KOMETA_ORDER, ("a" * 64, "bearer", 86400, "b" * 64, "public", 1_764_000_000), strict=True))
)
TRAKT_CREDS = Credentials("c" * 64, "d" * 64)
TRAKT_KEYS = ("client_id", "client_secret", "pin", *KOMETA_ORDER)
PLACEHOLDER = re.compile(r"<<([^<>\s]+)>>")


def dotenv_for(text: str, section: str) -> str:
    """A .env that defines every placeholder of `section` (as the user who wrote them keeps one)."""
    found = re.search(rf"(?ms)^{section}:.*?(?=^\S|\Z)", text)
    names = PLACEHOLDER.findall(found.group(0)) if found else []
    return "".join(f"KOMETA_{name.upper().replace('-', '_')}=old\n" for name in names)


def test_every_real_config_keeps_every_byte_outside_the_trakt_values(working_config: Path, tmp_path: Path) -> None:
    source = working_config
    target = copy_alone(source, tmp_path)
    folder = target.parent
    dotenv = dotenv_for(source.read_text("utf-8-sig"), "trakt")
    (folder / ".env").write_text(dotenv)
    if source.name == "03-ladywhiskers-crlf.yml":  # its trakt values were redacted as `[REDACTED]`: lists
        with pytest.raises(ConfigError, match=r"trakt.client_id in the config \(line \d+\) holds a list"):
            save(target, TRAKT_TOKENS, TRAKT_CREDS, TRAKT)
        assert target.read_bytes() == source.read_bytes()
        return
    save(target, TRAKT_TOKENS, TRAKT_CREDS, TRAKT)
    assert_only_trakt_values_changed(source.read_bytes(), target.read_bytes())
    original = shared_data(source)
    rest = YAML(typ="safe").load(target.read_bytes().decode("utf-8-sig"))
    before = (original.get("trakt") or {}).get("authorization") or {}
    kept = {k: v for k, v in before.items() if PLACEHOLDER.fullmatch(str(v))}  # <<placeholders>> stay…
    assert rest["trakt"]["authorization"] == {**before, **TRAKT_TOKENS.as_mapping(), **kept}, source.name
    for key, placeholder in kept.items():  # …and their .env lines get the new values
        name = PLACEHOLDER.fullmatch(str(placeholder)).group(1).upper()  # type: ignore[union-attr]
        assert f"KOMETA_{name}={TRAKT_TOKENS.values[key]}\n" in (folder / ".env").read_text(), source.name
    assert {k: v for k, v in rest.items() if k != "trakt"} == {k: v for k, v in original.items() if k != "trakt"}


def assert_only_trakt_values_changed(before: bytes, after: bytes) -> None:
    old, new = without_our_values(before, TRAKT_KEYS), without_our_values(after, TRAKT_KEYS)
    added = list(new)
    for line in old:
        assert line in added, f"a line was lost or changed: {line!r}"
        del added[: added.index(line) + 1]
    inserted = [line for line in new if line not in old]
    allowed = "|".join(("trakt", "authorization", *TRAKT_KEYS))
    assert all(re.match(rf"^\s*({allowed}):\r?$", line) for line in inserted), inserted


def test_the_trakt_section_of_our_own_fixture_changes_only_its_values(tmp_path: Path) -> None:
    text = (
        "mal:\n  client_id: abc   # mine\n"
        'trakt:\n  client_id:\n  client_secret: ""\n  pin: 0A1B2C3D    # single use\n  force_refresh: false\n'
        "  authorization:\n    access_token:\n    token_type:\n    expires_in:\n    refresh_token:\n"
        "    scope:\n    created_at:\n# the end\n"
    )
    path = tmp_path / "config.yml"
    path.write_text(text)
    saved = save(path, TRAKT_TOKENS, TRAKT_CREDS, TRAKT)
    after = path.read_text()
    assert after.startswith("mal:\n  client_id: abc   # mine\ntrakt:\n")
    assert "  pin:    # single use\n" in after
    assert "  force_refresh: false\n" in after
    assert after.endswith("    created_at: 1764000000\n# the end\n")
    assert_only_trakt_values_changed(text.encode(), after.encode())
    assert any("Emptied trakt.pin" in line for line in saved.changes)


# Words that used to be MyAnimeList's in a Trakt login: each now names the service it is about.
async def test_the_print_page_of_a_trakt_loopback_login_names_the_trakt_section(
    trakt: TraktStandIn, tmp_path: Path
) -> None:
    from tests.helpers import free_port

    port = free_port()
    redirect = f"http://localhost:{port}/callback"
    app = trakt.fake.register(redirect)
    config = tmp_path / "config.yml"
    args = ["-c", str(config), "--client-id", app.client_id, "--client-secret", app.secret, "--redirect-uri", redirect]
    process = await spawn_cli("trakt", *args, "--print", "--no-browser", env=trakt.env(), stdin=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    try:
        url = ""
        while not url:
            line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode().strip()
            url = line if line.startswith(f"{trakt.base}/oauth/authorize?") else ""
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            page = await response.text()
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "The <code>trakt:</code> block is in your terminal." in page
    assert "mal:" not in page
    assert out.decode().startswith("trakt:\n")


def test_the_advice_for_a_read_only_config_names_no_other_section(trakt: TraktStandIn, tmp_path: Path) -> None:
    import sys

    config = tmp_path / "config.yml"
    config.write_text(EMPTY)
    config.chmod(0o444)
    command = [sys.executable, "-m", "malcapture", "trakt", *trakt.args(config)]
    result = run_without_privileges(*command)  # as root without capabilities: 0444 then binds root too
    if result is None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)  # an ordinary user
    assert result.returncode == 3, result.stderr
    assert "--print to get the section" in result.stderr
    assert "mal:" not in result.stderr


async def test_a_rescued_trakt_answer_is_headed_as_trakts(trakt: TraktStandIn, tmp_path: Path) -> None:
    import json

    from malcapture.standins.base import Scripted

    config = tmp_path / "config.yml"
    stored_trakt(trakt, config)
    answer = trakt.fake.issue_tokens(trakt.app.client_id)
    trakt.fake.script("/oauth/token", Scripted(200, json.dumps(answer).replace('"public"', '"pub\\ud800"')))
    result = await run_cli("trakt", "refresh", "-c", str(config), env=trakt.env())
    assert result.code == 1, result.err
    (kept,) = tmp_path.glob("malcapture-tokens-*.yml")
    assert kept.read_text().startswith("# Trakt's answer, with its broken characters escaped\n")
    assert str(answer["refresh_token"]) in kept.read_text()
    assert "MyAnimeList" not in kept.read_text() + result.err
