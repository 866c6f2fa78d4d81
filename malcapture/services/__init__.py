"""The services Kometa needs malcapture for, one module each; the rest of malcapture reads SERVICES.

Each module keeps its heavy imports inside its functions: reading this table costs nothing at start-up.
"""

from __future__ import annotations

from malcapture.services import mal, plex, trakt
from malcapture.services.base import Service

SERVICES: tuple[Service, ...] = (mal.SERVICE, trakt.SERVICE, plex.SERVICE)
DEFAULT = next(service for service in SERVICES if service.group is None)  # what a bare `malcapture` logs in to


def by_name(name: str) -> Service:
    return next(service for service in SERVICES if service.name == name)
