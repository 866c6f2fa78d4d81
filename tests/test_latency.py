"""After the click: connections are ready before the redirect arrives, and a warm-up that fails changes nothing.

MyAnimeList's stand-in speaks TLS here (its certificate trusted through SSL_CERT_FILE, as a user's
corporate CA would be) behind one delaying, counting proxy per host (tests/link.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from malcapture.standins.mal import FakeMal, serve
from tests.helpers import MalStandIn, executable, free_port, mal_stand_in, spawn_cli
from tests.link import Link, certificate

RTT = 0.05


@dataclass
class FarMal:
    handle: MalStandIn
    direct: str  # the stand-in itself, for the browser (which talks to myanimelist.net, not to the API hosts)
    cert: Path
    oauth: Link
    api: Link | None
    api_port: int
    oauth_port: int

    def env(self, **extra: str) -> dict[str, str]:
        return self.handle.env(
            MALCAPTURE_OAUTH_URL=f"https://127.0.0.1:{self.oauth_port}/v1/oauth2",
            MALCAPTURE_API_URL=f"https://127.0.0.1:{self.api_port}/v2",
            SSL_CERT_FILE=str(self.cert),
            **extra,
        )


@pytest.fixture
async def far_mal(tmp_path: Path) -> AsyncIterator[FarMal]:
    cert, context = certificate(tmp_path)
    fake = FakeMal()
    runner, direct = await serve(fake, tls=context)
    target = ("127.0.0.1", int(direct.rsplit(":", 1)[1]))
    oauth, api = Link(target, RTT), Link(target, RTT)
    handle = mal_stand_in(fake, direct, free_port())
    far = FarMal(handle, direct, cert, oauth, api, await api.start(), await oauth.start())
    yield far
    await oauth.close()
    await api.close()
    await runner.cleanup()


def browser(tmp_path: Path, far: FarMal, wait: float, until: Path | None = None) -> Path:
    """A person who reads the page for `wait` seconds (and, given `until`, until that file exists), then
    clicks Allow (recording when)."""
    return executable(
        tmp_path / "browser",
        f"#!{sys.executable}\n"
        "import asyncio, json, os, sys, time\n"
        "from malcapture.standins.base import play_browser\n"
        f"def where(url): return url.replace('https://127.0.0.1:{far.oauth_port}', {far.direct!r})\n"
        f"time.sleep({wait})\n"
        f"while {str(until)!r} != 'None' and not os.path.exists({str(until)!r}):\n"
        "    time.sleep(0.02)\n"
        "clicked = time.monotonic()\n"
        "status, _ = asyncio.run(play_browser(sys.argv[1], where=where))\n"
        f"open({str(tmp_path / 'clicked.json')!r}, 'w').write(json.dumps({{'clicked': clicked, 'status': status}}))\n",
    )


async def test_one_tls_handshake_per_host_and_both_before_the_redirect(far_mal: FarMal, tmp_path: Path) -> None:
    env = far_mal.env(BROWSER=str(browser(tmp_path, far_mal, 1.0)), DISPLAY=":99")
    config = tmp_path / "config.yml"
    config.write_text("mal:\n  client_id:\n")
    process = await spawn_cli(*far_mal.handle.args(config), env=env)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    clicked = json.loads((tmp_path / "clicked.json").read_text())["clicked"]
    assert far_mal.api is not None
    for link in (far_mal.oauth, far_mal.api):
        assert link.connections == 1
        assert len(link.handshakes) == 1
        assert link.handshakes[0] < clicked  # warmed while the user read the page
    assert "Authorized as kometa_fan" in err.decode()


async def test_a_warm_up_that_fails_changes_nothing(far_mal: FarMal, tmp_path: Path) -> None:
    assert far_mal.api is not None
    await far_mal.api.close()
    late = Link(far_mal.api.target, RTT)  # the API host: unreachable while the user reads, reachable after
    up = tmp_path / "api-host-is-up"
    env = far_mal.env(BROWSER=str(browser(tmp_path, far_mal, 0, until=up)), DISPLAY=":99")
    config = tmp_path / "config.yml"
    config.write_text("mal:\n  client_id:\n")
    process = await spawn_cli(*far_mal.handle.args(config, "-v"), env=env)
    assert process.stderr is not None
    try:
        shown = ""
        while "warming a connection to" not in shown:
            shown += (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        await late.start(far_mal.api_port)
        up.touch()  # the user clicks Allow only now: the warm-up failed before the click
        _, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await late.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, shown + err.decode()
    assert f"127.0.0.1:{far_mal.api_port} failed" in shown
    assert "Authorized as kometa_fan" in err.decode()
    assert late.connections == 1
