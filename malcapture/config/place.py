"""Where a login's values go in Kometa's config, and how each one is set: the plan's vocabulary.

A service says what it writes as an ordered mapping from keys to wants: `Set` (always: a token),
`Fill` (when blank or different: the app's client ID), `IfBlank` (only when blank), `SPENT`
(emptied when it holds a value: a single-use code). A section that does not exist yet is written
with every key, in this order, which is Kometa's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from malcapture.tokens import Value


@dataclass(frozen=True)
class Set:
    """Always set: a token."""

    value: Value


@dataclass(frozen=True)
class Fill:
    """Set when blank or different: the app's client ID."""

    value: Value


@dataclass(frozen=True)
class IfBlank:
    """Set only when blank (a value of None: left as it is)."""

    value: Value | None


class Spent:
    """Emptied when it holds a value: a single-use code (its one value, SPENT, is compared by identity)."""


SPENT = Spent()
SPENT_URL = Spent()  # the same, where the code comes inside a URL (`?code=…`): anything else there is left alone
Want = Set | Fill | IfBlank | Spent
Wants = Mapping[str, "Want | Wants"]


class Place(NamedTuple):
    """A service's section: at `path` from the root (`NAME`, or `libraries.Movies.NAME`), its tokens under
    `tokens_under` inside it (or in it)."""

    path: tuple[str, ...]
    title: str  # the service, in words
    tokens_under: str | None

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def dotted(self, *keys: str) -> str:
        return ".".join((*self.path, *keys))

    def token_path(self, key: str) -> tuple[str, ...]:
        return (self.tokens_under, key) if self.tokens_under else (key,)


def new_value(want: Want) -> Value:
    """What a key gets in a section written from nothing."""
    if isinstance(want, (Set, Fill)):
        return want.value
    if isinstance(want, IfBlank) and want.value is not None:
        return want.value
    return ""


def is_blank(value: object) -> bool:
    return value is None or str(value).strip() == ""
