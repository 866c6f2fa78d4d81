"""The loopback login: bind, announce and open the browser (start.py), then wait for the redirect or a
paste and keep the tokens (capture.py).

The first half runs before asyncio and aiohttp are loaded (`make bench` measures what that saves);
capture.py, which brings them, is imported only once the browser has been asked to open.
"""

from __future__ import annotations

from concurrent.futures import wait

from malcapture import interrupts
from malcapture.login.contract import LoginOptions, LoginResult
from malcapture.login.io import Io
from malcapture.login.start import start

BROWSER_HEAD_START = 0.5  # seconds


def run(opts: LoginOptions, io: Io) -> LoginResult:
    """The whole login for a caller without an event loop (the CLI): asyncio loads after the browser opens."""
    started = start(opts, io)
    if started is None:
        return LoginResult(None, None, declined=True)
    # Let the browser command start before loading asyncio and aiohttp takes the CPU. Some commands
    # return only when the browser exits: no one clicks Allow that fast, and the kernel queues the redirect.
    wait([started.browser], timeout=BROWSER_HEAD_START)
    from malcapture.login.capture import complete

    return interrupts.run(complete(started, opts, io))


async def login(opts: LoginOptions, io: Io) -> LoginResult:
    """The whole login inside a running event loop (the demo, the tests)."""
    from malcapture.login.capture import complete

    started = start(opts, io)
    return LoginResult(None, None, declined=True) if started is None else await complete(started, opts, io)
