"""Two runs at once on one config: one at a time, a refresh refused because another run refreshed first
is no alarm, and a killed run leaves no lock behind."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
from pathlib import Path

import pytest

from malcapture.config import lock
from malcapture.errors import ConfigError
from tests.helpers import SMALL_CONFIG, MalStandIn, first_hit, run_cli, spawn_cli, stored


async def start_refresh(mal: MalStandIn, config: Path) -> asyncio.subprocess.Process:
    return await spawn_cli("refresh", "-c", str(config), env=mal.env())


async def test_two_refreshes_at_once_both_succeed(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    for _ in range(3):
        first, second = await start_refresh(mal, config), await start_refresh(mal, config)
        answers = await asyncio.gather(first.communicate(), second.communicate())
        errors = [err.decode() for _, err in answers]
        assert (first.returncode, second.returncode) == (0, 0), errors
        assert "Error" not in "".join(errors)
        check = await run_cli("check", "-c", str(config), env=mal.env())
        assert check.code == 0, check.err


async def test_a_second_run_says_for_whom_it_waits(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    gate = mal.fake.gates["/v1/oauth2/token"] = asyncio.Event()  # the first run holds the locks until it opens
    first = await start_refresh(mal, config)
    await first_hit(mal.fake, "/v1/oauth2/token")
    second = await start_refresh(mal, config)
    assert second.stderr is not None
    said = ""
    try:
        while "is saving" not in said:  # the second run says whom it waits for, whatever the machine's speed
            line = (await asyncio.wait_for(second.stderr.readline(), 30)).decode()
            assert line, said
            said += line
    finally:
        gate.set()
    (_, _), (_, err) = await asyncio.gather(first.communicate(), second.communicate())
    assert second.returncode == 0, said + err.decode()
    assert f"another malcapture (pid {first.pid}) is saving" in said


async def test_a_lock_left_by_kill_9_does_not_block_the_next_run(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    gate = mal.fake.gates["/v1/oauth2/token"] = asyncio.Event()  # the victim holds the locks while it waits
    victim = await start_refresh(mal, config)
    await first_hit(mal.fake, "/v1/oauth2/token")
    victim.send_signal(signal.SIGKILL)
    await victim.wait()
    gate.set()
    assert sorted(p.name for p in config.parent.iterdir()) == ["config.yml"]  # no lock file: the locks went with it
    result = await run_cli("refresh", "-c", str(config), env=mal.env(), timeout=10)
    assert result.code == 0, result.err
    assert "Waiting" not in result.err


async def test_a_refresh_refused_because_another_program_refreshed_meanwhile_is_no_alarm(
    mal: MalStandIn, config: Path
) -> None:
    old = stored(mal, config)
    gate = mal.fake.gates["/v1/oauth2/token"] = asyncio.Event()  # answered once Kometa has refreshed
    process = await start_refresh(mal, config)
    await first_hit(mal.fake, "/v1/oauth2/token")
    # Kometa refreshes on its own meanwhile (it takes no lock): the old refresh token dies, new ones are saved.
    del mal.fake.refresh_tokens[str(old["refresh_token"])]
    new = mal.fake.issue_tokens(mal.app.client_id)
    text = config.read_text()
    for key in ("access_token", "refresh_token"):
        text = text.replace(str(old[key]), str(new[key]))
    config.write_text(text)
    gate.set()
    _, err = await asyncio.wait_for(process.communicate(), 30)
    said = err.decode()
    assert process.returncode == 0, said
    assert "refreshed meanwhile" in said
    assert "authorize again" not in said
    assert "belong to kometa_fan" in said
    assert str(new["refresh_token"]) in config.read_text()


async def test_a_refresh_token_that_is_still_the_stored_one_and_refused_means_authorize_again(
    mal: MalStandIn, config: Path
) -> None:
    old = stored(mal, config)
    del mal.fake.refresh_tokens[str(old["refresh_token"])]
    before = config.read_bytes()
    result = await run_cli("refresh", "-c", str(config), env=mal.env())
    assert result.code == 1
    assert "authorize again" in result.err
    assert config.read_bytes() == before


def test_a_lock_held_too_long_is_given_up_with_the_config_unchanged(config: Path) -> None:
    before = config.read_bytes()
    holder = os.open(config.parent, os.O_RDONLY)  # what another run holds: the folder's lock
    fcntl.flock(holder, fcntl.LOCK_EX)
    said: list[str] = []
    ticks = iter(range(100))  # a clock that moves a second a look: no real waiting
    try:
        with (
            pytest.raises(ConfigError, match=rf"\(pid {os.getpid()}\) kept .* locked"),
            lock.exclusive(config, said.append, 3, clock=lambda: float(next(ticks))),
        ):
            config.write_text("never")  # pragma: no cover - the lock is never had
    finally:
        os.close(holder)
    assert said == [f"Waiting: another malcapture (pid {os.getpid()}) is saving {config.resolve()}."]
    assert config.read_bytes() == before


def test_a_planted_symlink_is_never_followed_or_written(tmp_path: Path) -> None:
    """The folder's owner links names where an older malcapture kept its lock file to a file of root's:
    a run (as root) takes its locks without opening, truncating or creating anything."""
    victim = tmp_path / "shadow"
    victim.write_text("root:secret-hash:19000::::::\n")
    folder = tmp_path / "kometa"
    folder.mkdir()
    config = folder / "config.yml"
    config.write_text(SMALL_CONFIG)
    (folder / ".config.yml.malcapture.lock").symlink_to(victim)
    (folder / ".config.yml.lock").symlink_to(tmp_path / "dangling")
    with lock.exclusive(config, print):
        pass
    assert victim.read_text() == "root:secret-hash:19000::::::\n"
    assert not (tmp_path / "dangling").exists()
    assert sorted(p.name for p in folder.iterdir()) == [".config.yml.lock", ".config.yml.malcapture.lock", "config.yml"]


def test_a_config_reached_by_a_symlink_is_locked_as_itself(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(SMALL_CONFIG)
    (tmp_path / "link.yml").symlink_to(config)
    with (
        lock.exclusive(config, print),
        pytest.raises(ConfigError, match=r"kept .* locked"),
        lock.exclusive(tmp_path / "link.yml", lambda said: None, 0.0),
    ):
        pass  # pragma: no cover - the lock is never had


def test_two_hard_linked_names_of_one_config_exclude_each_other(tmp_path: Path) -> None:
    """Two folders, one file (as a container sees a file bind-mounted from the host): the file's own lock."""
    (tmp_path / "host").mkdir()
    (tmp_path / "container").mkdir()
    config = tmp_path / "host" / "config.yml"
    config.write_text(SMALL_CONFIG)
    os.link(config, tmp_path / "container" / "config.yml")
    with (
        lock.exclusive(config, print),
        pytest.raises(ConfigError, match=r"kept .* locked"),
        lock.exclusive(tmp_path / "container" / "config.yml", lambda said: None, 0.0),
    ):
        pass  # pragma: no cover - the lock is never had


