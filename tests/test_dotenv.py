"""The `.env` beside the config, as Kometa's reader (python-dotenv) reads it: one reading with its BOM kept,
values written so that they read back exactly (or refused), comments kept, no file left half-changed, the
environment that shadows it said, and a FIFO refused (the second hostile round, through the real command)."""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import given
from hypothesis import strategies as st

from malcapture.config.dotenv import DotEnv, quoted, unwritable
from malcapture.errors import ConfigError
from malcapture.standins.base import Scripted
from tests.helpers import MalStandIn, run_cli, run_here


def held_config(config: Path, mal: MalStandIn) -> dict[str, str | int]:
    """A config whose tokens Kometa reads from .env (placeholders), and that .env."""
    tokens = mal.fake.issue_tokens(mal.app.client_id)
    config.write_text(
        f"mal:\n  client_id: {mal.app.client_id}\n  client_secret: {mal.app.secret}\n  authorization:\n"
        "    access_token: <<MAL_ACCESS_TOKEN>>\n    token_type: Bearer\n    expires_in: 2678400\n"
        "    refresh_token: <<MAL_REFRESH_TOKEN>>\n"
    )
    return tokens


def read_back(dotenv: Path) -> dict[str, str | None]:
    return dict(dotenv_values(dotenv))  # interpolation on, as Kometa's load_dotenv reads it


async def test_a_dotenv_with_a_byte_order_mark_is_read_once_and_keeps_it(mal: MalStandIn, config: Path) -> None:
    old = held_config(config, mal)
    dotenv = config.parent / ".env"
    dotenv.write_bytes(
        codecs.BOM_UTF8
        + f"KOMETA_MAL_ACCESS_TOKEN={old['access_token']}\nKOMETA_MAL_REFRESH_TOKEN={old['refresh_token']}\n".encode()
    )
    result = await run_cli("refresh", "-c", str(config), env=mal.env())
    assert result.code == 0, result.err
    assert dotenv.read_bytes().startswith(codecs.BOM_UTF8)
    values = read_back(dotenv)
    assert values["KOMETA_MAL_REFRESH_TOKEN"] in mal.fake.refresh_tokens
    assert f"saved to {dotenv}" in result.err  # the config is byte for byte what it was, and it is said so
    assert "Changed line" not in result.err


async def test_an_inline_comment_on_a_dotenv_line_is_kept(mal: MalStandIn, config: Path) -> None:
    old = held_config(config, mal)
    dotenv = config.parent / ".env"
    dotenv.write_text(
        f"KOMETA_MAL_ACCESS_TOKEN={old['access_token']}   # rotated monthly\n"
        f'export KOMETA_MAL_REFRESH_TOKEN="{old["refresh_token"]}" # the live one\n'
    )
    result = await run_here("refresh", "-c", str(config), env=mal.env())
    assert result.code == 0, result.err
    lines = dotenv.read_text().splitlines()
    assert lines[0].endswith("   # rotated monthly")
    assert lines[1].startswith('export KOMETA_MAL_REFRESH_TOKEN="')
    assert lines[1].endswith('" # the live one')
    assert read_back(dotenv)["KOMETA_MAL_REFRESH_TOKEN"] in mal.fake.refresh_tokens


