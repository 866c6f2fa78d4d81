"""At a real terminal: whatever ends the login, the terminal is left as it was and the next program can read a line."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from malcapture.standins.base import Scripted
from malcapture.terminal import LineEditor
from tests.helpers import MalStandIn, TraktStandIn, address_after_allow
from tests.terminal import COLUMNS, Terminal


@pytest.fixture
def term() -> Iterator[Terminal]:
    terminal = Terminal()
    yield terminal
    terminal.close()


async def assert_left_as_found(term: Terminal) -> None:
    assert term.modes() == term.before, "the terminal's modes changed"
    assert await term.reads_a_line_typed_with_enter(), f"a line typed with Enter was not read:\n{term.output}"


def authorize_url(mal: MalStandIn, shown: str) -> str:
    return next(line for line in shown.splitlines() if line.startswith(f"{mal.base}/v1/oauth2/authorize?"))


async def test_the_server_wins(
    term: Terminal, mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    env = mal.env(BROWSER=str(scripted_browser()), DISPLAY=":99")
    process = await term.malcapture(*mal.args(config), env=env)
    assert await term.finish(process) == 0, term.output
    assert "Opening your browser…" in term.output
    assert "Authorized as kometa_fan" in term.output
    await assert_left_as_found(term)


async def test_a_paste_of_1100_characters_wins(term: Terminal, mal: MalStandIn, config: Path) -> None:
    process = await term.malcapture(*mal.args(config, "--no-browser"), env=mal.env())
    pasted = await address_after_allow(authorize_url(mal, await term.expect("press Enter")))
    assert len(pasted) > 1100
    term.type(pasted + "\r")
    assert await term.finish(process) == 0, term.output
    assert "Authorized as kometa_fan" in term.output
    await assert_left_as_found(term)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
async def test_an_interruption(term: Terminal, mal: MalStandIn, config: Path, how: str) -> None:
    before = config.read_bytes()
    process = await term.malcapture(*mal.args(config, "--no-browser"), env=mal.env())
    await term.expect("press Enter")
    term.type("http://localhost/?co")  # half a paste, in the middle of which the user gives up
    await term.expect("?co")
    if how == "ctrl-c":
        term.type("\x03")
    else:
        process.send_signal(signal.SIGTERM)
    assert await term.finish(process) == 130
    assert "Interrupted" in term.output
    assert "Traceback" not in term.output
    assert re.search(r"\?co(\^C)?\n", term.output), term.output  # the message starts a line of its own
    assert config.read_bytes() == before
    await assert_left_as_found(term)


async def test_a_closed_terminal_ends_the_login_as_an_interruption(
    term: Terminal, mal: MalStandIn, config: Path
) -> None:
    before = config.read_bytes()
    process = await term.malcapture(*mal.args(config, "--no-browser"), env=mal.env())
    await term.expect("press Enter")
    term.hang_up()  # its last messages have nowhere to go: that is no failure of its own
    assert await term.finish(process) == 130
    assert config.read_bytes() == before


async def test_ctrl_d_ends_the_login_with_a_message_that_fits(term: Terminal, mal: MalStandIn, config: Path) -> None:
    before = config.read_bytes()
    process = await term.malcapture(*mal.args(config, "--no-browser"), env=mal.env())
    await term.expect("press Enter")
    term.type("\x04")
    assert await term.finish(process) == 2
    assert "Input ended (Ctrl-D)" in term.output
    assert "docker" not in term.output  # the user is at a terminal: no advice to get one
    assert config.read_bytes() == before
    await assert_left_as_found(term)


async def test_a_timeout(term: Terminal, mal: MalStandIn, config: Path) -> None:
    process = await term.malcapture(*mal.args(config, "--manual", "--timeout", "1"), env=mal.env())
    assert await term.finish(process) == 5
    assert "within 1 seconds" in term.output
    await assert_left_as_found(term)


async def test_an_error_from_myanimelist(term: Terminal, mal: MalStandIn, config: Path) -> None:
    args = mal.args(config, "--no-browser")
    args[args.index("--client-secret") + 1] = "f" * 64  # not the app's: found while the user reads the page
    process = await term.malcapture(*args, env=mal.env())
    assert await term.finish(process) == 1
    assert "invalid_client" in term.output
    assert "client secret (or the client ID) is wrong" in term.output
    await assert_left_as_found(term)


async def test_an_error_from_myanimelist_after_the_paste(term: Terminal, mal: MalStandIn, config: Path) -> None:
    mal.fake.script("/v2/users/@me", Scripted(403, "<html><title>Request blocked</title></html>", "text/html"))
    process = await term.malcapture(*mal.args(config, "--no-browser"), env=mal.env())
    pasted = await address_after_allow(authorize_url(mal, await term.expect("press Enter")))
    term.type(pasted + "\r")
    assert await term.finish(process) == 1
    assert "'Request blocked'" in term.output
    assert "The config was not changed. The new tokens are on standard output" in term.output
    await assert_left_as_found(term)


async def test_a_config_error(term: Terminal, mal: MalStandIn, tmp_path: Path) -> None:
    process = await term.malcapture(*mal.args(tmp_path / "missing.yml"), env=mal.env())
    assert await term.finish(process) == 3
    await assert_left_as_found(term)


async def test_the_client_id_prompt_after_an_earlier_run_takes_the_typed_id(
    term: Terminal, mal: MalStandIn, config: Path
) -> None:
    first = await term.malcapture(*mal.args(config, "--no-browser"), env=mal.env())
    await term.expect("press Enter")
    term.type("\x03")
    assert await term.finish(first) == 130
    process = await term.malcapture(
        "-c", str(config), "--redirect-uri", mal.redirect, "--manual", "--timeout", "5", env=mal.env()
    )
    await term.expect("MyAnimeList client ID: ")
    term.type(mal.app.client_id + "\r")
    await term.expect("client secret")
    term.type("\x03")
    assert await term.finish(process) == 130
    assert mal.app.client_id in term.output.split("MyAnimeList client ID: ", 1)[1]
    await assert_left_as_found(term)


async def test_prose_is_wrapped_at_spaces_and_the_url_is_whole(term: Terminal, mal: MalStandIn, config: Path) -> None:
    process = await term.malcapture(*mal.args(config, "--no-browser", "--timeout", "1"), env=mal.env())
    await term.finish(process)
    url = authorize_url(mal, term.output)
    assert len(url) > COLUMNS
    prose = [line for line in term.output.splitlines() if line != url]
    assert max(len(line) for line in prose) < COLUMNS
    waiting = " ".join(term.output.split("Waiting until", 1)[1].split("press Enter.")[0].split())
    assert "the address the browser shows after you click Allow — paste it here and" in waiting


def test_the_line_editor_erases_ignores_arrow_keys_and_keeps_what_follows() -> None:
    editor = LineEditor()
    echo, line, ended = editor.feed("abX\x7fc\x1b[Dd")
    assert (line, ended) == (None, False)
    assert echo == "abX\b \bcd"
    # F1 and Home as terminals in application mode send them (ESC O P, ESC O H), Alt-x, F5 (ESC [ 1 5 ~)
    assert editor.feed("\x1bOP\x1bOH\x1bx\x1b[15~")[0] == ""
    _, line, _ = editor.feed("\rnext")
    assert line == "abcd"
    assert editor.pending == "next"
    assert editor.feed("\x15\x04") == ("next" + "\b \b" * 4 + "\r\n", None, True)


async def test_ctrl_d_at_the_hidden_secret_prompt_is_no_answer_not_a_traceback(
    term: Terminal, mal: MalStandIn, config: Path
) -> None:
    args = ["-c", str(config), "--client-id", mal.app.client_id, "--redirect-uri", mal.redirect]
    process = await term.malcapture(*args, "--manual", "--timeout", "1", env=mal.env())
    await term.expect("client secret (empty if the app has none): ")
    term.type("\x04")
    assert await term.finish(process) == 5, term.output
    assert "no client secret" in term.output
    assert "Traceback" not in term.output
    await assert_left_as_found(term)


async def test_trakt_device_flow_at_a_terminal(term: Terminal, trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("trakt:\n  client_id:\n")
    first = await term.malcapture("trakt", *trakt.args(config), env=trakt.env())
    await term.expect("Waiting for your approval")
    term.type("\x03")  # Ctrl-C while waiting: nothing was issued, nothing changes
    assert await term.finish(first) == 130
    assert config.read_text() == "trakt:\n  client_id:\n"
    term.output = ""  # what the second run shows, alone
    second = await term.malcapture("trakt", *trakt.args(config), env=trakt.env())
    shown = await term.expect("Waiting for your approval", timeout=20)
    code = shown.rsplit("enter the code:", 1)[1].split()[1]
    trakt.fake.decide(code)
    assert await term.finish(second) == 0, term.output
    assert "Authorized as kometa_fan" in term.output
    await assert_left_as_found(term)
