"""The config writer: the mal: values change, and not one byte more; failures lose nothing."""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from malcapture.config import kometa as kc
from malcapture.errors import ConfigError
from malcapture.login.contract import Credentials
from tests.helpers import (
    BROKEN,
    CREDS,
    MAL,
    SMALL_CONFIG,
    TOKENS,
    mal_tokens,
    reads_back,
    run_without_privileges,
    save,
    shared_data,
    without_our_values,
)

OURS = ("client_id", "client_secret", "localhost_url", "access_token", "token_type", "expires_in", "refresh_token")


def assert_only_our_values_changed(
    before: bytes, after: bytes, keys: tuple[str, ...] = OURS, name: str = "mal"
) -> None:
    old, new = without_our_values(before, keys), without_our_values(after, keys)
    # What the writer adds must be whole lines of ours; everything else in order and unchanged.
    added = list(new)
    for line in old:
        assert line in added, f"a line was lost or changed: {line!r}"
        del added[: added.index(line) + 1]
    inserted = [line for line in new if line not in old]
    assert all(re.match(rf"^\s*({name}|authorization|" + "|".join(keys) + r"):\r?$", line) for line in inserted), (
        inserted
    )


def test_every_real_config_keeps_every_other_byte(real_config: Path, tmp_path: Path) -> None:
    source = real_config
    target = tmp_path / source.name
    shutil.copyfile(source, target)
    if source.name in BROKEN:
        with pytest.raises(ConfigError, match=r"line \d+, column \d+"):
            save(target)
        assert target.read_bytes() == source.read_bytes()
        return
    save(target)
    assert_only_our_values_changed(source.read_bytes(), target.read_bytes())
    rest = YAML(typ="safe").load(target.read_bytes().decode("utf-8-sig"))
    assert rest["mal"]["authorization"] == TOKENS.as_mapping()
    assert rest["mal"]["client_id"] == CREDS.client_id
    original = shared_data(source)
    assert {k: v for k, v in rest.items() if k != "mal"} == {k: v for k, v in original.items() if k != "mal"}


def test_every_real_config_without_its_mal_section_gets_one_appended(working_config: Path, tmp_path: Path) -> None:
    source = working_config
    text = source.read_bytes().decode("utf-8")
    stripped = re.sub(r"(?ms)^mal:.*?(?=^\S|\Z)", "", text)
    target = tmp_path / source.name
    target.write_bytes(stripped.encode("utf-8"))
    save(target)
    after = target.read_bytes().decode("utf-8")
    assert after.startswith(stripped)
    assert re.search(r"^mal:\r?\n  client_id: ", after[len(stripped) :] if stripped.endswith("\n") else after, re.M)
    assert list(reads_back(target)) == ["client_id", "client_secret", "localhost_url", "authorization"]


def write(tmp_path: Path, text: str, raw: bytes | None = None) -> Path:
    path = tmp_path / "config.yml"
    path.write_bytes(raw if raw is not None else text.encode("utf-8"))
    return path


def test_crlf_and_bom_are_kept(tmp_path: Path) -> None:
    text = "plex:\r\n  url: x   # c\r\nmal:\r\n  client_id:\r\n  authorization:\r\n    access_token:\r\n"
    path = write(tmp_path, "", b"\xef\xbb\xbf" + text.encode())
    save(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfplex:\r\n  url: x   # c\r\nmal:\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    reads_back(path)


def test_comments_inside_authorization_odd_order_and_quotes_are_kept(tmp_path: Path) -> None:
    text = (
        "mal:\n"
        "  authorization:   # filled by malcapture\n"
        "    # everything below is autofilled\n"
        "    refresh_token: 'old'   # quoted\n"
        '    token_type: "Bearer"\n'
        '  client_secret: "x"\n'
        "  client_id: abc\n"
    )
    path = write(tmp_path, text)
    save(path)
    after = path.read_text()
    assert "  authorization:   # filled by malcapture\n    # everything below is autofilled\n" in after
    assert f"    refresh_token: 'def50200{'b' * 700}'   # quoted\n" in after
    assert '    token_type: "Bearer"\n' in after
    assert f'  client_secret: "{"f" * 64}"\n' in after
    assert after.index("refresh_token") < after.index("token_type") < after.index("access_token")
    reads_back(path)


def test_anchors_aliases_and_merge_keys_elsewhere_survive(tmp_path: Path) -> None:
    text = "defaults: &d\n  a: 1\nlib:\n  <<: *d\n  b: *d\nmal:\n  client_id: x\n"
    path = write(tmp_path, text)
    save(path)
    assert path.read_text().startswith("defaults: &d\n  a: 1\nlib:\n  <<: *d\n  b: *d\nmal:\n")
    reads_back(path)


def test_flow_style_mal_is_rewritten_as_an_equivalent(tmp_path: Path) -> None:
    path = write(tmp_path, "plex: {url: x}\nmal: {client_id: old, cache_expiration: 60}\n")
    save(path)
    mal = reads_back(path)
    assert mal["cache_expiration"] == 60
    assert path.read_text().startswith("plex: {url: x}\nmal: {")


def test_no_trailing_newline_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "settings:\n  cache: true\nmal:\n  client_id:\n  cache_expiration: 60")
    save(path)
    assert not path.read_text().endswith("\n")
    assert reads_back(path)["cache_expiration"] == 60