def nfs_flock(fd: int, operation: int) -> None:
    """flock() as Linux emulates it on NFS: a byte-range lock, so an exclusive one needs a descriptor open for
    writing (EBADF otherwise, a folder's included); then it excludes as a lock does."""
    if operation & fcntl.LOCK_EX and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    REAL_FLOCK(fd, operation)


REAL_FLOCK = fcntl.flock


def test_on_nfs_the_file_is_locked_through_a_descriptor_open_for_writing(config: Path) -> None:
    before = config.read_bytes()
    # Held: a second run waits for it, and gives up when told to, with the config unchanged.
    with (
        lock.exclusive(config, print, flock=nfs_flock),
        pytest.raises(ConfigError, match=r"kept .* locked"),
        lock.exclusive(config, lambda said: None, 0.0),
    ):
        pass  # pragma: no cover - the lock is never had
    assert config.read_bytes() == before  # opened for writing, nothing written


def test_a_lock_that_cannot_be_had_is_refused_in_words_before_anything_is_spent(config: Path) -> None:
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    with pytest.raises(ConfigError, match=r"cannot be locked \(No locks available\)") as refused:
        lock.check(config, flock=no_locks)
    assert "nothing was spent" in refused.value.what
    lock.check(config, flock=nfs_flock)  # NFS's locks can be had


async def test_a_login_on_an_nfs_share_saves_and_one_without_locks_stops_before_the_browser(
    mal: MalStandIn, config: Path, no_input: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real login in this process, with the OS's flock() playing NFS's: saved; with no locks at all, it
    stops before MyAnimeList is asked for anything."""
    from malcapture.login.contract import LoginOptions
    from malcapture.services import MYANIMELIST
    from tests.helpers import browser_clicking_allow, quiet_io

    monkeypatch.setattr(fcntl, "flock", nfs_flock)
    io, _ = quiet_io(mal.env(), no_input, open_browser=browser_clicking_allow, headless=lambda env: None)
    opts = LoginOptions(config, MYANIMELIST, mal.app.client_id, mal.app.secret, redirect_uri=mal.redirect, yes=True)
    result = await MYANIMELIST.code.login_async(opts, io)
    assert result.saved_to == config.absolute()

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    before, asked = config.read_bytes(), mal.fake.hits["/v1/oauth2/authorize"]
    with pytest.raises(ConfigError, match="cannot be locked"):
        await MYANIMELIST.code.login_async(opts, io)
    assert mal.fake.hits["/v1/oauth2/authorize"] == asked
    assert config.read_bytes() == before
