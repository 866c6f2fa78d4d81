"""Where Kometa users are: Windows and macOS code paths, with the platform handed in where it cannot be
run here, and the modules a POSIX-only import would break checked with those modules taken away."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import socket
import sys
from pathlib import Path

import pytest

from malcapture.config import lock
from malcapture.config.atomic import replace_retrying
from malcapture.errors import ConfigError
from malcapture.login.ports import _explain
from malcapture.login.redirect import parse_redirect_uri
from tests.helpers import MalStandIn, address_after_allow
from tests.terminal import Terminal

# What `python` is on Windows, as far as imports go: none of the POSIX-only modules.
WINDOWS_LIKE = (
    "import sys; sys.modules.update(fcntl=None, termios=None, pty=None, tty=None, grp=None, pwd=None); "
    "sys.argv = ['malcapture', *sys.argv[1:]]; from malcapture.__main__ import main; main()"
)


async def test_every_module_imports_and_help_runs_without_posix_only_modules() -> None:
    script = (
        "import sys; sys.modules.update(fcntl=None, termios=None, pty=None, tty=None, grp=None, pwd=None)\n"
        "import importlib, pkgutil, malcapture\n"
        "names = [m.name for m in pkgutil.walk_packages(malcapture.__path__, 'malcapture.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert int(out) > 40
    helped = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WINDOWS_LIKE, "--help", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(helped.communicate(), 60)
    assert helped.returncode == 0, err.decode()
    assert b"spotify" in out


async def test_a_paste_at_a_console_without_termios_is_read_whole(mal: MalStandIn, config: Path) -> None:
    """Windows' console edits the line itself: without termios the paste is read by the reader thread, a
    redirect of over 1,024 characters whole, and the login saves."""
    term = Terminal()
    try:
        process = await term.spawn("-c", WINDOWS_LIKE, *mal.args(config, "--manual"), env=mal.env())
        shown = await term.expect("paste it here")
        url = next(line.strip() for line in shown.splitlines() if "/v1/oauth2/authorize?" in line)
        pasted = await address_after_allow(url)
        assert len(pasted) > 1024
        term.type(pasted + "\r")
        assert await term.finish(process) == 0, term.output
    finally:
        term.close()
    assert "Authorized as kometa_fan" in term.output


def test_a_file_another_program_holds_open_on_windows_is_tried_again_then_said(tmp_path: Path) -> None:
    refusals = [PermissionError(errno.EACCES, "Access is denied")] * 2
    renamed: list[tuple[str, str]] = []

    def busy(source: str, target: str) -> None:  # an antivirus scan lets go after a moment
        if refusals:
            raise refusals.pop()
        renamed.append((source, target))

    waits: list[float] = []
    replace_retrying(busy, "new", "config.yml", windows=True, sleep=waits.append)
    assert renamed == [("new", "config.yml")]
    assert len(waits) == 2

    def held(source: str, target: str) -> None:
        raise PermissionError(errno.EACCES, "Access is denied")

    with pytest.raises(PermissionError, match=r"another program .* keeps the file open"):
        replace_retrying(held, "new", "config.yml", windows=True, sleep=waits.append)
    with pytest.raises(PermissionError, match=r"^.Errno 13. Access is denied$"):  # elsewhere: said at once
        replace_retrying(held, "new", "config.yml", windows=False, sleep=waits.append)


def msvcrt_like(fd: int, mode: int, nbytes: int) -> None:
    """msvcrt.locking as far as two runs see it: LK_NBLCK (2) fails while another holds the byte, LK_UNLCK (0)
    lets go."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB if mode == 2 else fcntl.LOCK_UN)
    except BlockingIOError:
        raise OSError(errno.EACCES, "Permission denied") from None


def test_two_runs_exclude_each_other_on_windows_through_a_lock_file_of_their_own(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("mal:\n")
    said: list[str] = []
    ticks = iter(range(100))
    with lock.windows_lock(config, print, 30, lambda: 0.0, msvcrt_like):  # noqa: SIM117
        with pytest.raises(ConfigError, match=r"Another malcapture kept .* locked for 3 seconds"):
            with lock.windows_lock(config, said.append, 3, lambda: float(next(ticks)), msvcrt_like):
                pass  # pragma: no cover - the lock is never had
    assert said == [f"Waiting: another malcapture is saving {config}."]
    with lock.windows_lock(config, said.append, 3, lambda: 0.0, msvcrt_like):  # released with the first
        pass
    assert (tmp_path / ".config.yml.malcapture-lock").stat().st_size == 0  # nothing written into it


def test_a_reserved_port_on_windows_names_netsh() -> None:
    target = parse_redirect_uri("http://localhost:50000/", "https://myanimelist.net/apiconfig")
    denied = OSError(errno.EACCES, "An attempt was made to access a socket in a way forbidden")
    what, _ = _explain(target, "127.0.0.1", errno.EACCES, denied, platform="win32")
    assert "netsh int ipv4 show excludedportrange protocol=tcp" in what
    assert "WinError 10013" in what
    what, advice = _explain(target, "127.0.0.1", errno.EACCES, denied, platform="linux")
    assert "netsh" not in what
    low = parse_redirect_uri("http://localhost/", "https://myanimelist.net/apiconfig")
    what, advice = _explain(low, "127.0.0.1", errno.EACCES, denied, platform="darwin")
    assert "below 1024 need administrator rights" in what
    assert "above 1023" in advice


def test_without_proc_locks_the_holder_is_another_malcapture(tmp_path: Path) -> None:
    """macOS and BSD have no /proc/locks: the holder is named without a pid, never as 'another process'."""
    with socket.socket() as sock:
        assert lock.holder(sock.fileno(), tmp_path / "no-proc-locks") == "another malcapture"
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        assert lock.holder(fd, tmp_path / "no-proc-locks") == "another malcapture"
    finally:
        os.close(fd)
