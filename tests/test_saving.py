"""Saving on real file systems: full disks, owners and groups, ACLs and xattrs, stale temporary files,
edits made meanwhile, signals, and refusals found before anything is spent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from malcapture.config import atomic, plan
from malcapture.config import kometa as kc
from malcapture.config import save as ks
from malcapture.errors import ConfigError
from tests.helpers import (
    CREDS,
    MAL,
    SMALL_CONFIG,
    TOKENS,
    MalStandIn,
    as_pid_1,
    desktop_login,
    first_hit,
    needs_root,
    run_cli,
    save,
    spawn_cli,
    stored,
)

ALICE, KOMETA_USER, KOMETA_GROUP = 61234, 61235, 61236  # throwaway ids: no account needs to exist


@contextlib.contextmanager
def acting_as(uid: int, gid: int, groups: list[int]) -> Iterator[None]:
    """This process, for a moment, with another user's rights (root can always come back)."""
    os.setgroups(groups)
    os.setegid(gid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups([])


def test_a_full_disk_under_a_single_file_bind_mount_leaves_the_config_whole(tmpfs: Path, tmp_path: Path) -> None:
    source = tmpfs / "config.yml"
    source.write_text(SMALL_CONFIG + "# padding\n" * 300)
    filler = os.open(tmpfs / "filler", os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):
        while os.write(filler, b"x" * 1024):
            pass
    os.close(filler)
    before = source.read_bytes()
    container = tmp_path / "container"
    container.mkdir()
    target = container / "config.yml"
    target.touch()
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    try:
        with pytest.raises(ConfigError) as failure:
            save(target)
        assert target.read_bytes() == before
        assert "full" in failure.value.advice
        os.unlink(tmpfs / "filler")  # space again: now it is written in place, whole
        saved = save(target)
        assert TOKENS.access_token in target.read_text()
        assert any("mounted on its own" in line for line in saved.changes)
    finally:
        subprocess.run(["umount", str(target)], check=False)


def acl(*entries: tuple[int, int, int]) -> bytes:
    """system.posix_acl_access, as the kernel stores it: version 2, then (tag, permissions, id) entries."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder other users can reach (pytest's own are root's alone)."""
    needs_root()
    folder = Path(tempfile.mkdtemp(prefix="malcapture-users-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def owned_config(folder: Path, uid: int, gid: int, mode: int) -> Path:
    folder.mkdir(exist_ok=True)
    os.chown(folder, ALICE, ALICE)
    path = folder / "config.yml"
    path.write_text(SMALL_CONFIG)
    os.chown(path, uid, gid)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("who", ["alice", "root"])
def test_group_acl_and_xattrs_are_kept(shared_folder: Path, who: str) -> None:
    path = owned_config(shared_folder / "kometa", ALICE, KOMETA_GROUP, 0o640)
    undefined = 0xFFFFFFFF
    entries = acl(
        (0x01, 6, undefined), (0x02, 4, KOMETA_USER), (0x04, 4, undefined), (0x10, 4, undefined), (0x20, 0, undefined)
    )
    os.setxattr(path, "system.posix_acl_access", entries)
    os.setxattr(path, "user.origin", b"kometa-setup")
    if who == "alice":
        with acting_as(ALICE, ALICE, [KOMETA_GROUP]):
            save(path)
    else:
        save(path)
    info = path.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (ALICE, KOMETA_GROUP, 0o640)
    assert os.getxattr(path, "user.origin") == b"kometa-setup"
    assert os.getxattr(path, "system.posix_acl_access") == entries
    assert TOKENS.access_token in path.read_text()
    with acting_as(KOMETA_USER, KOMETA_USER, []):  # Kometa's user reads it through the ACL
        assert TOKENS.access_token in path.read_text()


def test_a_file_owned_by_another_user_is_written_in_place_keeping_its_owner(shared_folder: Path) -> None:
    path = owned_config(shared_folder / "kometa", KOMETA_USER, KOMETA_GROUP, 0o660)
    inode = path.stat().st_ino
    with acting_as(ALICE, ALICE, [KOMETA_GROUP]):
        save(path)
    info = path.stat()
    assert (info.st_uid, info.st_gid, info.st_ino) == (KOMETA_USER, KOMETA_GROUP, inode)
    assert TOKENS.access_token in path.read_text()


def test_a_hard_link_sees_the_new_tokens(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(SMALL_CONFIG)
    os.link(path, tmp_path / "kometa-config.yml")
    save(path)
    assert TOKENS.access_token in (tmp_path / "kometa-config.yml").read_text()


def test_stale_temporary_files_never_block_a_save(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(SMALL_CONFIG)
    stale = [tmp_path / ".config.yml.malcapture-1.tmp", tmp_path / ".config.yml.abc123.malcapture.tmp"]
    for leftover in stale:
        leftover.write_text("tokens of a killed run")
        os.utime(leftover, (time.time() - 60, time.time() - 60))
    save(path)
    assert TOKENS.access_token in path.read_text()
    assert not any(leftover.exists() for leftover in stale)
    assert not list(tmp_path.glob(".*.tmp"))


async def test_a_save_as_pid_1_is_not_blocked_by_an_earlier_pid_1(mal: MalStandIn, config: Path) -> None:
    needs_root()
    stored(mal, config)
    (config.parent / ".config.yml.malcapture-1.tmp").write_text("left by a kill -9")
    os.utime(config.parent / ".config.yml.malcapture-1.tmp", (time.time() - 60, time.time() - 60))
    process = await asyncio.create_subprocess_exec(
        *as_pid_1("refresh", "-c", str(config)),
        env=mal.env(),
        stdin=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert "Refreshed" in err.decode()


def test_a_changed_file_is_never_replaced_with_content_made_from_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(SMALL_CONFIG + "# added meanwhile\n")
    with pytest.raises(atomic.ChangedMeanwhile):
        atomic.replace_file(path, b"new", old=SMALL_CONFIG.encode())
    assert path.read_text().endswith("# added meanwhile\n")


def test_a_line_appended_after_the_save_was_worked_out_is_kept(tmp_path: Path) -> None:
    """The save is planned while the account check runs; a line Kometa (or the user) appends meanwhile is
    found when the file is read again, and the values are spliced into what is there now."""
    path = tmp_path / "config.yml"
    path.write_text(SMALL_CONFIG)
    config = kc.load(path)
    planned = plan.plan_save(config, MAL.place(), MAL.wants(TOKENS, CREDS), {})
    with open(path, "a") as handle:
        handle.write("added: while saving\n")
    ks.save(config, MAL.place(), MAL.wants(TOKENS, CREDS), {}, planned=planned)
    text = path.read_text()
    assert text.endswith("added: while saving\n")
    assert TOKENS.access_token in text


def test_a_backup_malcapture_did_not_write_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(SMALL_CONFIG)
    (tmp_path / "config.yml.bak").write_text("the user's own backup")
    saved = save(path)
    assert (tmp_path / "config.yml.bak").read_text() == "the user's own backup"
    assert (tmp_path / "config.yml.malcapture.bak").read_text() == SMALL_CONFIG
    assert any("was not written by malcapture" in line for line in saved.changes)


def test_a_backup_path_that_is_a_folder_gets_advice_that_fits(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(SMALL_CONFIG)
    (tmp_path / "config.yml.bak").mkdir()
    save(path)  # the folder is left alone, the backup goes beside it
    assert (tmp_path / "config.yml.malcapture.bak").read_text() == SMALL_CONFIG


async def test_a_fifo_as_config_is_refused_at_once(mal: MalStandIn, tmp_path: Path) -> None:
    fifo = tmp_path / "config.yml"
    os.mkfifo(fifo)
    result = await run_cli("check", "-c", str(fifo), env=mal.env(), timeout=5)
    assert result.code == 3
    assert "not a regular file" in result.err


REFUSED = [
    ("tok: &t {refresh_token: RT}\nmal:\n  client_id: abc\n  authorization: *t\n", "alias"),
    ("mal:\n  client_id: abc\n  authorization: &a\n    refresh_token: RT\nother: *a\n", "anchor &a"),
    ("d: &d\n  mal:\n    authorization:\n      refresh_token: RT\n<<: *d\n", "merge key"),
    ("settings:\n  cache: true\n...\n", "read back"),  # a mal: appended after the end marker would be ignored
]


@pytest.mark.parametrize(("text", "why"), REFUSED[:3], ids=["alias", "anchor-used-elsewhere", "merge"])
async def test_a_save_that_would_be_refused_spends_no_refresh_token(
    mal: MalStandIn, tmp_path: Path, text: str, why: str
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(text.replace("RT", str(mal.fake.issue_tokens(mal.app.client_id)["refresh_token"])))
    before = config.read_bytes()
    args = ("refresh", "-c", str(config), "--client-id", mal.app.client_id, "--client-secret", str(mal.app.secret))
    result = await run_cli(*args, env=mal.env())
    assert result.code == 3, result.err
    assert why in result.err
    assert mal.fake.hits["/v1/oauth2/token"] == 0
    assert config.read_bytes() == before


@pytest.mark.parametrize(("text", "why"), REFUSED, ids=["alias", "anchor-used-elsewhere", "merge", "end-marker"])
async def test_a_save_that_would_be_refused_opens_no_browser(
    mal: MalStandIn, tmp_path: Path, scripted_browser: Callable[..., Path], text: str, why: str
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(text.replace("RT", "def50200abc"))
    before = config.read_bytes()
    result = await desktop_login(mal, config, scripted_browser())
    assert result.code == 3, result.err
    assert why in result.err
    assert "/authorize?" not in result.err
    assert not (tmp_path / "browser.json").exists()
    assert config.read_bytes() == before


async def test_an_alias_used_as_a_value_is_replaced_by_the_new_one(
    mal: MalStandIn, tmp_path: Path, scripted_browser: Callable[..., Path]
) -> None:
    config = tmp_path / "config.yml"
    config.write_text("x: &tok abc\nmal:\n  authorization:\n    access_token: *tok\ny: *tok\n")
    result = await desktop_login(mal, config, scripted_browser())
    assert result.code == 0, result.err
    text = config.read_text()
    assert text.startswith("x: &tok abc\nmal:\n")
    assert "access_token: *tok" not in text
    assert text.endswith("y: *tok\n")


async def test_sigterm_during_a_refresh_lets_the_save_finish(mal: MalStandIn, config: Path) -> None:
    old = stored(mal, config)
    mal.fake.slow["/v1/oauth2/token"] = 1.0
    process = await spawn_cli("refresh", "-c", str(config), env=mal.env())
    await first_hit(mal.fake, "/v1/oauth2/token")
    process.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 130
    assert "once the new tokens were saved" in err.decode()
    assert str(old["refresh_token"]) not in config.read_text()
    mal.fake.slow.clear()
    check = await run_cli("check", "-c", str(config), env=mal.env())
    assert check.code == 0, check.err


async def test_tokens_that_cannot_be_saved_go_to_a_file_as_well(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    config.with_name("config.yml.bak").mkdir()  # in the way of the backup…
    config.with_name("config.yml.malcapture.bak").mkdir()  # …and of its fallback: the save fails
    before = config.read_bytes()
    result = await run_cli("refresh", "-c", str(config), env=mal.env())
    assert result.code == 3, result.err
    assert config.read_bytes() == before
    kept = list(config.parent.glob("malcapture-tokens-*.yml"))
    assert len(kept) == 1
    assert f"and in {kept[0]}" in result.err
    assert oct(kept[0].stat().st_mode & 0o777) == "0o600"
    assert kept[0].read_text() == result.out  # the same mal: block, also on stdout
    assert "A folder is in the way" in result.err


def test_a_token_that_cannot_be_written_as_text_is_a_clear_error() -> None:
    from malcapture.answers import issued
    from malcapture.errors import ServiceError
    from malcapture.http import Answer
    from malcapture.services.mal import read_tokens

    answer = Answer(
        200, '{"access_token": "abc\\ud800", "expires_in": 60, "refresh_token": "def"}', "application/json", None
    )
    with pytest.raises(ServiceError, match="cannot be written as text"):
        issued(answer, "MyAnimeList", "refresh", "malcapture", read_tokens)


async def test_tokens_that_are_not_text_are_kept_escaped_and_the_config_unchanged(
    mal: MalStandIn, config: Path
) -> None:
    from malcapture.standins.base import Scripted

    stored(mal, config)
    before = config.read_bytes()
    broken = '{"token_type": "Bearer", "expires_in": 2678400, "access_token": "eyJ\\ud800", "refresh_token": "def502"}'
    mal.fake.script("/v1/oauth2/token", Scripted(200, broken))
    result = await run_cli("refresh", "-c", str(config), env=mal.env())
    assert result.code == 1, result.err
    assert "cannot be written as text" in result.err
    assert "Traceback" not in result.err
    assert config.read_bytes() == before
    kept = list(config.parent.glob("malcapture-tokens-*.yml"))
    assert len(kept) == 1
    assert f"and in {kept[0]}" in result.err
    assert '"refresh_token": "def502"' in kept[0].read_text()
    assert "\\ud800" in kept[0].read_text()
