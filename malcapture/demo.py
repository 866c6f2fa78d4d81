"""`malcapture demo`: the real logins against the built-in MyAnimeList and Trakt stand-ins, on loopback.

On a desktop the real browser opens at the stand-ins' pages; where none can be opened (headless,
CI) the demo plays the browser and the user itself, so that it completes unattended.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import shutil
import tempfile
from pathlib import Path

from malcapture import browser, fakemal, faketrakt, flow, lifecycle, trakt_flow
from malcapture.ports import free_port
from malcapture.sections import MAL, TRAKT
from malcapture.session import Io, LoginOptions
from malcapture.ui import Reporter

SAMPLE_CONFIG = """\
## A small Kometa config.yml for malcapture's demo. Only the mal: and trakt: values below will change.
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
trakt:
  client_id:
  client_secret:
  pin:
  authorization:
    access_token:
    token_type:
    expires_in:
    refresh_token:
    scope:
    created_at:
"""


def shorten_tokens(text: str) -> str:
    return re.sub(r"((?:access|refresh)_token: )(\S{6})\S+", r"\1\2…", text)


async def run(reporter: Reporter, keep: bool = False) -> None:
    mal, trakt = fakemal.FakeMal(), faketrakt.FakeTrakt()
    mal_runner, mal_base = await fakemal.serve(mal)
    trakt_runner, trakt_base = await faketrakt.serve(trakt)
    folder = Path(tempfile.mkdtemp(prefix="malcapture-demo-"))
    try:
        config = folder / "config.yml"
        config.write_text(SAMPLE_CONFIG, encoding="utf-8")
        env = {
            **os.environ,
            "MALCAPTURE_OAUTH_URL": f"{mal_base}/v1/oauth2",
            "MALCAPTURE_API_URL": f"{mal_base}/v2",
            **faketrakt.env_for(trakt_base),
        }
        reporter.info(
            f"Demo: stand-ins for MyAnimeList ({mal_base}) and Trakt ({trakt_base}) run here; "
            f"the config is a scratch copy at {config}."
        )
        headless = browser.headless_reason(env)
        if headless:
            reporter.info(f"No browser can open ({headless}), so the demo clicks and approves itself.")
        await _mal(mal, config, env, headless, reporter)
        await _trakt(trakt, config, env, headless, reporter)
        diff = difflib.unified_diff(
            SAMPLE_CONFIG.splitlines(True), config.read_text("utf-8").splitlines(True), "before", "after"
        )
        reporter.info("What changed in the config:")
        reporter.info(shorten_tokens("".join(diff)).rstrip())
        for section in (MAL, TRAKT):
            checked = await lifecycle.check(lifecycle.Job(config, section, env, reporter))
            reporter.info(f"`{lifecycle.command(section, 'check')}` would say: it belongs to {checked.account}.")
    finally:
        await mal_runner.cleanup()
        await trakt_runner.cleanup()
        if keep:
            reporter.info(f"The demo's files are kept in {folder} (--keep).")
        else:
            shutil.rmtree(folder, ignore_errors=True)


async def _mal(
    fake: fakemal.FakeMal, config: Path, env: dict[str, str], headless: str | None, reporter: Reporter
) -> None:
    redirect = f"http://localhost:{free_port()}/"
    app = fake.register(redirect)
    reporter.info("— MyAnimeList: the loopback login —")
    opts = LoginOptions(config, app.client_id, app.secret, redirect_uri=redirect, timeout=120, yes=True)
    io = Io(reporter, env=env)
    if headless:
        io.open_browser, io.headless = _scripted_browser, lambda env: None
    result = await flow.login(opts, io)
    reporter.info(f"Authorized as {result.account} — saved to {result.saved_to}.")


async def _trakt(
    fake: faketrakt.FakeTrakt, config: Path, env: dict[str, str], headless: str | None, reporter: Reporter
) -> None:
    app = fake.register()
    reporter.info("— Trakt: the device flow —")
    opts = LoginOptions(config, app.client_id, app.secret, timeout=120, yes=True, section=TRAKT)
    io = Io(reporter, env=env)
    user = asyncio.ensure_future(_approve_when_asked(fake)) if headless else None
    try:
        result = await trakt_flow.login(opts, io)
    finally:
        if user is not None:
            user.cancel()
    reporter.info(f"Authorized as {result.account} — saved to {result.saved_to}.")


async def _approve_when_asked(fake: faketrakt.FakeTrakt) -> None:
    """The user, on another device: sees the code, enters it at Trakt, approves."""
    while not fake.devices:  # noqa: ASYNC110 (the stand-in only records; there is no event to await)
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)
    for device in fake.devices.values():
        fake.decide(device.user_code)


def _scripted_browser(url: str) -> bool:
    # Called on its own thread, like a browser process of its own.
    status, _ = asyncio.run(fakemal.play_browser(url))
    return status == 200
