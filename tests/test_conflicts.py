"""When the redirect can't reach us: busy ports, headless machines, pastes, timeouts, Ctrl-C, denial."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from malcapture.standins.base import play_browser
from tests.helpers import (
    MalStandIn,
    address_after_allow,
    port_is_free,
    read_record,
    run_cli,
    spawn_cli,
    squatter,
)


@pytest.mark.parametrize("hosts", [("127.0.0.1",), ("::1",), ("127.0.0.1", "::1")], ids=["ipv4", "ipv6", "both"])
async def test_busy_port_is_named_and_falls_back_to_paste(
    mal: MalStandIn, config: Path, hosts: tuple[str, ...]
) -> None:
    runners = [await squatter(host, mal.port) for host in hosts]
    try:
        process, url, head = await start_waiting(mal, config, "--no-browser", "--timeout", "30")
        pasted = await address_after_allow(url)
        assert len(pasted) > 1024
        _out, err = await asyncio.wait_for(process.communicate(pasted.encode() + b"\n"), 30)
    finally:
        for runner in runners:
            await runner.cleanup()
    text = head + err.decode()
    assert process.returncode == 0, text
    assert "nginx/1.22.1" in text
    assert "--redirect-uri" in text
    assert "stop that server" in text
    assert "Authorized as kometa_fan" in text


async def test_privileged_port_without_privileges_is_explained(mal: MalStandIn, config: Path) -> None:
    import os
    import shutil

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run the CLI without the privilege to bind low ports")
    app = mal.fake.register("http://localhost:81/")
    process = await spawn_cli(
        "-c",
        str(config),
        "--client-id",
        app.client_id,
        "--client-secret",
        str(app.secret),
        "--redirect-uri",
        "http://localhost:81/",
        "--no-browser",
        "--timeout",
        "2",
        env=mal.env(),
        under=(setpriv, "--inh-caps=-all", "--bounding-set=-all"),
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    text = err.decode()
    assert "may not listen on port 81" in text
    assert "below 1024" in text
    assert "--redirect-uri" in text
    # Only a paste could finish, and /dev/null cannot deliver one: stopped before the URL, exit 2.
    assert process.returncode == 2, text
    assert "only way to finish" in text
    assert "/authorize?" not in text


async def test_headless_ssh_session_does_not_open_a_browser_and_explains_forwarding(
    mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    browser = scripted_browser()
    env = mal.env(BROWSER=str(browser), DISPLAY=":0", SSH_CONNECTION="10.0.0.5 50000 10.0.0.9 22", USER="ana")
    process = await spawn_cli(*mal.args(config), env=env)
    assert process.stderr is not None
    shown = ""
    while "Waiting until" not in shown:  # ended by the event, not by a timeout
        shown += (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
    process.send_signal(signal.SIGINT)
    _, rest = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 130, shown + rest.decode()
    assert not (config.parent / "browser.json").exists()
    assert f"ssh -L {mal.port}:localhost:{mal.port} ana@10.0.0.9" in shown
    assert "SSH session" in shown
    assert port_is_free(mal.port)


async def test_a_forwarded_redirect_still_arrives_while_headless(mal: MalStandIn, config: Path) -> None:
    process, url, _ = await start_waiting(mal, config, "--timeout", "30")
    status, page = await play_browser(url)  # the browser on the other end of `ssh -L`
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert status == 200
    assert "kometa_fan" in page


async def start_waiting(mal: MalStandIn, config: Path, *extra: str) -> tuple[asyncio.subprocess.Process, str, str]:
    """Start a login and read stderr up to the authorize URL; returns what was read too."""
    process = await spawn_cli(*mal.args(config, *extra), env=mal.env(), stdin=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    head, url = "", ""
    while not url:
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        head += line
        url = line.strip() if line.startswith(f"{mal.base}/v1/oauth2/authorize?") else ""
    return process, url, head


async def test_garbage_then_wrong_state_then_the_right_url(mal: MalStandIn, config: Path) -> None:
    process, url, _ = await start_waiting(mal, config, "--manual", "--timeout", "30")
    right = await address_after_allow(url)
    wrong = right.replace("state=", "state=x")
    lines = f"hello there\n{wrong}\n{right}\n".encode()
    _, err = await asyncio.wait_for(process.communicate(lines), 30)
    text = err.decode()
    assert process.returncode == 0, text
    assert "not a redirect URL or a code" in text
    assert "does not match this login" in text
    assert "Authorized as kometa_fan" in text


async def test_paste_wins_while_the_server_waits(mal: MalStandIn, config: Path) -> None:
    process, url, _ = await start_waiting(mal, config, "--no-browser", "--timeout", "30")
    pasted = await address_after_allow(url)
    _, err = await asyncio.wait_for(process.communicate(pasted.encode() + b"\n"), 30)
    assert process.returncode == 0, err.decode()
    assert port_is_free(mal.port)


async def test_end_of_input_in_manual_mode_says_docker_run_it(mal: MalStandIn, config: Path) -> None:
    before = config.read_bytes()
    result = await run_cli(*mal.args(config, "--manual"), env=mal.env())
    assert result.code == 2
    assert "docker run -it" in result.err
    assert config.read_bytes() == before


async def test_timeout_exits_5_frees_the_port_and_changes_nothing(mal: MalStandIn, config: Path) -> None:
    before = config.read_bytes()
    result = await run_cli(*mal.args(config, "--no-browser", "--timeout", "1"), env=mal.env())
    assert result.code == 5
    assert "within 1 seconds" in result.err
    assert config.read_bytes() == before
    assert port_is_free(mal.port)


async def test_ctrl_c_exits_130_without_a_traceback(mal: MalStandIn, config: Path) -> None:
    before = config.read_bytes()
    process, _, _ = await start_waiting(mal, config, "--no-browser", "--timeout", "60")
    assert not port_is_free(mal.port)  # bound before the URL was shown
    process.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 130
    assert "Traceback" not in err.decode()
    assert "Interrupted" in err.decode()
    assert config.read_bytes() == before
    assert port_is_free(mal.port)


async def test_denial_exits_4_and_the_page_says_so(
    mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    before = config.read_bytes()
    env = mal.env(BROWSER=str(scripted_browser("deny")), DISPLAY=":99")
    result = await run_cli(*mal.args(config, "--timeout", "30"), env=env)
    assert result.code == 4
    assert "denied" in result.err
    assert config.read_bytes() == before
    page = read_record(config.parent / "browser.json")
    assert "Not authorized" in str(page["page"])
    assert "denied" in str(page["page"])