@pytest.mark.parametrize(
    ("hostile", "said"),
    [
        ('abc"\nKOMETA_PLEX_TOKEN=stolen', "holding a control character"),
        ("abc${HOME}def", "python-dotenv (Kometa's reader) would expand"),
        ("tab\there", "holding a control character"),
        ("<<trakt-client-secret>>", "would read as a <<placeholder>>"),
    ],
    ids=["quote-and-line-break", "interpolation", "control-character", "placeholder"],
)
async def test_a_token_that_dotenv_cannot_carry_is_refused_and_printed_not_injected(
    mal: MalStandIn, config: Path, hostile: str, said: str
) -> None:
    old = held_config(config, mal)
    dotenv = config.parent / ".env"
    dotenv.write_text(
        f"KOMETA_MAL_ACCESS_TOKEN={old['access_token']}\nKOMETA_MAL_REFRESH_TOKEN={old['refresh_token']}\n"
    )
    before_env, before = dotenv.read_bytes(), config.read_bytes()
    answer = {"token_type": "Bearer", "expires_in": 2678400, "access_token": hostile, "refresh_token": "def50200x"}
    mal.fake.script("/v1/oauth2/token", Scripted(200, json.dumps(answer)))
    result = await run_cli("refresh", "-c", str(config), env=mal.env())
    assert result.code in (1, 3), result.err
    assert said in result.err
    assert dotenv.read_bytes() == before_env
    assert config.read_bytes() == before
    assert "KOMETA_PLEX_TOKEN" not in read_back(dotenv)
    assert "def50200x" in result.out  # issued tokens are never dropped: printed


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_every_value_dotenv_can_carry_reads_back_exactly(tmp_path_factory: pytest.TempPathFactory, value: str) -> None:
    if unwritable(value) is not None:
        return
    path = tmp_path_factory.mktemp("env") / ".env"
    path.write_text("A=1 # keep\nKOMETA_X=old\nB='two'\n")
    found = DotEnv(path, path.read_bytes(), path.read_text())
    path.write_bytes(found.with_value("KOMETA_X", value))
    assert dotenv_values(path) == {"A": "1", "KOMETA_X": value, "B": "two"}
    assert quoted(value) in path.read_text()


def test_a_value_with_backslashes_and_quotes_reads_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("KOMETA_X=old\n")
    value = "a\\\\b'c\"d\\'"
    path.write_bytes(DotEnv(path, path.read_bytes(), path.read_text()).with_value("KOMETA_X", value))
    assert dotenv_values(path)["KOMETA_X"] == value


async def test_a_failed_config_save_puts_the_dotenv_back(mal: MalStandIn, config: Path) -> None:
    """Tokens into .env, expires_in into config.yml: when the config cannot be written, .env is put back,
    the tokens are printed, and neither file is half-changed."""
    old = held_config(config, mal)
    config.write_text(config.read_text().replace("expires_in: 2678400", "expires_in: 1"))
    dotenv = config.parent / ".env"
    dotenv.write_text(
        f"KOMETA_MAL_ACCESS_TOKEN={old['access_token']}\nKOMETA_MAL_REFRESH_TOKEN={old['refresh_token']}\n"
    )
    config.with_name("config.yml.bak").mkdir()  # in the way of the config's backup…
    config.with_name("config.yml.malcapture.bak").mkdir()  # …and of its fallback: the config's save fails
    before_env, before = dotenv.read_bytes(), config.read_bytes()
    result = await run_cli("refresh", "-c", str(config), env=mal.env())
    assert result.code == 3, result.err
    assert dotenv.read_bytes() == before_env
    assert config.read_bytes() == before
    assert "refresh_token" in result.out


async def test_dotenv_values_also_set_in_the_environment_are_said_before_the_spend(
    mal: MalStandIn, config: Path
) -> None:
    old = held_config(config, mal)
    dotenv = config.parent / ".env"
    dotenv.write_text(
        f"KOMETA_MAL_ACCESS_TOKEN={old['access_token']}\nKOMETA_MAL_REFRESH_TOKEN={old['refresh_token']}\n"
    )
    env = mal.env(KOMETA_MAL_REFRESH_TOKEN=str(old["refresh_token"]))  # docker compose's env_file: put it there
    result = await run_here("refresh", "-c", str(config), env=env)
    assert result.code == 0, result.err
    warned = result.err.index("is set in this environment as well as in")
    assert warned < result.err.index("Refreshed")
    assert "docker compose up -d --force-recreate" in result.err


async def test_a_dotenv_that_is_a_fifo_is_refused_not_waited_on(mal: MalStandIn, config: Path) -> None:
    held_config(config, mal)
    os.mkfifo(config.parent / ".env")
    result = await run_cli("status", "-c", str(config), env=mal.env(), timeout=30)
    assert result.code != 0
    assert ".env is not a regular file" in result.out + result.err


def test_reading_a_dotenv_that_is_a_device_is_a_config_error(tmp_path: Path) -> None:
    from malcapture.config import dotenv

    with pytest.raises(ConfigError, match="not a regular file"):
        dotenv.read(Path("/dev/zero"))
