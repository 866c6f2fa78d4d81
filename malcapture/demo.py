"""`malcapture demo`: the real login flow against the built-in MyAnimeList stand-in, on loopback.

On a desktop the real browser opens at the stand-in's consent page; where none can be opened
(headless, CI) the demo plays the browser itself, so that it completes unattended.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import shutil
import tempfile
from pathlib import Path

from malcapture import browser, fakemal, flow, lifecycle
from malcapture.ports import free_port
from malcapture.session import Io, LoginOptions
from malcapture.ui import Reporter

SAMPLE_CONFIG = """\
## A small Kometa config.yml for malcapture's demo. Only the mal: values below will change.
libraries:
  Anime:                           # a library with its own settings
    collection_files:
      - default: basic
    overlay_files:
    - default: ribbon              # lists indented two ways stay as they are
settings:
  cache: true
  cache_expiration: 60
  asset_directory: 'config/assets'
plex:
  url: http://192.168.1.12:32400
  token: "<<plex-token>>"
mal:
  client_id:                       # Enter MyAnimeList Client ID
  client_secret:                   # Enter MyAnimeList Client Secret
  localhost_url: http://localhost/?code=stale-code-from-an-earlier-try
  authorization:
    # authorization section is autofilled by the script
    access_token:
    token_type:
    expires_in:
    refresh_token:
"""


def shorten_tokens(text: str) -> str:
    return re.sub(r"((?:access|refresh)_token: )(\S{6})\S+", r"\1\2…", text)


async def run(reporter: Reporter, keep: bool = False) -> None:
    fake = fakemal.FakeMal()
    runner, base = await fakemal.serve(fake)
    folder = Path(tempfile.mkdtemp(prefix="malcapture-demo-"))
    try:
        config = folder / "config.yml"
        config.write_text(SAMPLE_CONFIG, encoding="utf-8")
        redirect = f"http://localhost:{free_port()}/"
        app = fake.register(redirect)
        env = {**os.environ, "MALCAPTURE_OAUTH_URL": f"{base}/v1/oauth2", "MALCAPTURE_API_URL": f"{base}/v2"}
        headless = browser.headless_reason(env)
        reporter.info(f"Demo: a MyAnimeList stand-in runs at {base}; the config is a scratch copy at {config}.")
        opts = LoginOptions(config, app.client_id, app.secret, redirect_uri=redirect, timeout=120, yes=True)
        io = Io(reporter, env=env)
        if headless:
            reporter.info(f"No browser can open ({headless}), so the demo clicks Allow itself.")
            io.open_browser, io.headless = _scripted_browser, lambda env: None
        result = await flow.login(opts, io)
        reporter.info(f"Authorized as {result.account} — saved to {result.saved_to}. What changed:")
        diff = difflib.unified_diff(
            SAMPLE_CONFIG.splitlines(True), config.read_text("utf-8").splitlines(True), "before", "after"
        )
        reporter.info(shorten_tokens("".join(diff)).rstrip())
        checked = await lifecycle.check(config, env, reporter)
        reporter.info(f"`malcapture check` would say: MyAnimeList accepts the token of {checked.account}.")
    finally:
        await runner.cleanup()
        if keep:
            reporter.info(f"The demo's files are kept in {folder} (--keep).")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _scripted_browser(url: str) -> bool:
    # Called on its own thread, like a browser process of its own.
    status, _ = asyncio.run(fakemal.play_browser(url))
    return status == 200
