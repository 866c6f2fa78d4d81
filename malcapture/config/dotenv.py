"""The `.env` beside the config, read and written as python-dotenv (Kometa's reader) reads it.

One reading serves the proof and the write: a byte-order mark (Notepad's) is kept, a file that is not a
regular file (a FIFO, a device) is refused as the config is. A value is written so that python-dotenv
reads back exactly that value: as it is when it needs no quotes, else single-quoted with `\\` and `'`
escaped; a value python-dotenv cannot read back as written (a `${` it would expand, a line break or
another control character) is refused before anything is saved. The line's other bytes stay: `export`,
spacing, an inline comment, its line ending.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import NamedTuple

from malcapture.config.regular import read_regular
from malcapture.errors import ConfigError

BOM = codecs.BOM_UTF8
MAX_SIZE = 1024 * 1024  # bytes: a .env of secrets is a few hundred
SAFE = re.compile(r"[A-Za-z0-9._~+/=:@,%-]*")  # written bare: python-dotenv reads these back unchanged
LINE = re.compile(
    r"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<name>[A-Za-z_][A-Za-z0-9_.]*)(?P<eq>[ \t]*=[ \t]*)(?P<rest>.*)$"
)
SINGLE = re.compile(r"'((?:\\.|[^'\\])*)'")
DOUBLE = re.compile(r'"((?:\\.|[^"\\])*)"')
DOUBLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
DOUBLE_ESCAPES["v"] = "\v"


class DotEnv(NamedTuple):
    path: Path
    raw: bytes  # as read: what a write compares with (and a failed save puts back)
    text: str  # without the byte-order mark

    @property
    def bom(self) -> bytes:
        return BOM if self.raw.startswith(BOM) else b""

    def values(self) -> dict[str, str]:
        """Each variable's value as python-dotenv reads it (the last definition wins), without expansion."""
        found: dict[str, str] = {}
        for line in self.text.splitlines():
            match = LINE.match(line)
            if match:
                found[match.group("name")] = _value(match.group("rest"))[0]
        return found

    def with_value(self, name: str, value: str) -> bytes:
        """The file's bytes with the (last) line defining `name` set to `value`; every other byte kept."""
        refusal = unwritable(value)
        if refusal:
            raise ConfigError(f"{name} cannot be written into {self.path}: {refusal}.")
        lines = self.text.splitlines(keepends=True)
        for index in reversed(range(len(lines))):
            body = lines[index].rstrip("\r\n")
            match = LINE.match(body)
            if match and match.group("name") == name:
                rest = match.group("rest")
                _, tail = _value(rest)
                ending = lines[index][len(body) :]
                quote = rest[:1] if rest[:1] in ("'", '"') and SAFE.fullmatch(value) else ""  # the line's own style
                shown = f"{quote}{value}{quote}" if quote else quoted(value)
                lines[index] = f"{match.group('lead')}{name}{match.group('eq')}{shown}{tail}{ending}"
                return self.bom + "".join(lines).encode("utf-8")
        raise KeyError(name)


def read(path: Path) -> DotEnv | None:
    """The `.env` at `path`, or None when there is none; a FIFO, device or unreadable one is a ConfigError."""
    raw = read_regular(path, MAX_SIZE, _ADVICE)
    if raw is None:
        return None
    if len(raw) > MAX_SIZE:
        raise ConfigError(f"{path} is larger than {MAX_SIZE // 1024} KB: that is no .env of Kometa's.", _ADVICE)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}).", "Save it as UTF-8.") from None
    return DotEnv(path, raw, text)


_ADVICE = "Kometa reads .env beside config.yml as a text file of NAME=value lines: make it one, or remove it."


def unwritable(value: str) -> str | None:
    """Why python-dotenv could not read `value` back exactly once written, if it could not."""
    if "${" in value:
        return "it holds `${`, which python-dotenv (Kometa's reader) would expand as a variable"
    bad = next((ch for ch in value if not ch.isprintable()), None)
    if bad is not None:
        return f"it holds the control character U+{ord(bad):04X}, which a .env line cannot carry"
    return None


def quoted(value: str) -> str:
    """`value` as python-dotenv reads it back: bare when it can be, else single-quoted and escaped."""
    if value and SAFE.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _value(rest: str) -> tuple[str, str]:
    """A line's value as python-dotenv reads it, and what follows it on the line (spaces, a comment)."""
    for pattern, decode in ((SINGLE, _single), (DOUBLE, _double)):
        match = pattern.match(rest)
        if match:
            return decode(match.group(1)), rest[match.end() :]
    comment = re.search(r"\s+#.*", rest)
    bare = rest[: comment.start()] if comment else rest
    return bare.rstrip(), rest[len(bare.rstrip()) :]


def _single(body: str) -> str:
    return re.sub(r"\\([\\'])", r"\1", body)


def _double(body: str) -> str:
    return re.sub(r"\\([\\'\"abfnrtv])", lambda m: DOUBLE_ESCAPES[m.group(1)], body)
