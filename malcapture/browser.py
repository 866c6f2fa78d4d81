"""Opening the browser: when it makes sense (not headless, not over SSH) and how (WSL uses Windows')."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import webbrowser
from collections.abc import Mapping

UNIX_DESKTOPS = ("linux", "freebsd", "openbsd", "netbsd", "dragonfly", "sunos")


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


def open_url(url: str) -> bool:
    """Open the URL in the user's browser; False when no browser could be started."""
    env = os.environ
    if not env.get("BROWSER") and is_wsl(env) and not env.get("DISPLAY"):
        # WSL without WSLg: the user's browser is Windows'. PowerShell quotes the URL for us.
        wslview = shutil.which("wslview")
        command = [wslview, "%s"] if wslview else ["powershell.exe", "-NoProfile", "-Command", "Start-Process '%s'"]
        webbrowser.register("windows-host", None, webbrowser.GenericBrowser(command), preferred=True)
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False
