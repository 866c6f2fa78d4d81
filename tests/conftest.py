"""Real parts: the fake MAL on a loopback socket, the CLI as a subprocess, a scripted BROWSER."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from malcapture.fakemal import App, FakeMal, serve
from malcapture.ports import free_port

__all__ = ["free_port"]

SHARED_CONFIGS = Path(__file__).resolve().parents[2] / "shared" / "kometa-configs"
LEAKY_ENV = ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "WSL_DISTRO_NAME")
LEAKY_PREFIXES = ("KOMETA_", "PMM_", "MAL_", "MALCAPTURE_")

SMALL_CONFIG = """\
libraries:
  Anime:
    collection_files:
      - default: basic
settings:
  cache: true       # aligned
  run_order:        # comment
  - operations
mal:
  client_id:
  client_secret:
  authorization:
    access_token:
    token_type:
    expires_in:
    refresh_token:
"""


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's browser, display, SSH session and Kometa settings out of the tests."""
    for name in list(os.environ):
        if name in LEAKY_ENV or name.startswith(LEAKY_PREFIXES):
            monkeypatch.delenv(name)


def port_is_free(port: int) -> bool:
    """Could a new server listen there? (Closed connections may linger in TIME_WAIT; servers don't mind.)"""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


@dataclass
class Mal:
    fake: FakeMal
    base: str
    app: App
    redirect: str
    port: int

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "MALCAPTURE_OAUTH_URL": f"{self.base}/v1/oauth2",
            "MALCAPTURE_API_URL": f"{self.base}/v2",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(extra)
        return env


def login_args(mal: Mal, config: Path, *extra: str) -> list[str]:
    """The options every login test passes: this config, the fake's app, its registered redirect."""
    return [
        "-c",
        str(config),
        "--client-id",
        mal.app.client_id,
        "--client-secret",
        str(mal.app.secret),
        "--redirect-uri",
        mal.redirect,
        *extra,
    ]


@pytest.fixture
async def mal() -> AsyncIterator[Mal]:
    fake = FakeMal()
    runner, base = await serve(fake)
    port = free_port()
    redirect = f"http://localhost:{port}/"
    yield Mal(fake, base, fake.register(redirect), redirect, port)
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


@dataclass
class Result:
    code: int
    out: str
    err: str


async def spawn_cli(
    *args: str,
    env: dict[str, str],
    stdin: int = asyncio.subprocess.DEVNULL,
    cwd: Path | None = None,
    under: Sequence[str] = (),
) -> asyncio.subprocess.Process:
    """The real command, started as a user starts it (`under` a wrapper such as setpriv, if given);
    stdin is /dev/null, as a service has it, unless told; stdout and stderr are pipes."""
    return await asyncio.create_subprocess_exec(
        *under,
        sys.executable,
        "-m",
        "malcapture",
        *args,
        env=env,
        cwd=cwd,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def first_hit(fake: FakeMal, path: str) -> None:
    """Wait until the fake has received a request for `path`."""
    while fake.hits[path] == 0:  # noqa: ASYNC110 (the fake only counts requests; there is no event to await)
        await asyncio.sleep(0.02)


async def run_cli(*args: str, env: dict[str, str], stdin: bytes | None = None, timeout: float = 60) -> Result:
    """The real command, as a user runs it: a subprocess with its own stdin, stdout and stderr."""
    process = await spawn_cli(*args, env=env, stdin=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin if stdin is not None else b""), timeout)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def desktop_login(mal: Mal, config: Path, browser: Path, *extra: str) -> Result:
    """A login on a desktop: a display, and `browser` (a scripted_browser) clicks for the user."""
    return await run_cli(*login_args(mal, config, *extra), env=mal.env(BROWSER=str(browser), DISPLAY=":99"))


def executable(path: Path, text: str) -> Path:
    """A script file the user may run."""
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def scripted_browser(tmp_path: Path) -> Callable[..., Path]:
    """A BROWSER that does what a person does (open, click, follow) and records what it saw."""

    def make(choice: str = "allow", record: str = "browser.json") -> Path:
        return executable(
            tmp_path / f"browser-{choice}",
            f"#!{sys.executable}\n"
            "import asyncio, json, sys, time\n"
            "from malcapture.fakemal import play_browser\n"
            "started = time.time()\n"
            f"status, page = asyncio.run(play_browser(sys.argv[1], {choice!r}))\n"
            f"open({str(tmp_path / record)!r}, 'w').write(json.dumps("
            "{'url': sys.argv[1], 'status': status, 'page': page, 'started': started}))\n",
        )

    return make


def read_record(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text())
    return data


@pytest.fixture
def shared_configs() -> list[Path]:
    if not SHARED_CONFIGS.is_dir():
        pytest.skip(f"the real Kometa configs are not here ({SHARED_CONFIGS}): they live beside the project only")
    return sorted(SHARED_CONFIGS.glob("*.yml"))
