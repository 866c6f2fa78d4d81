"""Opening the browser: when it makes sense (not headless, not over SSH), how (WSL uses Windows'), and
on a thread of its own, so that a browser command that waits for the browser to exit holds up nothing."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import shutil
import sys
import threading
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future

UNIX_DESKTOPS = ("linux", "freebsd", "openbsd", "netbsd", "dragonfly", "sunos")
NO_BROWSER_ARGS = frozenset({"-h", "--help", "--version", "--no-browser", "--manual", "refresh", "check", "status"})


def is_wsl(env: Mapping[str, str], release: str | None = None) -> bool:
    release = platform.release() if release is None else release
    return "WSL_DISTRO_NAME" in env or "microsoft" in release.lower()


def headless_reason(env: Mapping[str, str], system: str = sys.platform) -> str | None:
    """Why a browser opened here would not be the user's, or None when it would be."""
    if env.get("SSH_CONNECTION") or env.get("SSH_CLIENT") or env.get("SSH_TTY"):
        return "this is an SSH session, so a browser would open on the remote machine, if at all"
    if system.startswith(UNIX_DESKTOPS) and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        if is_wsl(env):
            return None
        return "there is no graphical display here (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    return None


def ssh_forward_hint(port: int, env: Mapping[str, str]) -> str:
    server = env.get("SSH_CONNECTION", "").split()
    host = server[2] if len(server) == 4 else "THIS-SERVER"
    user = env.get("USER") or env.get("LOGNAME") or "you"
    return f"ssh -L {port}:localhost:{port} {user}@{host}"


def likely_to_open(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """A guess, made before the options are parsed, that this run opens a browser; a wrong one costs a lookup."""
    return headless_reason(env) is None and NO_BROWSER_ARGS.isdisjoint(argv)


_finder: threading.Thread | None = None  # webbrowser's list of browsers is process-wide, and so is its lookup


def find_browsers(env: Mapping[str, str] = os.environ) -> None:
    """Start webbrowser's lookup of the browsers on a thread, so that open_url is quick later.

    On a Linux desktop the first use of webbrowser runs `xdg-settings` (about 50 ms); this way it
    runs while Typer loads and the config is read. open_url waits for it: webbrowser's list is not
    safe to read while it is being built. With $BROWSER set there is nothing to look up.
    """
    global _finder
    if _finder is None and not env.get("BROWSER"):
        _finder = threading.Thread(target=_look_up, daemon=True)
        _finder.start()


def _look_up() -> None:
    with contextlib.suppress(webbrowser.Error):  # none found: open_url says so
        webbrowser.get()


def open_url(url: str, env: Mapping[str, str] = os.environ) -> bool:
    """Open the URL in the user's browser; False when no browser could be started."""
    if any(_open_with(choice, url) for choice in env.get("BROWSER", "").split(os.pathsep) if choice):
        return True
    if _finder is not None:
        _finder.join()
    if not env.get("BROWSER") and is_wsl(env) and not env.get("DISPLAY"):
        # WSL without WSLg: the user's browser is Windows'. PowerShell quotes the URL for us.
        wslview = shutil.which("wslview")
        command = [wslview, "%s"] if wslview else ["powershell.exe", "-NoProfile", "-Command", "Start-Process '%s'"]
        webbrowser.register("windows-host", None, webbrowser.GenericBrowser(command), preferred=True)
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False


def _open_with(choice: str, url: str) -> bool:
    """One command of $BROWSER, read as webbrowser reads it, but without first looking up every other browser."""
    if "%s" not in choice:
        return webbrowser.GenericBrowser(choice).open(url)
    command = shlex.split(choice)
    if command[-1] == "&":
        return webbrowser.BackgroundBrowser(command[:-1]).open(url)
    return webbrowser.GenericBrowser(command).open(url)


def open_in_background(open_browser: Callable[[str], bool], url: str) -> Future[bool]:
    """Ask for the URL to be opened, on a daemon thread; the future settles when the command returns:
    True, or False (or an error) when no browser opened."""
    opened: Future[bool] = Future()

    def run() -> None:
        try:
            opened.set_result(open_browser(url))
        except Exception as exc:  # reported, not raised: the URL is printed, the user can open it
            opened.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return opened


def warn_if_unopened(opened: Future[bool], warn: Callable[[str], None]) -> None:
    """Once the browser command has returned, warn (on the running event loop) if no browser opened."""
    import asyncio

    loop = asyncio.get_running_loop()

    def report(future: Future[bool]) -> None:  # on the browser's thread, or at once
        with contextlib.suppress(RuntimeError):  # the loop has closed: the login is over
            loop.call_soon_threadsafe(_warn, future, warn)

    opened.add_done_callback(report)


def _warn(opened: Future[bool], warn: Callable[[str], None]) -> None:
    if opened.cancelled() or (opened.exception() is None and opened.result()):
        return
    warn("no browser could be opened here: open the URL above yourself.")
