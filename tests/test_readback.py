"""Re-reading only the mal: entry before a save: where that is enough, and that doubt means the whole file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from malcapture.config import kometa as kc
from malcapture.config import plan
from malcapture.config.readback import section_window
from malcapture.config.splice import Edit, Splicer, Updates, apply
from malcapture.errors import ConfigError
from tests.helpers import CREDS, TOKENS, reads_back, save

MAL_ENTRY = "mal:\n  client_id: old   # mine\n  authorization:\n    access_token:\n# note\n"
MIDDLE = f"settings:\n  cache: true\n{MAL_ENTRY}plex:\n  url: x\n"


def window_of(path: Path) -> tuple[str, str] | None:
    """The old and the new text of the window the save would re-read, or None for the whole file."""
    config = kc.load(path)
    updates: Updates = {"client_id": CREDS.client_id, "authorization": {"access_token": TOKENS.access_token}}
    edits = Splicer(config.text, config.newline, config.documents == 1).section(config.root, "mal", updates)
    window = section_window(config.text, config.root, edits, "mal")
    if window is None:
        return None
    new = apply(config.text, edits)
    start, end = window
    return config.text[start:end], new[start : end + len(new) - len(config.text)]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_window_is_the_whole_mal_entry_and_nothing_else(tmp_path: Path) -> None:
    found = window_of(write(tmp_path, MIDDLE))
    assert found is not None
    old, new = found
    assert old == MAL_ENTRY
    assert new.startswith("mal:\n  client_id: 0123")
    assert new.endswith("# note\n")


def test_a_missing_mal_is_appended_and_only_it_is_reread(tmp_path: Path) -> None:
    found = window_of(write(tmp_path, "settings:\n  cache: true\n"))
    assert found is not None
    assert found[0] == ""
    assert found[1].startswith("mal:\n  client_id: ")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("settings: {}\nmal:\n  extra: &id old\nplex:\n  id: *id\n", "an anchor other entries may alias"),
        ("%YAML 1.1\n---\nsettings: {}\nmal:\n  client_id: old\n", "a directive"),
        ("settings:\n  cache: true\n...\n", "an end marker: what follows is another document"),
        ("{settings: {}, mal: {client_id: old}}\n", "a flow-style root"),
    ],
)
def test_unusual_files_are_reread_whole(tmp_path: Path, text: str, why: str) -> None:
    assert window_of(write(tmp_path, text)) is None, why


def test_a_mal_appended_after_an_end_marker_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = write(tmp_path, "settings:\n  cache: true\n...\n")
    with pytest.raises(ConfigError, match="could not change"):
        save(path)
    assert path.read_text() == "settings:\n  cache: true\n...\n"


@pytest.mark.parametrize(
    "broken",
    [
        'mal:\n  client_id: "0123\n  authorization:\nplex:\n  url: x\n',  # an unclosed quote swallows the rest
        "mal:\n  client_id: other\nplex:\n  url: x\n",  # reads back, but not as intended
    ],
)
def test_a_splice_that_reads_back_wrong_is_refused(tmp_path: Path, broken: str) -> None:
    config = kc.load(write(tmp_path, "mal:\n  client_id: old\nplex:\n  url: x\n"))
    edit = Edit(0, len("mal:\n  client_id: old\n"), broken[: broken.index("plex:")])
    with pytest.raises(ConfigError, match="did not read back as intended"):
        plan.verify(config, apply(config.text, [edit]), [edit], {"mal": {"client_id": CREDS.client_id}})


def test_every_real_config_needs_only_its_mal_entry_reread(working_config: Path, tmp_path: Path) -> None:
    target = tmp_path / working_config.name
    shutil.copyfile(working_config, target)
    assert window_of(target) is not None
    save(target)  # and the result reads back as intended
    reads_back(target)
