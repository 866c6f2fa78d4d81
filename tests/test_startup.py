"""What loads when: the browser opens before asyncio and aiohttp, and --help loads neither.

Not timed (that is `make bench`): these check the order, which a slow machine does not change.
"""

from __future__ import annotations

import asyncio
import os
import runpy
from collections.abc import Callable
from pathlib import Path

import pytest

from malcapture import browser
from tests.helpers import MalStandIn, executable, run_cli

HEAVY = ("asyncio", "aiohttp")


def imported(importtime_output: str) -> set[str]:
    """The modules named by `python -X importtime` lines (it prints each import as it completes)."""
    return {
        line.rsplit("|", 1)[-1].strip() for line in importtime_output.splitlines() if line.startswith("import time:")
    }


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in HEAVY}


async def test_the_browser_opens_before_asyncio_and_aiohttp_load(
    mal: MalStandIn, config: Path, tmp_path: Path, scripted_browser: Callable[..., Path]
) -> None:
    click = scripted_browser()
    # Like xdg-open, it takes a moment to work out what to run, then starts the browser and returns.
    launcher = executable(
        tmp_path / "launcher",
        f'#!/bin/sh\nsleep 0.2\necho "browser started" >&2\n"{click}" "$1" >/dev/null 2>&1 &\n',
    )
    env = mal.env(BROWSER=str(launcher), DISPLAY=":99", PYTHONPROFILEIMPORTTIME="1")
    result = await run_cli(*mal.args(config), env=env)
    assert result.code == 0, result.err[-2000:]
    before, marker, after = result.err.partition("browser started")
    assert marker, "the browser was not started"
    assert {"typer", "ruamel.yaml", "socket"} <= imported(before)  # the config was checked and the port bound first
    assert heavy(imported(before)) == set()
    assert {"asyncio", "aiohttp", "aiohttp.web"} <= imported(after)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["login", "--help"], ["refresh", "--help"]])
async def test_help_and_version_load_no_heavy_module(args: list[str]) -> None:
    result = await run_cli(*args, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert result.code == 0
    loaded = imported(result.err)
    assert "typer" in loaded
    assert heavy(loaded) == set()
    assert not {m for m in loaded if m.startswith("ruamel")}


def recording_browser(tmp_path: Path, name: str) -> tuple[Path, Path]:
    record = tmp_path / f"{name}.args"
    script = executable(tmp_path / name, f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\n')
    return script, record


def test_browser_takes_the_first_command_of_browser_that_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script, record = recording_browser(tmp_path, "second")
    monkeypatch.setenv("BROWSER", os.pathsep.join([str(tmp_path / "missing"), f"{script} --new-tab %s"]))
    assert browser.open_url("http://localhost:8080/?a=1&b=2")
    assert record.read_text().splitlines() == ["--new-tab", "http://localhost:8080/?a=1&b=2"]


def test_browser_without_placeholder_gets_the_url_as_its_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, record = recording_browser(tmp_path, "plain")
    monkeypatch.setenv("BROWSER", str(script))
    assert browser.open_url("http://localhost/")
    assert record.read_text().splitlines() == ["http://localhost/"]


def test_likely_to_open_guesses_from_the_arguments_and_the_display() -> None:
    desktop = {"DISPLAY": ":0"}
    assert browser.likely_to_open([], desktop)
    assert browser.likely_to_open(["-c", "config.yml", "--print"], desktop)
    assert not browser.likely_to_open(["--no-browser"], desktop)
    assert not browser.likely_to_open(["check"], desktop)
    assert not browser.likely_to_open([], {"DISPLAY": ":0", "SSH_CONNECTION": "a b c d"})


async def test_the_benchmark_times_a_real_login(mal: MalStandIn, tmp_path: Path) -> None:
    """`make bench`'s own parts (browser.sh, click_allow.py, the timing) on one malcapture login."""
    bench = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "bench.py"), run_name="bench")
    run = await asyncio.to_thread(bench["Bench"](mal.fake, mal.base, tmp_path).malcapture)
    assert 0 < run.browser_ms < run.done_ms
    assert run.rss_kib > 1024
    assert "Authorized as kometa_fan" in (tmp_path / "output.log").read_text()
