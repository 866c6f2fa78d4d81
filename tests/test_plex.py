"""Plex (services/plex/): the PIN sign-in (a desktop's browser coming back, or a code at plex.tv/link),
the checks against plex.tv and the user's server, the UUID file, what is written, `plex check` and status.

Logins in the test's own event loop run on a FakeClock the stand-in shares: the PIN's lifetime and the
polls' second pass at once. The real command runs where the terminal, a browser or standard input matter.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from ruamel.yaml import YAML

from malcapture.errors import TimedOut, UsageError
from malcapture.login.contract import LoginResult
from tests.helpers import (
    CHROMIUM_FLAGS,
    PLEX,
    PlexStandIn,
    Recorder,
    copy_alone,
    dumped_page,
    executable,
    plex_link_login,
    run_cli,
    run_here,
    save,
    shared_data,
    spawn_cli,
    without_our_values,
)
from tests.terminal import Terminal

CONFIG = "settings:\n  cache: true\nplex:                 # the server\n  url:\n  token:\n  timeout: 60\n"
UUID = "7e5b4a0c-1f2d-4c3b-9a8e-0d1c2b3a4f5e"


def plex_section(config: Path) -> dict[str, object]:
    section: dict[str, object] = YAML(typ="safe").load(config.read_text())["plex"]
    return section


async def link_login(
    plex: PlexStandIn, config: Path, no_input: int, sign_in: bool = True, **options: object
) -> tuple[LoginResult, Recorder]:
    """`malcapture plex --link` in this event loop, with --url set to the stand-in's server unless told."""
    options.setdefault("url", plex.app.url)
    return await plex_link_login(plex, config, no_input, sign_in, options=options)


async def test_the_link_code_signs_in_checks_and_saves(plex: PlexStandIn, tmp_path: Path, no_input: int) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    result, said = await link_login(plex, config, no_input)
    assert result.account is not None
    assert result.account.name == "kometa_fan"
    assert result.account.notes == ()  # the server took it, and allows sync
    page = said.lines.index(f"{plex.base}/link")  # the page and the code, each whole on its own line
    assert re.fullmatch(r"[A-Z0-9]{4}", said.lines[page + 1])
    section = plex_section(config)
    assert section["token"] in plex.fake.tokens
    assert section["url"] == plex.app.url  # --url filled the blank plex.url
    after = config.read_text()
    assert after.startswith("settings:\n  cache: true\nplex:                 # the server\n")
    assert after.endswith("  timeout: 60\n")


