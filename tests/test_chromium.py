"""The login with a real browser: Debian's chromium, headless, launched by malcapture's own webbrowser call."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.helpers import CHROMIUM_FLAGS, MalStandIn, dumped_page, executable, port_is_free, run_cli


def chromium_launcher(tmp_path: Path, chromium: str) -> tuple[Path, Path]:
    """A BROWSER command, as a user might set one, that records the final page's DOM."""
    dom = tmp_path / "dom.html"
    script = executable(
        tmp_path / "chromium-headless",
        "#!/bin/sh\n"
        f'exec {chromium} {CHROMIUM_FLAGS} --user-data-dir="{tmp_path}/profile" --dump-dom "$1" '
        f'>"{dom}" 2>"{tmp_path}/chromium.log"\n',
    )
    return script, dom


@pytest.mark.chromium
async def test_real_chromium_completes_the_login_and_shows_the_account(
    mal: MalStandIn, config: Path, chromium: str
) -> None:
    launcher, dom = chromium_launcher(config.parent, chromium)
    mal.fake.consent = "allow"  # headless Chromium cannot click; MAL's consent step answers at once
    env = mal.env(BROWSER=str(launcher), DISPLAY=":99", HOME=str(config.parent))
    result = await run_cli(
        *mal.args(config),
        "--timeout",
        "60",
        env=env,
        timeout=90,
    )
    assert result.code == 0, result.err
    auth = YAML(typ="safe").load(config.read_text())["mal"]["authorization"]
    assert auth["access_token"] in mal.fake.access_tokens
    page = await dumped_page(dom)
    assert "Authorized as <b>kometa_fan</b>" in page
    assert str(config) in page
    assert port_is_free(mal.port)
