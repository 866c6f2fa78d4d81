"""Real parts: the fake MAL on a loopback socket, the CLI as a subprocess, a scripted BROWSER."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from malcapture.services import SERVICES
from malcapture.standins.base import play_browser
from malcapture.standins.mal import FakeMal, serve
from malcapture.standins.plex import FakePlex, FakePlexServer
from malcapture.standins.plex import env_for as plex_env_for
from malcapture.standins.plex import serve as serve_plex
from malcapture.standins.plex import serve_server as serve_plex_server
from malcapture.standins.trakt import FakeTrakt
from malcapture.standins.trakt import env_for as trakt_env_for
from malcapture.standins.trakt import serve as serve_trakt
from tests.helpers import (
    BROKEN,
    SHARED_CONFIGS,
    SMALL_CONFIG,
    MalStandIn,
    PlexStandIn,
    Running,
    TraktStandIn,
    executable,
    free_port,
    mal_stand_in,
    needs_root,
)

LEAKY_ENV = ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "WSL_DISTRO_NAME")
# Kometa's and malcapture's variables, and each service's (MAL_CLIENT_ID, SPOTIFY_CLIENT_SECRET, …)
LEAKY_PREFIXES = ("KOMETA_", "PMM_", "MALCAPTURE_", *(f"{service.name.upper()}_" for service in SERVICES))


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
    yield mal_stand_in(fake, base, free_port())
    await runner.cleanup()


@pytest.fixture
async def trakt() -> AsyncIterator[TraktStandIn]:
    fake = FakeTrakt()
    runner, base = await serve_trakt(fake)
    app = fake.register()
    yield Running(fake, base, app, trakt_env_for(base), ("--client-id", app.client_id, "--client-secret", app.secret))
    await runner.cleanup()


@pytest.fixture
async def plex() -> AsyncIterator[PlexStandIn]:
    fake = FakePlex()
    server = FakePlexServer(plex=fake)
    runner, base = await serve_plex(fake)
    server_runner, _ = await serve_plex_server(server)
    try:
        yield Running(fake, base, server, plex_env_for(base))
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
async def scripted_browser(tmp_path: Path) -> AsyncIterator[Callable[..., Path]]:
    """A BROWSER that does what a person does (open, click, follow) and records what it saw. The command the
    CLI starts is a stub that hands the URL to this test's event loop, where the person plays it, and exits
    once the page has been seen, as a browser's launcher returns: no second aiohttp to load for each login."""

    async def person(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        choice, record, url = (await reader.readline()).decode().rstrip("\n").split("\t")
        started = time.time()
        try:
            status, page = await play_browser(url, choice)
            record_of = {"url": url, "status": status, "page": page, "started": started}
            Path(record).write_text(json.dumps(record_of))
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(person, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    def make(choice: str = "allow", record: str = "browser.json") -> Path:
        head = f"{choice}\t{tmp_path / record}\t"
        return executable(
            tmp_path / f"browser-{choice}",
            f"#!{sys.executable} -IS\n"  # isolated, without site: the standard library's socket alone
            "import socket, sys\n"
            f"with socket.create_connection(('127.0.0.1', {port})) as person:\n"
            f"    person.sendall(({head!r} + sys.argv[1] + '\\n').encode())\n"
            "    person.recv(1)  # the end of the page\n",
        )

    try:
        yield make
    finally:
        server.close()
        await server.wait_closed()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers a core (at most 16). Most tests wait on a subprocess, a browser or a stand-in's
    answer, so a second worker runs while the first waits: on 2 cores, 4 workers take 45 s where 2 take 60."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(2 * cores, 16)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`real_config` is each of the real configs beside the project, one test apiece; `working_config` each
    of those Kometa can read (the README beside them names the three broken ones). Without them, one skip."""
    for name in ("real_config", "working_config"):
        if name not in metafunc.fixturenames:
            continue
        if not SHARED_CONFIGS.is_dir():
            reason = f"the real Kometa configs are not here ({SHARED_CONFIGS}): they live beside the project only"
            metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(reason=reason))])
            continue
        sources = sorted(SHARED_CONFIGS.glob("*.yml"))
        if name == "working_config":
            sources = [source for source in sources if source.name not in BROKEN]
        metafunc.parametrize(name, sources, ids=[source.stem for source in sources])


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
