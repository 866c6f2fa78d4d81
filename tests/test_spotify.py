"""Spotify (services/spotify.py): the loopback login to 127.0.0.1 through the real command, its slips
refused before anything is spent, refresh, check and status, against its stand-in."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from ruamel.yaml import YAML

from malcapture.login.contract import Credentials
from malcapture.services import SPOTIFY
from malcapture.services.spotify import SCOPES
from malcapture.standins.base import Scripted
from malcapture.standins.spotify import FakeSpotify, SpotifyApp, env_for, serve
from tests.helpers import (
    CHROMIUM_FLAGS,
    Running,
    address_after_allow,
    copy_alone,
    dumped_page,
    executable,
    free_port,
    port_is_free,
    run_cli,
    run_here,
    save,
    spawn_cli,
    squatter,
    without_our_values,
)

SAID: dict[int, str] = {}  # what each login said up to its authorize URL, by pid
TOKEN_KEYS = ("access_token", "token_type", "expires_in", "refresh_token", "scope", "expires_at")


SpotifyStandIn = Running[FakeSpotify, SpotifyApp]


@pytest.fixture
async def spotify() -> AsyncIterator[SpotifyStandIn]:
    fake = FakeSpotify()
    runner, base = await serve(fake)
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    try:
        yield Running(fake, base, fake.register(redirect), env_for(base), redirect=redirect, port=port)
    finally:
        await runner.cleanup()


def write_config(
    spotify: SpotifyStandIn, folder: Path, redirect: str | None = None, tokens: dict[str, object] | None = None
) -> Path:
    """A config whose spotify: section holds this app (and `tokens`), beside a mal: section left alone."""
    path = folder / "config.yml"
    auth = "".join(f"    {key}: {json.dumps(value)}\n" for key, value in (tokens or {}).items())
    path.write_text(
        "mal:\n  client_id: keep-me   # a comment\nspotify:\n"
        f"  client_id: {spotify.app.client_id}\n  client_secret: {spotify.app.secret}\n"
        f"  redirect_uri: {redirect if redirect is not None else spotify.redirect}\n"
        + (f"  authorization:\n{auth}" if auth else "  authorization: {}\n")
    )
    return path


def stored_tokens(
    spotify: SpotifyStandIn, folder: Path, scope: str = " ".join(SCOPES)
) -> tuple[Path, dict[str, str | int]]:
    """A config holding tokens the stand-in issued, and those tokens."""
    tokens = spotify.fake.issue_tokens(spotify.app.client_id, scope)
    tokens["expires_at"] = int(spotify.fake.clock()) + int(tokens["expires_in"])
    return write_config(spotify, folder, tokens=dict(tokens)), tokens


def section(config: Path) -> dict[str, object]:
    data: dict[str, object] = YAML(typ="safe").load(config.read_text())["spotify"]
    return data


async def start_waiting(spotify: SpotifyStandIn, config: Path, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    """A login started with stdin to type into, read up to the authorize URL; returns the process and the URL
    (what it said before the URL is in `said`, the process's attribute)."""
    process = await spawn_cli("spotify", "-c", str(config), *extra, env=spotify.env(), stdin=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    head = ""
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        head += line
        assert line, head
        if line.startswith(f"{spotify.base}/authorize?"):
            SAID[process.pid] = head
            return process, line.strip()


async def test_a_desktop_login_catches_the_redirect_and_writes_what_kometa_writes(
    spotify: SpotifyStandIn, tmp_path: Path, scripted_browser: object
) -> None:
    config = write_config(spotify, tmp_path)
    before = config.read_bytes()
    browser = scripted_browser()  # type: ignore[operator]
    env = spotify.env(BROWSER=str(browser), DISPLAY=":99")
    result = await run_cli("spotify", "-c", str(config), env=env)
    assert result.code == 0, result.err
    assert "Authorized as Kometa Listener" in result.err
    auth = section(config)["authorization"]
    assert isinstance(auth, dict)
    assert tuple(auth) == TOKEN_KEYS  # the answer's keys in the answer's order, then expires_at
    assert auth["access_token"] in spotify.fake.access_tokens
    assert auth["scope"] == " ".join(SCOPES)
    assert abs(int(auth["expires_at"]) - (int(spotify.fake.clock()) + 3600)) <= 60
    form = spotify.fake.last_token_form
    assert form["redirect_uri"] == spotify.redirect  # sent exactly, in both requests
    assert "client_secret" not in form  # the Basic header carries it
    assert "code_verifier" in form
    assert without_our_values(config.read_bytes(), ("authorization",)) == without_our_values(before, ("authorization",))
    assert port_is_free(spotify.port)


async def test_the_authorize_request_is_kometas_with_state_and_s256(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    from urllib.parse import parse_qs, urlsplit

    process, url = await start_waiting(spotify, write_config(spotify, tmp_path), "--manual")
    process.kill()
    await process.communicate()
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    assert query["redirect_uri"] == spotify.redirect
    assert query["scope"].split() == list(SCOPES)
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 22
    assert query["response_type"] == "code"


@pytest.mark.chromium
async def test_real_chromium_follows_the_redirect_to_127_0_0_1(
    spotify: SpotifyStandIn, tmp_path: Path, chromium: str
) -> None:
    config = write_config(spotify, tmp_path)
    dom = tmp_path / "dom.html"
    launcher = executable(
        tmp_path / "chromium-headless",
        f'#!/bin/sh\nexec {chromium} {CHROMIUM_FLAGS} --user-data-dir="{tmp_path}/profile" --dump-dom "$1" '
        f'>"{dom}" 2>"{tmp_path}/chromium.log"\n',
    )
    spotify.fake.consent = "allow"  # headless Chromium cannot click: the consent answers at once
    env = spotify.env(BROWSER=str(launcher), DISPLAY=":99", HOME=str(tmp_path))
    result = await run_cli("spotify", "-c", str(config), "--timeout", "60", env=env, timeout=90)
    assert result.code == 0, result.err
    auth = section(config)["authorization"]
    assert isinstance(auth, dict)
    assert auth["access_token"] in spotify.fake.access_tokens
    page = await dumped_page(dom)
    assert "Authorized as <b>Kometa Listener</b>" in page
    assert str(config) in page


async def test_denial_exits_4_and_changes_nothing(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    config = write_config(spotify, tmp_path)
    before = config.read_bytes()
    process, url = await start_waiting(spotify, config, "--no-browser", "--timeout", "30")
    async with aiohttp.ClientSession() as session:
        spotify.fake.consent = "deny"
        async with session.get(url) as page:  # the browser follows to our server, which says what happened
            shown = await page.text()
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 4, err.decode()
    assert "Access was denied on Spotify" in err.decode()
    assert "Spotify" in shown
    assert config.read_bytes() == before


@pytest.mark.parametrize(
    ("redirect", "words"),
    [
        ("http://localhost:8888/callback", "Spotify refuses `localhost`"),
        ("http://[::1]:8888/callback", "not [::1]"),
    ],
)
async def test_a_redirect_spotify_or_kometa_refuses_is_refused_before_the_browser(
    spotify: SpotifyStandIn, tmp_path: Path, redirect: str, words: str
) -> None:
    config = write_config(spotify, tmp_path, redirect=redirect)
    before = config.read_bytes()
    result = await run_here("spotify", "-c", str(config), env=spotify.env())
    assert result.code == 2
    assert words in result.err
    assert "Register http://127.0.0.1:8888/callback" in result.err
    assert "spotify.redirect_uri" in result.err
    assert spotify.fake.hits["/authorize"] == 0
    assert config.read_bytes() == before


async def test_no_redirect_uri_offers_one_to_register(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    config = write_config(spotify, tmp_path, redirect="")
    before = config.read_bytes()
    result = await run_here("spotify", "-c", str(config), env=spotify.env())
    assert result.code == 2
    assert "No redirect URL: spotify.redirect_uri is blank" in result.err
    assert "Register http://127.0.0.1:" in result.err
    assert "/callback" in result.err
    assert config.read_bytes() == before


async def test_redirect_uri_option_fills_a_blank_one_and_a_new_section_has_kometas_keys(
    spotify: SpotifyStandIn, tmp_path: Path, scripted_browser: object
) -> None:
    config = tmp_path / "config.yml"
    config.write_text("settings:\n  cache: true\n")
    browser = scripted_browser()  # type: ignore[operator]
    env = spotify.env(BROWSER=str(browser), DISPLAY=":99")
    args = ["--client-id", spotify.app.client_id, "--client-secret", spotify.app.secret]
    result = await run_cli("spotify", "-c", str(config), *args, "--redirect-uri", spotify.redirect, env=env)
    assert result.code == 0, result.err
    found = section(config)
    assert list(found) == ["client_id", "client_secret", "redirect_uri", "authorization"]
    assert found["redirect_uri"] == spotify.redirect
    assert config.read_text().startswith("settings:\n  cache: true\n")


async def test_a_busy_port_names_the_server_and_the_paste_finishes(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    config = write_config(spotify, tmp_path)
    runner = await squatter("127.0.0.1", spotify.port)
    try:
        process, url = await start_waiting(spotify, config, "--no-browser", "--timeout", "30")
        pasted = await address_after_allow(url)
        _, err = await asyncio.wait_for(process.communicate(pasted.encode() + b"\n"), 30)
    finally:
        await runner.cleanup()
    text = SAID[process.pid] + err.decode()
    assert process.returncode == 0, text
    assert "nginx/1.22.1" in text
    assert re.search(r"http://127\.0\.0\.1:(\d+)/callback \(port \1 is free here", text)  # one Spotify takes
    assert "Authorized as Kometa Listener" in text


async def test_manual_reads_the_pasted_address(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    config = write_config(spotify, tmp_path)
    process, url = await start_waiting(spotify, config, "--manual", "--timeout", "30")
    pasted = await address_after_allow(url)
    _, err = await asyncio.wait_for(process.communicate(f"garbage\n{pasted}\n".encode()), 30)
    assert process.returncode == 0, err.decode()
    assert "not a redirect URL or a code" in err.decode()
    assert section(config)["authorization"]["access_token"] in spotify.fake.access_tokens  # type: ignore[index]


async def test_an_https_redirect_is_caught_by_paste(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    redirect = "https://kometa.example.com/callback"
    spotify.app.redirect_uris.append(redirect)
    config = write_config(spotify, tmp_path, redirect=redirect)
    process, url = await start_waiting(spotify, config, "--timeout", "30")
    pasted = await address_after_allow(url)
    assert pasted.startswith(redirect)
    _, err = await asyncio.wait_for(process.communicate(pasted.encode() + b"\n"), 30)
    assert process.returncode == 0, err.decode()
    assert "https://, which malcapture's plain server" in SAID[process.pid]


@pytest.mark.parametrize("rotate", [False, True], ids=["kept", "rotated"])
async def test_refresh_keeps_or_replaces_the_refresh_token(
    spotify: SpotifyStandIn, tmp_path: Path, rotate: bool
) -> None:
    config, old = stored_tokens(spotify, tmp_path)
    spotify.fake.rotate = rotate
    result = await run_cli("spotify", "refresh", "-c", str(config), env=spotify.env())
    assert result.code == 0, result.err
    assert "Refreshed" in result.err
    auth = section(config)["authorization"]
    assert isinstance(auth, dict)
    assert tuple(auth) == TOKEN_KEYS
    assert auth["access_token"] != old["access_token"]
    assert (auth["refresh_token"] != old["refresh_token"]) is rotate
    assert auth["refresh_token"] in spotify.fake.refresh_tokens


async def test_refresh_if_expiring_within(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    config, _ = stored_tokens(spotify, tmp_path)  # an hour left
    before = config.read_bytes()
    skip = await run_here("spotify", "refresh", "-c", str(config), "--if-expiring-within", "30m", env=spotify.env())
    assert skip.code == 0
    assert "No refresh needed" in skip.err
    assert config.read_bytes() == before
    due = await run_here("spotify", "refresh", "-c", str(config), "--if-expiring-within", "2h", env=spotify.env())
    assert due.code == 0, due.err
    assert config.read_bytes() != before


async def test_a_revoked_refresh_token_says_authorize_again(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    config, _ = stored_tokens(spotify, tmp_path)
    spotify.fake.refresh_tokens.clear()
    before = config.read_bytes()
    result = await run_here("spotify", "refresh", "-c", str(config), env=spotify.env())
    assert result.code == 1
    assert "HTTP 400 invalid_grant" in result.err
    assert "malcapture spotify` to authorize again" in result.err
    assert config.read_bytes() == before


async def test_check_names_the_user_the_expiry_and_the_scopes(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    config, _ = stored_tokens(spotify, tmp_path)
    result = await run_here("spotify", "check", "-c", str(config), "--json", env=spotify.env())
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["service"] == "spotify"
    assert found["account"] == "Kometa Listener"
    assert found["works"] is True
    assert found["expires_at"].endswith("Z")


async def test_check_with_a_missing_scope_says_kometa_would_ask_again(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    config, _ = stored_tokens(spotify, tmp_path, scope="user-library-read")
    result = await run_here("spotify", "check", "-c", str(config), env=spotify.env())
    assert result.code == 1
    assert "lacks the scopes playlist-read-private" in result.err
    assert "Run `malcapture spotify`" in result.err


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (401, '{"error": {"status": 401, "message": "Invalid access token"}}', "malcapture spotify refresh"),
        (403, '{"error": {"status": 403, "message": "the user may not be registered"}}', "User Management"),
        (429, "", "wait 7 seconds"),
    ],
)
async def test_the_accounts_failures_are_put_in_plain_words(
    spotify: SpotifyStandIn, tmp_path: Path, status: int, body: str, words: str
) -> None:
    config, _ = stored_tokens(spotify, tmp_path)
    spotify.fake.script("/v1/me", Scripted(status, body, headers={"Retry-After": "7"} if status == 429 else {}))
    result = await run_here("spotify", "check", "-c", str(config), env=spotify.env())
    assert result.code == 1
    assert f"HTTP {status}" in result.err
    assert words in result.err


async def test_a_user_outside_the_allowlist_gets_the_tokens_printed_not_saved(
    spotify: SpotifyStandIn, tmp_path: Path
) -> None:
    spotify.app.allowlist = {"somebody_else"}
    config = write_config(spotify, tmp_path)
    before = config.read_bytes()
    process, url = await start_waiting(spotify, config, "--manual", "--timeout", "30")
    pasted = await address_after_allow(url)
    out, err = await asyncio.wait_for(process.communicate(pasted.encode() + b"\n"), 30)
    assert process.returncode == 1, err.decode()
    assert "User Management" in err.decode()
    assert "access_token" in out.decode()  # issued tokens are never dropped
    assert config.read_bytes() == before


async def test_a_wrong_secret_is_found_by_check(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    config, _ = stored_tokens(spotify, tmp_path)
    wrong = config.read_text().replace(spotify.app.secret, "0" * 32)
    config.write_text(wrong)
    result = await run_here("spotify", "check", "-c", str(config), env=spotify.env())
    assert result.code == 1
    assert "invalid_client" in result.err
    assert "developer.spotify.com/dashboard" in result.err


async def test_status_has_a_spotify_line(spotify: SpotifyStandIn, tmp_path: Path) -> None:
    config, _ = stored_tokens(spotify, tmp_path)
    config.write_text(config.read_text().replace("mal:\n  client_id: keep-me   # a comment\n", ""))
    result = await run_here("status", "-c", str(config), "--json", env=spotify.env())
    assert result.code == 0, result.err
    assert [line["service"] for line in json.loads(result.out)] == ["spotify"]


def test_every_real_config_with_a_spotify_section_changes_in_nothing_else(tmp_path: Path, working_config: Path) -> None:
    """Each real config Kometa can read, with Kometa's documented spotify: section appended in its own line
    endings, saved as a login saves: the bytes before the section and its other keys stay."""
    creds = Credentials("0123456789abcdef0123456789abcdef", "f" * 32)
    tokens = SPOTIFY.code.stand_in()
    source = working_config
    config = copy_alone(source, tmp_path)
    raw = config.read_bytes()
    newline = b"\r\n" if b"\r\n" in raw else b"\n"
    head = raw + (b"" if raw.endswith((b"\n", b"\r")) else newline)
    block = (
        f"spotify:\n  client_id: {creds.client_id}\n  client_secret: {creds.client_secret}   # kept\n"
        "  redirect_uri: http://127.0.0.1:8888/callback\n  authorization: {}\n"
    ).encode()
    config.write_bytes(head + block.replace(b"\n", newline))
    save(config, tokens, creds, SPOTIFY)
    after = config.read_bytes()
    assert after.startswith(head + block.split(b"  authorization:")[0].replace(b"\n", newline)), source.name
    found = YAML(typ="safe").load(after.decode("utf-8-sig"))["spotify"]["authorization"]
    assert found == tokens.as_mapping(), source.name
    assert tuple(found) == TOKEN_KEYS, source.name
