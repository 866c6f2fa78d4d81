"""What Plex's answers and settings say, read once for the client and the server check alike: plex.url
checked and shown (never its password), a server's XML root, Kometa's words for a read-only token."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xml.etree.ElementTree as ElementTree

READ_ONLY = (
    "Plex Token is read only (the server does not allow this account to sync), so Kometa would stop with "
    '"Plex Token is read only. Please get a new token": sign in as the server\'s owner or an admin.'
)


def server_url(text: str | None) -> str | None:
    """plex.url as Kometa will use it, checked before anything is asked of plex.tv: a URL this machine's HTTP
    client can open (`http://[127.0.0.1]:32400` cannot), without a trailing slash."""
    from urllib.parse import urlsplit

    from malcapture.errors import UsageError
    from malcapture.http import without_password

    url = (text or "").strip().rstrip("/")
    if not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a port that is not a number)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        if valid and parts.netloc.startswith("[") is not (":" in (parts.hostname or "")):
            valid = False
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(
            f"plex.url {without_password(url)!r} is not a URL Kometa can open.",
            "Write the server's address as http://HOST:32400 (an IPv6 address in brackets, [::1]), or pass --url.",
        )
    return url


def xml_root(body: str) -> ElementTree.Element | None:
    """The server's MediaContainer (its answers are XML unless asked for JSON); no entities, no network."""
    import xml.etree.ElementTree as ElementTree

    if "<!DOCTYPE" in body or "<!ENTITY" in body:
        return None
    try:
        return ElementTree.fromstring(body)  # noqa: S314 (no DOCTYPE, so no entity to expand or fetch)
    except ElementTree.ParseError:
        return None
