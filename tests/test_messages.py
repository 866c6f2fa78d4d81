"""What the user reads: no terminal, a container, tokens that still work, what a save changed, and wording."""

from __future__ import annotations

import asyncio
import io
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from malcapture import demo
from malcapture.errors import UsageError
from malcapture.login import start as loopback
from malcapture.login.contract import LoginOptions
from malcapture.login.io import Io
from malcapture.login.paste import PasteReader
from malcapture.services import SERVICES
from malcapture.ui import StderrReporter, wrapped
from tests.helpers import (
    MAL,
    FakeClock,
    MalStandIn,
    Recorder,
    desktop_login,
    run_cli,
    run_here,
    spawn_cli,
    squatter,
    stored,
    until_waiting,
)
from tests.terminal import Terminal


async def run_without_stdin(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await spawn_cli(*args, env=env)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_a_busy_port_without_stdin_stops_before_the_browser(
    mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    seen: list[str] = []
    squatting = await squatter("127.0.0.1", mal.port, seen)
    before = config.read_bytes()
    try:
        env = mal.env(BROWSER=str(scripted_browser()), DISPLAY=":99")
        code, err = await run_without_stdin(*mal.args(config), env=env)
    finally:
        await squatting.cleanup()
    assert code == 2, err
    assert "nginx/1.22.1" in err
    assert "only way to finish" in err
    assert "/authorize?" not in err
    assert not (config.parent / "browser.json").exists()  # the browser was never started
    assert seen == []  # and the squatting server never saw a code
    assert config.read_bytes() == before


async def test_the_server_without_stdin_waits_for_the_redirect_only(mal: MalStandIn, config: Path) -> None:
    result = await until_waiting(*mal.args(config, "--no-browser"), env=mal.env())
    assert result.code == 130, result.err
    assert "for MyAnimeList's redirect only" in result.err
    assert "paste it here" not in result.err


def login_in(root: Path, config: Path, *, manual: bool, no_input: int) -> str:
    shown = io.StringIO()
    way = MAL.way("manual") if manual else None
    opts = LoginOptions(config, MAL, "0123456789abcdef0123456789abcdef", "s", way=way, timeout=1)
    with pytest.raises(UsageError) as failure:
        loopback.start(opts, Io(StderrReporter(stream=shown), env={}, paste=PasteReader(no_input), root=root))
    return str(failure.value) + shown.getvalue()


def test_a_container_gets_the_container_fixes(tmp_path: Path, config: Path, no_input: int) -> None:
    (tmp_path / "box").mkdir()
    (tmp_path / "box" / ".dockerenv").touch()
    said = login_in(tmp_path / "box", config, manual=True, no_input=no_input)
    assert "docker run -it" in said
    assert "docker compose run" in said
    assert "--bind 0.0.0.0" not in said  # with --manual there is no server to publish: only a terminal helps
    (tmp_path / "host").mkdir()
    said = login_in(tmp_path / "host", config, manual=True, no_input=no_input)
    assert "docker" not in said
    assert "terminal" in said


def test_a_container_is_recognised_by_its_cgroup(tmp_path: Path) -> None:
    from malcapture import container

    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/cgroup").write_text("0::/system.slice/docker-4f1c.scope\n")
    assert container.detected(tmp_path)
    (tmp_path / "proc/1/cgroup").write_text("0::/init.scope\n")
    assert not container.detected(tmp_path)


async def test_working_tokens_are_not_replaced_without_asking(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    before = config.read_bytes()
    term = Terminal()
    try:
        process = await term.malcapture(*mal.args(config, "--no-browser"), env=mal.env())
        await term.expect("[y/N]")
        term.type("\r")
        assert await term.finish(process) == 0, term.output
    finally:
        term.close()
    assert "and MyAnimeList takes it (asked just now)" in " ".join(term.output.split())
    assert "Kept the tokens" in term.output
    assert "/authorize?" not in term.output
    assert config.read_bytes() == before


async def test_tokens_the_service_refuses_are_replaced_without_a_question(mal: MalStandIn, config: Path) -> None:
    """`status` names `malcapture` as the fix for a token MyAnimeList refuses: then `malcapture` must not ask
    whether to keep it (Enter would have kept the broken token)."""
    tokens = stored(mal, config)
    del mal.fake.access_tokens[str(tokens["access_token"])]  # revoked, though its own expiry is a month away
    term = Terminal()
    try:
        process = await term.malcapture(*mal.args(config, "--no-browser", "--timeout", "30"), env=mal.env())
        await term.expect("Waiting until")
        term.type("\x03")
        assert await term.finish(process) == 130, term.output
    finally:
        term.close()
    shown = " ".join(term.output.split())
    assert "but MyAnimeList refuses it (MyAnimeList refused the account check: HTTP 401" in shown
    assert "authorizing anew" in shown
    assert "[y/N]" not in term.output


async def test_yes_and_no_terminal_go_on_and_say_whose_tokens_are_replaced(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    result = await until_waiting(*mal.args(config, "--no-browser"), env=mal.env())
    assert result.code == 130, result.err
    assert "which expires" in result.err  # read offline, and said so: not called "works" unchecked
    assert "no terminal to ask at" in result.err
    assert "user ID" in result.err
    assert "[y/N]" not in result.err


async def test_a_save_says_what_changed_where(
    mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    config.write_text(
        config.read_text().replace(
            "  client_secret:\n", "  client_secret:\n  localhost_url: http://localhost/?code=x\n"
        )
    )
    result = await desktop_login(mal, config, scripted_browser())
    assert result.code == 0, result.err
    assert re.search(r"Changed lines 10-12, 14-17 of .*config.yml: mal.authorization \(access_token", result.err)
    assert "Filled in mal.client_id and mal.client_secret" in result.err
    assert "Emptied mal.localhost_url" in result.err
    assert "previous version is kept as" in result.err


async def test_an_appended_section_is_named_with_the_commented_out_one(
    mal: MalStandIn, tmp_path: Path, scripted_browser: Callable[..., Path]
) -> None:
    config = tmp_path / "config.yml"
    config.write_text("settings:\n  cache: true\n#mal:\n#  client_id: abc\n")
    result = await desktop_login(mal, config, scripted_browser())
    assert result.code == 0, result.err
    assert "A new mal: section was added at lines 5-13" in result.err
    assert "Line 3 holds a commented-out `# mal:`" in result.err


async def test_the_success_page_shows_the_absolute_path(
    mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    env = mal.env(BROWSER=str(scripted_browser()), DISPLAY=":99")
    process = await spawn_cli(*mal.args(Path("config.yml")), cwd=config.parent, env=env)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    page = (config.parent / "browser.json").read_text()
    assert f"<code>{config}</code>" in page.replace("\\/", "/")


async def test_a_yaml_error_shows_the_line_before_and_a_caret(mal: MalStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text('plex:\n  url: "http://x\n  token: abc\nmal:\n  client_id: x\n')
    result = await run_cli(*mal.args(config), env=mal.env())
    assert result.code == 3
    assert '  2 |   url: "http://x\n' in result.err  # where the unclosed quote opened
    assert "^" in result.err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
async def test_binding_a_loopback_name_is_not_warned_about(mal: MalStandIn, config: Path, host: str) -> None:
    result = await until_waiting(*mal.args(config, "--no-browser", "--bind", host), env=mal.env())
    assert result.code == 130, result.err
    assert "not just loopback" not in result.err


async def test_bind_all_is_warned_about(mal: MalStandIn, config: Path) -> None:
    result = await until_waiting(*mal.args(config, "--no-browser", "--bind", "0.0.0.0"), env=mal.env())
    assert result.code == 130, result.err
    assert "not just loopback" in result.err


async def test_a_client_id_with_a_stray_character_is_named(mal: MalStandIn, config: Path) -> None:
    args = mal.args(config, "--no-browser")
    args[args.index("--client-id") + 1] = mal.app.client_id[:5] + "g" + mal.app.client_id[6:]
    result = await until_waiting(*args, env=mal.env())
    assert "has 'g' (U+0067) at position 6" in result.err


async def test_wording_has_no_stray_punctuation(mal: MalStandIn, config: Path) -> None:
    from malcapture.http import Answer
    from malcapture.services.mal import explain_failure

    body = '{"error": "invalid_request", "message": "The refresh token is invalid.", "hint": "Token has been revoked"}'
    error = explain_failure(Answer(401, body, "application/json", None), "refresh")
    assert "The refresh token is invalid. Token has been revoked." in str(error)
    assert ".;" not in str(error)
    squat = await squatter("127.0.0.1", mal.port)
    try:
        result = await run_cli(*mal.args(config, "--timeout", "1"), env=mal.env(), stdin=b"")
    finally:
        await squat.cleanup()
    assert "(or set MALCAPTURE_REDIRECT_URI)." in result.err
    assert "--redirect-uri. (or" not in result.err


async def test_help_shows_plain_defaults_and_whole_summaries() -> None:
    result = await run_here("--help", env={"COLUMNS": "100", "TERM": "dumb"})
    shown = " ".join(result.out.split())
    assert "Authorize Kometa on MyAnimeList and save the tokens (the default command)." in shown
    assert "Trade the stored MyAnimeList refresh token for new tokens and save them." in shown
    assert "[default: 300]" in result.out
    assert "300.0" not in result.out
    assert "x>=1" not in result.out


async def test_refresh_without_a_refresh_token_is_a_config_problem(mal: MalStandIn, config: Path) -> None:
    result = await run_here("refresh", "-c", str(config), env=mal.env())
    assert result.code == 3
    assert "authorize Kometa first" in result.err


async def test_demo_plays_every_login_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    said = Recorder()
    await demo.run(said, clock=FakeClock())  # the polls pass at once
    text = "\n".join(said.lines)
    assert text.count(" — saved to ") == len(SERVICES)
    for service in SERVICES:
        assert f"— {service.title}: " in text
        assert f"`{service.command('check')}` would say: it belongs to " in text
    assert "No browser can open (there is no graphical display here" in text
    assert list(tmp_path.iterdir()) == []


async def test_the_demo_command_keeps_its_folder_when_asked(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    result = await run_cli("demo", "--keep", env=env)
    assert result.code == 0, result.err
    assert result.err.count(" — saved to ") == len(SERVICES)
    kept = list(tmp_path.iterdir())
    assert len(kept) == 1
    assert f"kept in {kept[0]}" in result.err
    assert 'plex:\n  url: "http://127.0.0.1:' in (kept[0] / "config.yml").read_text("utf-8")


def test_prose_is_wrapped_at_spaces_only() -> None:
    text = "word " * 30 + "https://example.com/" + "x" * 80
    lines = wrapped(text.strip(), 40).splitlines()
    assert all(len(line) <= 39 for line in lines[:-1])
    assert lines[-1].endswith("x" * 80)  # a long word is never cut
    assert wrapped("  ssh -L 1:localhost:1 " + "a " * 40, 40).count("\n") == 0  # a command to copy stays whole
