"""`malcapture demo`: every service's real login against its built-in stand-in, on loopback.

On a desktop the real browser opens at the stand-ins' pages; where none can be opened (headless,
CI) the demo plays the browser and the user itself, so that it completes unattended.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from malcapture import browser, lifecycle, standins
from malcapture.login.contract import LoginResult
from malcapture.login.io import Clock, Io, SystemClock
from malcapture.services import SERVICES
from malcapture.standins.base import Demo, beside
from malcapture.ui import Reporter

HEADER = """\
## A small Kometa config.yml for malcapture's demo. Only the values of the last sections will change.
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
"""
SAMPLE_CONFIG = HEADER + "".join(service.code.sample for service in SERVICES)


def shorten_tokens(text: str) -> str:
    return re.sub(r"((?:access_token|refresh_token|token): )(\S{6})\S+", r"\1\2…", text)


async def run(reporter: Reporter, keep: bool = False, clock: Clock | None = None) -> None:
    """`clock`: the time the logins and the stand-ins share (a test's makes the polls pass at once)."""
    clock = clock or SystemClock()
    folder = Path(tempfile.mkdtemp(prefix="malcapture-demo-"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            parts = [await stack.enter_async_context(standins.for_service(service).demo()) for service in SERVICES]
            env = {**os.environ, **{name: value for part in parts for name, value in part.env.items()}}
            config = folder / "config.yml"
            config.write_text(SAMPLE_CONFIG, encoding="utf-8")
            titles = ", ".join(service.title for service in SERVICES)
            reporter.info(f"Demo: stand-ins for {titles} run here; the config is a scratch copy at {config}.")
            headless = browser.headless_reason(env)
            if headless:
                reporter.info(f"No browser can open ({headless}), so the demo clicks and approves itself.")
            for service, part in zip(SERVICES, parts, strict=True):
                reporter.info(f"— {service.title}: {part.how} —")
                result = await play(part, config, Io(reporter, env=env, clock=clock), headless is not None)
                who = f" as {result.account.name}" if result.account else ""
                reporter.info(f"{service.done}{who} — saved to {result.saved_to}.")
            diff = difflib.unified_diff(
                SAMPLE_CONFIG.splitlines(True), config.read_text("utf-8").splitlines(True), "before", "after"
            )
            reporter.info("What changed in the config:")
            reporter.info(shorten_tokens("".join(diff)).rstrip())
            for service in SERVICES:
                checked = await lifecycle.check(lifecycle.Job(config, service, env, reporter))
                reporter.info(f"`{service.command('check')}` would say: it belongs to {checked.account}.")
    finally:
        if keep:
            reporter.info(f"The demo's files are kept in {folder} (--keep).")
        else:
            shutil.rmtree(folder, ignore_errors=True)


async def serve(reporter: Reporter, out: Callable[[str], None]) -> None:
    """The stand-ins alone, until stopped: the variables that point malcapture at them on standard output (to
    `export` in another shell), an app registered at each with its client ID and secret, so that every command
    (login, --manual, --link, check, refresh, status) can be tried against them."""
    import asyncio

    async with contextlib.AsyncExitStack() as stack:
        parts = [await stack.enter_async_context(standins.for_service(service).demo()) for service in SERVICES]
        out(
            "# malcapture's stand-ins: run these in another shell, then any malcapture command (Ctrl-C here stops them)"
        )
        for service, part in zip(SERVICES, parts, strict=True):
            for name, value in part.env.items():
                out(f"export {name}={value}")
            opts = part.options(Path("config.yml"), True)
            app = f": --client-id {opts.client_id} --client-secret {opts.client_secret}" if opts.client_id else ""
            redirect = f" --redirect-uri {opts.redirect_uri}" if opts.redirect_uri else ""
            server = f": a Plex Media Server at --url {opts.url}" if opts.url else ""
            out(f"# {service.title}{app}{redirect}{server}")
        reporter.info("Serving the stand-ins until Ctrl-C; nothing leaves this machine.")
        await asyncio.Event().wait()


async def play(part: Demo, config: Path, io: Io, headless: bool) -> LoginResult:
    """One service's login against its stand-in, on the demo's clock; where no browser can open, the
    demo plays the user too."""
    part.stand_in.clock = io.clock.wall
    opts = part.options(config, headless)
    user = part.user(io) if headless else None
    return await beside(opts.service.code.login_async(opts, io), user)
