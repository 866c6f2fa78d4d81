"""Real parts: the fake MAL on a loopback socket, the CLI as a subprocess, a scripted BROWSER."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from malcapture.login.ports import free_port
from malcapture.standins.mal import FakeMal, serve
from malcapture.standins.plex import FakePlex, FakePlexServer
from malcapture.standins.plex import serve as serve_plex
from malcapture.standins.plex import serve_server as serve_plex_server
from malcapture.standins.trakt import FakeTrakt
from malcapture.standins.trakt import serve as serve_trakt
from tests.helpers import (
    BROKEN,
    SHARED_CONFIGS,
    SMALL_CONFIG,
    MalStandIn,
    PlexStandIn,
    TraktStandIn,
    executable,
    needs_root,
)

__all__ = ["free_port"]

LEAKY_ENV = ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "WSL_DISTRO_NAME")
LEAKY_PREFIXES = ("KOMETA_", "PMM_", "MAL_", "MALCAPTURE_", "TRAKT_", "PLEX_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's browser, display, SSH session and Kometa settings out of the tests."""
    for name in list(os.environ):
        if name in LEAKY_ENV or name.startswith(LEAKY_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture
async def mal() -> AsyncIterator[MalStandIn]:
    fake = FakeMal()
    runner, base = await serve(fake)
    port = free_port()
    redirect = f"http://localhost:{port}/"
    yield MalStandIn(fake, base, fake.register(redirect), redirect, port)
    await runner.cleanup()


@pytest.fixture
async def trakt() -> AsyncIterator[TraktStandIn]:
    fake = FakeTrakt()
    runner, base = await serve_trakt(fake)
    yield TraktStandIn(fake, base, fake.register())
    await runner.cleanup()


@pytest.fixture
async def plex() -> AsyncIterator[PlexStandIn]:
    fake = FakePlex()
    server = FakePlexServer(plex=fake)
    runner, base = await serve_plex(fake)
    server_runner, server_url = await serve_plex_server(server)
    try:
        yield PlexStandIn(fake, server, base, server_url)
    finally:
        await server_runner.cleanup()
        await runner.cleanup()


@pytest.fixture
def no_input() -> Iterator[int]:
    """Standard input as a service has it: /dev/null."""
    fd = os.open(os.devnull, os.O_RDONLY)
    yield fd
    os.close(fd)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(SMALL_CONFIG, encoding="utf-8")
    path.chmod(0o640)
    return path


@pytest.fixture
def scripted_browser(tmp_path: Path) -> Callable[..., Path]:
    """A BROWSER that does what a person does (open, click, follow) and records what it saw."""

    def make(choice: str = "allow", record: str = "browser.json") -> Path:
        return executable(
            tmp_path / f"browser-{choice}",
            f"#!{sys.executable}\n"
            "import asyncio, json, sys, time\n"
            "from malcapture.standins.base import play_browser\n"
            "started = time.time()\n"
            f"status, page = asyncio.run(play_browser(sys.argv[1], {choice!r}))\n"
            f"open({str(tmp_path / record)!r}, 'w').write(json.dumps("
            "{'url': sys.argv[1], 'status': status, 'page': page, 'started': started}))\n",
        )

    return make


@pytest.fixture
def shared_configs() -> list[Path]:
    if not SHARED_CONFIGS.is_dir():
        pytest.skip(f"the real Kometa configs are not here ({SHARED_CONFIGS}): they live beside the project only")
    return sorted(SHARED_CONFIGS.glob("*.yml"))


@pytest.fixture
def working_configs(shared_configs: list[Path]) -> list[Path]:
    """The real configs Kometa can read (the README beside them names the three broken ones)."""
    return [source for source in shared_configs if source.name not in BROKEN]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    needs_root()
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=False).returncode:
        pytest.fail("mounting a tmpfs failed although this is root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def chromium() -> str:
    """Debian's chromium: a failure, not a skip, where CI should have installed it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: CI must install it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return path
