"""Who is on the other end of a loopback connection: Linux lists the owner of every TCP socket in
/proc/net/tcp and tcp6, so a request from another local user's program (one that read the browser's
command line, or raced it to the port) can be told from the user's own browser. Elsewhere (macOS,
Windows, a connection from outside this network namespace) the owner is not known, and nothing is refused.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def owner(peer: tuple[str, int], local: tuple[str, int], tables: tuple[Path, ...] = TABLES) -> int | None:
    """The uid that owns the socket at `peer` connected to `local` (ours), if this machine says."""
    wanted = (_key(peer), _key(local))
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 7 and (_parse(fields[1]), _parse(fields[2])) == wanted:
                return int(fields[7])
    return None


def foreign(peer: tuple[str, int] | None, local: tuple[str, int] | None) -> bool:
    """Whether the connection comes from a socket of another user of this machine (root's included: a root
    program needs no race to read what we hold)."""
    if peer is None or local is None or not hasattr(os, "geteuid"):
        return False
    uid = owner(peer, local)
    return uid is not None and uid != os.geteuid()


def _key(address: tuple[str, int]) -> tuple[bytes, int]:
    ip = ipaddress.ip_address(address[0].split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.packed, address[1]


def _parse(field: str) -> tuple[bytes, int] | None:
    """`0100007F:1F90` (little-endian words, as the kernel prints them) → (packed address, port)."""
    try:
        host, port = field.split(":")
        raw = bytes.fromhex(host)
        packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        ip = ipaddress.ip_address(socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed))
    except (ValueError, OSError):
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.packed, int(port, 16)
