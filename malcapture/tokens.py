"""What a service issued, as Kometa stores it, and how much of a secret may be shown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Value = str | int


def redact(secret: str | None) -> str:
    """What `-v` may show of a secret: its first 6 characters."""
    if not secret:
        return "(none)"
    return f"{secret[:6]}…({len(secret)} chars)"


@dataclass(frozen=True)
class TokenSet:
    """The values a service issued, under Kometa's keys and in Kometa's order; repr never shows them.

    `access` names the key of the token that opens the account (`access_token`, or just `token`), and
    `refresh` the key of the one that renews it (None: nothing renews it).
    """

    values: Mapping[str, Value] = field(repr=False)
    access: str = "access_token"
    refresh: str | None = "refresh_token"

    @property
    def access_token(self) -> str:
        return str(self.values[self.access])

    @property
    def refresh_token(self) -> str | None:
        return str(self.values[self.refresh]) if self.refresh else None

    def as_mapping(self) -> dict[str, Value]:
        return dict(self.values)

    def secrets(self) -> tuple[str, ...]:
        return tuple(token for token in (self.access_token, self.refresh_token) if token)
