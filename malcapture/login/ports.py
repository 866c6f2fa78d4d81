"""Claim the redirect's port with the standard library, or say exactly who has it.

Binding happens before the URL is printed (only a bound socket justifies opening the browser),
and without aiohttp: the kernel queues the browser's connection until the server accepts it.
"""

from __future__ import annotations

import errno
import re
import socket
import sys

from malcapture.errors import PortConflict
from malcapture.login.redirect import RedirectTarget

IN_USE = {errno.EADDRINUSE, 10048}  # 10048: WSAEADDRINUSE
DENIED = {errno.EACCES, errno.EPERM, 10013}  # 10013: WSAEACCES, also Windows' reserved port ranges
NO_SUCH_ADDRESS = {errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}
PROBE_TIMEOUT = 1.0


def claim(target: RedirectTarget, bind_host: str | None = None) -> list[socket.socket]:
    """Listening sockets for every address the redirect may arrive on, or PortConflict."""
    hosts = _hosts(bind_host) if bind_host else target.bind_hosts
    for host in hosts:
        answer = probe(host, target.port)
        if answer is not None:
            raise PortConflict(*_taken(target, host, answer))
    sockets: list[socket.socket] = []
    try:
        for host in hosts:
            try:
                sockets.append(_listen(host, target.port))
            except OSError as exc:
                code = getattr(exc, "winerror", None) or exc.errno
                if code in NO_SUCH_ADDRESS and len(hosts) > 1:
                    continue  # no IPv6 (or IPv4) on this machine: the browser cannot use it either
                raise PortConflict(*_explain(target, host, code, exc)) from None
        if not sockets:
            raise PortConflict(f"No loopback address could be bound for {target.uri}.", target.register)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def free_port() -> int:
    """A port nothing listens on now, for the demo's redirect URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _hosts(bind_host: str) -> tuple[str, ...]:
    bare = bind_host.strip("[]")
    return ("127.0.0.1", "::1") if bare == "localhost" else (bare,)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform == "win32":
            # RFC 8252 B.3: without it another process could bind the same port and steal the code.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def probe(host: str, port: int) -> str | None:
    """Who answers on host:port, in words, or None when nobody does."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(PROBE_TIMEOUT)
        try:
            sock.connect((host, port))
        except OSError:
            return None
        try:
            sock.sendall(b"HEAD / HTTP/1.0\r\nHost: localhost\r\nUser-Agent: malcapture-probe\r\n\r\n")
            head = sock.recv(4096).decode("latin-1")
        except OSError:
            head = ""
    return describe_http_answer(head)


def describe_http_answer(head: str) -> str:
    lines = head.split("\r\n")
    if not lines[0].startswith("HTTP/"):
        return "a program that does not answer like a web server"
    status = " ".join(lines[0].split(" ")[1:2])
    server = next((ln.split(":", 1)[1].strip() for ln in lines[1:] if ln.lower().startswith("server:")), "")
    if server:
        return f"{server} (it answered HTTP {status})"
    return f"a web server that does not name itself (it answered HTTP {status})"


def _where(target: RedirectTarget, host: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"port {target.port} on {target.display_host}" + ("" if shown == target.host else f" ({shown})")


def _taken(target: RedirectTarget, host: str, answer: str) -> tuple[str, str]:
    ours = re.match(r"malcapture/\S+ \(pid (\d+)\)", answer)
    if ours:
        pid = ours.group(1)
        return (
            f"Another malcapture (pid {pid}) is already waiting for this redirect on {_where(target, host)}: "
            "the redirect, with its one-time code, would go to that one.",
            f"Finish the login in that one, or stop it (Ctrl-C in its terminal, or `kill {pid}`), then run "
            "malcapture again.",
        )
    return (
        f"Another web server already answers on {_where(target, host)}: {answer}. "
        "The redirect, with its one-time code, would go to that server instead of malcapture.",
        _fixes(target),
    )


def _explain(
    target: RedirectTarget, host: str, code: int | None, exc: OSError, platform: str = sys.platform
) -> tuple[str, str]:
    where = _where(target, host)
    if code in IN_USE:
        return (
            f"{where[0].upper()}{where[1:]} is already taken by another program "
            "(it does not answer on this address, but holds the port).",
            _fixes(target),
        )
    if code in DENIED:
        reason = (
            "the port is in a range Windows reserves (Hyper-V, WSL and Docker Desktop reserve ranges; "
            "`netsh int ipv4 show excludedportrange protocol=tcp` lists them — WinError 10013)"
            if platform == "win32"
            else "ports below 1024 need administrator rights on Linux and macOS"
            if target.port < 1024
            else "the system refuses it"
        )
        return (f"malcapture may not listen on {where}: {reason}.", target.register)
    return (f"malcapture cannot listen on {where}: {exc.strerror or exc}.", target.register)


def _fixes(target: RedirectTarget) -> str:
    return (
        f"Fix: stop that server (find it with `sudo ss -ltnp 'sport = :{target.port}'` or "
        f"`lsof -i :{target.port}`), or {target.register[0].lower()}{target.register[1:-1]} "
        "(or set MALCAPTURE_REDIRECT_URI)."
    )