def test_placeholders_are_kept_and_resolved_from_env_and_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "mal:\n  client_id: <<mal-client-id>>\n  client_secret: <<MAL_CLIENT_SECRET>>\n")
    (tmp_path / ".env").write_text("KOMETA_MAL_CLIENT_SECRET='from-dotenv'\n")
    monkeypatch.setenv("KOMETA_MAL_CLIENT_ID", "from-env")
    config = kc.load(path)
    assert config.setting(MAL.place(), "client_id", os.environ) == "from-env"
    assert config.setting(MAL.place(), "client_secret", os.environ) == "from-dotenv"
    save(path, creds=Credentials("from-env", "from-dotenv"), env=dict(os.environ))
    assert "  client_id: <<mal-client-id>>\n  client_secret: <<MAL_CLIENT_SECRET>>\n" in path.read_text()


def test_stale_localhost_url_is_emptied(tmp_path: Path) -> None:
    path = write(tmp_path, "mal:\n  localhost_url: http://localhost/?code=def123  # old\n  client_id: a\n")
    save(path)
    assert "  localhost_url:  # old\n" in path.read_text()
    assert reads_back(path)["localhost_url"] is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: [1\n", "the end of the file"),
        ("a:\n\t- b\n", "tabs"),
        ("mal: 1\nmal: 2\n", "'mal' twice"),
        ("- a\n- b\n", "not a YAML mapping"),
        ("mal: [1]\n", "not a section"),
    ],
)
def test_invalid_configs_are_refused_with_a_clear_message(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(words)) as caught:
        save(path)
    assert caught.value.exit_code == 3
    assert path.read_text() == text


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        kc.load(tmp_path / "nope.yml")


def test_a_symlink_is_followed_and_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real" / "config.yml"
    real.parent.mkdir()
    real.write_text("mal:\n  client_id:\n")
    link = tmp_path / "config.yml"
    link.symlink_to(real)
    save(link)
    assert link.is_symlink()
    reads_back(real)
    assert (real.parent / "config.yml.bak").read_text() == "mal:\n  client_id:\n"


def test_mode_is_kept_and_backup_is_private(tmp_path: Path) -> None:
    path = write(tmp_path, "mal:\n  client_id:\n")
    path.chmod(0o640)
    saved = save(path)
    assert path.stat().st_mode & 0o777 == 0o640
    assert saved.backup is not None
    assert saved.backup.read_text() == "mal:\n  client_id:\n"
    assert saved.backup.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_refused_rename_falls_back_to_writing_in_place(tmp_path: Path) -> None:
    """What a single file bind-mounted into a container does: rename(2) fails with EBUSY."""
    path = write(tmp_path, "mal:\n  client_id:\n")
    inode = path.stat().st_ino
    refused: list[str] = []

    def rename(source: str, target: str) -> None:
        if target == str(path):
            refused.append(target)
            raise OSError(errno.EBUSY, "Device or resource busy")
        os.replace(source, target)

    save(path, rename=rename)
    assert refused == [str(path)]
    assert path.stat().st_ino == inode
    reads_back(path)
    assert (tmp_path / "config.yml.bak").read_text() == "mal:\n  client_id:\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_read_only_file_is_refused_before_anything_happens(tmp_path: Path) -> None:
    import sys

    path = write(tmp_path, "mal:\n  client_id: abc\n")
    path.chmod(0o444)
    result = run_without_privileges(
        sys.executable, "-m", "malcapture", "-c", str(path), "--manual", "--client-id", "x" * 32
    )
    if result is None:
        pytest.skip("needs root and setpriv to drop the privileges that override file modes")
    assert result.returncode == 3, result.stderr
    assert "not writable" in result.stderr
    assert "Open this URL" not in result.stderr  # refused before the browser step
    assert path.read_text() == "mal:\n  client_id: abc\n"


def test_a_read_only_folder_still_lets_the_file_be_saved(tmp_path: Path) -> None:
    import sys

    folder = tmp_path / "ro"
    folder.mkdir()
    path = write(folder, SMALL_CONFIG)
    folder.chmod(0o555)
    code = f"from pathlib import Path; from tests.helpers import save; print(save(Path({str(path)!r})).changes[-1])"
    result = run_without_privileges(sys.executable, "-c", code)
    folder.chmod(0o755)
    if result is None:
        pytest.skip("needs root and setpriv to drop the privileges that override file modes")
    assert result.returncode == 0, result.stderr
    assert "no backup was kept" in result.stdout
    assert TOKENS.access_token in path.read_text()
    assert sorted(p.name for p in folder.iterdir()) == ["config.yml"]


printable = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    access=printable,
    refresh=printable,
    expires=st.integers(min_value=0, max_value=10**9),
    other=st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), printable, max_size=4),
    crlf=st.booleans(),
)
def test_round_trip_of_generated_configs_and_tokens(
    tmp_path: Path, access: str, refresh: str, expires: int, other: dict[str, str], crlf: bool
) -> None:
    from malcapture.config.splice import render

    nl = "\r\n" if crlf else "\n"
    lines = [f"{k}: {render(v)}  # note" for k, v in other.items() if k != "mal"]
    text = nl.join([*lines, "mal:", "  client_id:", "  authorization:", "    access_token: old", ""])
    path = tmp_path / "generated.yml"
    path.write_bytes(text.encode("utf-8"))
    tokens = mal_tokens(access, refresh, expires)
    save(path, tokens)
    data = YAML(typ="safe").load(path.read_bytes().decode("utf-8"))
    assert data["mal"]["authorization"] == tokens.as_mapping()
    assert {k: v for k, v in data.items() if k != "mal"} == {k: v for k, v in other.items() if k != "mal"}
    assert path.read_bytes().decode().startswith(nl.join(lines))