async def test_the_link_code_through_the_real_command_with_standard_input_closed(
    plex: PlexStandIn, tmp_path: Path
) -> None:
    """Headless (no display), as `docker run` without -it: the code on its own line; nothing to paste."""
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    process = await spawn_cli("plex", *plex.args(config, "--url", plex.app.url), env=plex.env())
    assert process.stderr is not None
    try:
        shown = ""
        while "Waiting for your approval" not in shown:
            shown += (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        lines = shown.splitlines()
        code = lines[lines.index(f"{plex.base}/link") + 1]
        plex.fake.sign_in(code)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, shown + err.decode()
    assert f"Signed in as kometa_fan — saved to {config}." in err.decode()
    assert plex_section(config)["token"] in plex.fake.tokens


async def test_a_pin_that_expires_ends_the_login_and_changes_nothing(
    plex: PlexStandIn, tmp_path: Path, no_input: int
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    with pytest.raises(TimedOut, match="expired") as expired:
        await link_login(plex, config, no_input, sign_in=False)
    assert expired.value.exit_code == 5
    assert "malcapture plex" in expired.value.advice
    assert config.read_text() == CONFIG


async def test_a_server_that_refuses_the_token_keeps_it_out_of_the_config(plex: PlexStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    plex.app.refused.update(plex.fake.tokens)  # it refuses every token plex.tv makes, this one too
    original = plex.fake.sign_in

    def refused_sign_in(code: str, user: str | None = None) -> str:
        token = original(code, user)
        plex.app.refused.add(token)
        return token

    plex.fake.sign_in = refused_sign_in  # type: ignore[method-assign]
    process = await spawn_cli("plex", *plex.args(config, "--url", plex.app.url), env=plex.env())
    assert process.stderr is not None
    try:
        shown = ""
        while "Waiting for your approval" not in shown:
            shown += (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        lines = shown.splitlines()
        plex.fake.sign_in(lines[lines.index(f"{plex.base}/link") + 1])
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 1, err.decode()
    assert "refuses this token (HTTP 401)" in err.decode()
    assert "The config was not changed" in err.decode()
    printed = YAML(typ="safe").load(out.decode())["plex"]["token"]
    assert printed in plex.fake.tokens  # the token is the user's: on stdout
    assert config.read_text() == CONFIG


async def test_a_read_only_token_is_said_in_kometas_words(plex: PlexStandIn, tmp_path: Path, no_input: int) -> None:
    plex.app.allow_sync = "0"
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    result, _ = await link_login(plex, config, no_input)
    assert result.account is not None
    assert any("Plex Token is read only" in note for note in result.account.notes)
    assert plex_section(config)["token"] in plex.fake.tokens  # saved: the account may be the wrong one, not the token


async def test_an_unreachable_server_is_a_warning(plex: PlexStandIn, tmp_path: Path, no_input: int) -> None:
    from tests.helpers import free_port

    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    result, _ = await link_login(plex, config, no_input, url=f"http://127.0.0.1:{free_port()}")
    assert result.account is not None
    assert any("could not be reached" in note and "Kometa may run elsewhere" in note for note in result.account.notes)
    assert plex_section(config)["token"] in plex.fake.tokens


async def test_the_uuid_file_is_used_when_there_and_made_when_missing(
    plex: PlexStandIn, tmp_path: Path, no_input: int
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    (tmp_path / "UUID").write_text(f"\n{UUID}\n# Kometa's\n")
    await link_login(plex, config, no_input)
    assert {pin.client for pin in plex.fake.pins.values()} == {UUID}
    assert {pin.product for pin in plex.fake.pins.values()} == {"Kometa"}
    assert (tmp_path / "UUID").read_text() == f"\n{UUID}\n# Kometa's\n"  # never changed
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yml").write_text(CONFIG)
    _, said = await link_login(plex, other / "config.yml", no_input)
    made = (other / "UUID").read_text()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n", made)
    assert made.strip() in {pin.client for pin in plex.fake.pins.values()}
    assert f"Made {other / 'UUID'}" in said.text


async def test_a_missing_plex_section_is_appended(plex: PlexStandIn, tmp_path: Path, no_input: int) -> None:
    config = tmp_path / "config.yml"
    config.write_text("settings:\n  cache: true\n")
    await link_login(plex, config, no_input)
    after = config.read_text()
    assert after.startswith("settings:\n  cache: true\nplex:\n  url: ")
    assert list(plex_section(config)) == ["url", "token"]


async def test_a_library_gets_its_own_token(plex: PlexStandIn, tmp_path: Path, no_input: int) -> None:
    config = tmp_path / "config.yml"
    text = (
        "libraries:\n  Movies:\n    collection_files:\n    - default: basic\n  Anime:\n    plex:\n      url: X\n"
        + CONFIG
    )
    config.write_text(text.replace("url: X", f"url: {plex.app.url}"))
    await link_login(plex, config, no_input, library="Movies", url=None)
    data = YAML(typ="safe").load(config.read_text())
    assert data["libraries"]["Movies"]["plex"]["token"] in plex.fake.tokens
    assert data["plex"]["token"] is None  # the root's is left alone
    with pytest.raises(UsageError, match="has no library of that name"):
        await link_login(plex, config, no_input, library="Music")


async def test_check_and_status_say_whose_the_stored_token_is(plex: PlexStandIn, tmp_path: Path, no_input: int) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    await link_login(plex, config, no_input)
    result = await run_here("plex", "check", "-c", str(config), env=plex.env())
    assert result.code == 0, result.err
    assert "the stored Plex token does not expire" in result.out
    assert "Plex accepts the stored token: it belongs to kometa_fan." in result.out
    status = await run_here("status", "-c", str(config), env=plex.env())
    assert status.code == 0
    assert status.out.splitlines()[1] == "plex: works: kometa_fan; the access token does not expire"
    plex.fake.revoked.update(plex.fake.tokens)
    status = await run_here("status", "-c", str(config), env=plex.env())
    assert status.code == 1
    assert "plex: does not work: Plex refused the account check: HTTP 422" in status.out
    assert "Fix: Run `malcapture plex` to sign in again." in status.out


async def test_the_desktop_sign_in_with_a_real_browser(plex: PlexStandIn, tmp_path: Path, chromium: str) -> None:
    """Debian's chromium, headless: the one-time address, app.plex.tv's page reading its fragment, the
    forward back to malcapture, and the page that says it is saved."""
    plex.fake.consent = "allow"  # headless Chromium cannot click: the page signs in as it loads
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    dom = tmp_path / "dom.html"
    launcher = executable(
        tmp_path / "chromium-headless",
        f'#!/bin/sh\nexec {chromium} {CHROMIUM_FLAGS} --user-data-dir="{tmp_path}/profile" --dump-dom "$1" '
        f'>"{dom}" 2>"{tmp_path}/chromium.log"\n',
    )
    env = plex.env(BROWSER=str(launcher), DISPLAY=":99", HOME=str(tmp_path))
    result = await run_cli("plex", *plex.args(config, "--url", plex.app.url), env=env, timeout=90)
    assert result.code == 0, result.err
    assert plex_section(config)["token"] in plex.fake.tokens
    assert plex.fake.hits["/auth/sign-in"] == 1
    page = await dumped_page(dom)
    assert "Signed in as <b>kometa_fan</b>" in page
    assert str(config) in page


async def test_ctrl_c_at_a_terminal_changes_nothing_and_leaves_it_as_found(plex: PlexStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    term = Terminal()
    try:
        process = await term.malcapture("plex", *plex.args(config), env=plex.env())
        await term.expect("Waiting for your approval")
        term.type("\x03")
        assert await term.finish(process) == 130
        assert term.modes() == term.before
        assert await term.reads_a_line_typed_with_enter()
    finally:
        term.close()
    assert "Interrupted by Ctrl-C" in term.output
    assert config.read_text() == CONFIG


# The stand-in behaves as PLEX-AUTH.md says.
async def test_the_stand_in_answers_as_plex_does(plex: PlexStandIn) -> None:
    headers = {"X-Plex-Client-Identifier": UUID, "X-Plex-Product": "Kometa"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{plex.base}/api/v2/pins") as response:
            assert response.status == 400  # no client identifier or product
        async with session.post(f"{plex.base}/api/v2/pins", headers=headers) as response:
            assert response.status == 201
            assert (await response.text()).startswith("<?xml")  # XML unless asked for JSON
        json_headers = {**headers, "Accept": "application/json"}
        async with session.post(f"{plex.base}/api/v2/pins?strong=true", headers=json_headers) as response:
            pin = await response.json()
        assert len(pin["code"]) == 25
        assert pin["expiresIn"] == 1800
        assert pin["authToken"] is None
        assert set(pin) >= {"id", "code", "product", "trusted", "qr", "clientIdentifier", "location", "expiresAt"}
        other = {**json_headers, "X-Plex-Client-Identifier": "someone-else"}
        async with session.get(f"{plex.base}/api/v2/pins/{pin['id']}", headers=other) as response:
            assert response.status == 404
        async with session.get(f"{plex.app.url}/") as response:
            assert response.status == 401  # the server: no token, no answer
        token = plex.fake.sign_in(pin["code"])
        async with session.get(f"{plex.app.url}/", headers={"X-Plex-Token": token}) as response:
            assert 'allowSync="1"' in await response.text()


def test_every_real_config_changes_in_plex_token_alone(working_config: Path, tmp_path: Path) -> None:
    from malcapture.errors import ConfigError
    from malcapture.tokens import TokenSet

    tokens = TokenSet({"token": "q" * 20}, access="token", refresh=None)
    source = working_config
    target = copy_alone(source, tmp_path)
    folder = target.parent
    text = source.read_text("utf-8-sig")
    found = re.search(r"(?m)^plex:.*\n(?:[ #\t].*\n|\s*\n)*", text)
    placeholder = re.search(r"(?m)^  token: <<([^<>\s]+)>>", found.group(0)) if found else None
    if placeholder:  # the user keeps the token in .env: malcapture writes it there
        (folder / ".env").write_text(f"KOMETA_{placeholder.group(1).upper().replace('-', '_')}=old\n")
    if source.name == "03-ladywhiskers-crlf.yml":  # its token was redacted as `[REDACTED]`: a list
        with pytest.raises(ConfigError, match=r"plex.token in the config \(line \d+\) holds a list"):
            save(target, tokens, None, PLEX)
        assert target.read_bytes() == source.read_bytes()
        return
    save(target, tokens, None, PLEX)
    before, after = (
        without_our_values(source.read_bytes(), ("token",)),
        without_our_values(target.read_bytes(), ("token",)),
    )
    original = shared_data(source)
    rest = YAML(typ="safe").load(target.read_bytes().decode("utf-8-sig"))
    if placeholder:
        assert target.read_bytes() == source.read_bytes(), source.name
        assert (folder / ".env").read_text().endswith(f"={'q' * 20}\n"), source.name
        return
    if "plex" in original:
        assert before == after, source.name  # only the value of token: lines changed…
        assert rest["plex"]["token"] == "q" * 20, source.name
    else:
        assert after[: len(before) - 1] == before[:-1], source.name  # …or a plex: section was appended
    assert {k: v for k, v in rest.items() if k != "plex"} == {k: v for k, v in original.items() if k != "plex"}


async def test_there_is_no_plex_refresh() -> None:
    result = await run_here("plex", "refresh", env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.code == 2
    assert "Plex's token does not expire: there is nothing to refresh" in result.err


# The second hostile round: the UUID file, plex.tv failing, libraries without settings.
async def test_a_uuid_that_is_a_fifo_or_endless_is_refused_before_the_sign_in(
    plex: PlexStandIn, tmp_path: Path
) -> None:
    import os

    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    os.mkfifo(tmp_path / "UUID")
    result = await run_cli("plex", "-c", str(config), "--url", plex.app.url, env=plex.env(), timeout=30)
    assert result.code == 3, result.err
    assert "UUID is not a regular file" in result.err
    assert plex.fake.hits["/api/v2/pins"] == 0
    (tmp_path / "UUID").unlink()
    (tmp_path / "UUID").symlink_to("/dev/zero")
    result = await run_cli("plex", "-c", str(config), "--url", plex.app.url, env=plex.env(), timeout=30)
    assert result.code == 3, result.err
    assert "not a regular file" in result.err


async def test_a_blank_uuid_is_filled_once_and_a_linked_config_uses_the_links_folder(
    plex: PlexStandIn, tmp_path: Path, no_input: int
) -> None:
    real, kometa = tmp_path / "real", tmp_path / "kometa"
    real.mkdir()
    kometa.mkdir()
    (real / "config.yml").write_text(CONFIG)
    (kometa / "config.yml").symlink_to(real / "config.yml")
    (kometa / "UUID").write_text("\n")  # half-written: blank
    await link_login(plex, kometa / "config.yml", no_input)
    made = (kometa / "UUID").read_text().strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", made)
    assert {pin.client for pin in plex.fake.pins.values()} == {made}
    assert not (real / "UUID").exists()  # Kometa reads dirname(abspath(config)): the link's folder
    await link_login(plex, kometa / "config.yml", no_input)
    assert (kometa / "UUID").read_text().strip() == made  # once: the same device the next time


async def test_plex_tv_failing_until_the_pin_expires_is_said_to_be_plex_tvs_fault(
    plex: PlexStandIn, tmp_path: Path, no_input: int
) -> None:
    from malcapture.errors import ServiceError

    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    plex.fake.pin_checks = 503
    with pytest.raises(ServiceError, match=r"plex\.tv answered every check of the PIN with HTTP 503") as failed:
        await link_login(plex, config, no_input, sign_in=False)
    assert "expired before it was used" not in str(failed.value)
    assert config.read_text() == CONFIG


async def test_a_library_written_without_settings_is_a_library(
    plex: PlexStandIn, tmp_path: Path, no_input: int
) -> None:
    config = tmp_path / "config.yml"
    config.write_text("libraries:\n  Movies:\n  TV Shows:\n" + CONFIG)
    await link_login(plex, config, no_input, library="TV Shows")
    data = YAML(typ="safe").load(config.read_text())
    assert data["libraries"]["TV Shows"]["plex"]["token"] in plex.fake.tokens
    assert data["libraries"]["Movies"] is None
    config.write_text("libraries:\n  1984:\n    collection_files:\n" + CONFIG)
    with pytest.raises(UsageError, match="named by a number"):
        await link_login(plex, config, no_input, library="1984")
