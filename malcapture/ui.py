"""How the library talks to the user: a small interface the CLI implements, messages on stderr and
config blocks (--print, tokens that could not be saved) on stdout."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import textwrap
from typing import Protocol, TextIO

# What a terminal would act on rather than show: C0 and C1 controls (ESC starts every escape sequence) but
# the line break, and the bidirectional overrides that reorder what is shown. Services' words reach the
# terminal inside messages (names, errors, hints): these are shown as escapes, never sent raw.
CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character a terminal would act on written as an escape (`\x1b`)."""
    return CONTROLS.sub(lambda found: repr(found.group())[1:-1], text)


class Reporter(Protocol):
    def info(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...
    def url(self, url: str) -> None: ...
    def debug(self, text: str) -> None: ...
    def block(self, text: str) -> None: ...


class StderrReporter:
    """Progress on stderr; stdout stays free for --print's YAML."""

    def __init__(self, verbose: bool = False, stream: TextIO | None = None, out: TextIO | None = None) -> None:
        self.verbose = verbose
        self._stream = stream
        self._out = out

    def _write(self, text: str, wrap: bool = True) -> None:
        stream = self._stream or sys.stderr
        text = printable(text)
        if wrap:
            text = wrapped(text, _columns(stream))
        with contextlib.suppress(OSError):  # a terminal that was closed (SIGHUP) takes no more messages
            stream.write(text + "\n")
            stream.flush()

    def info(self, text: str) -> None:
        self._write(text)

    def warn(self, text: str) -> None:
        self._write(f"Warning: {text}")

    def url(self, url: str) -> None:
        # Alone on its line, whole: terminals make it clickable and scripts can grep for it.
        self._write(url, wrap=False)

    def debug(self, text: str) -> None:
        if self.verbose:
            self._write(f"[http] {text}")

    def block(self, text: str) -> None:
        """A config block on standard output: the only thing malcapture writes there."""
        out = self._out or sys.stdout
        out.write(text)
        out.flush()


def _columns(stream: TextIO) -> int | None:
    """The terminal's width, or None when the stream is not a terminal (a log keeps whole lines)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else None
    except (OSError, ValueError, AttributeError):
        return None


def wrapped(text: str, columns: int | None) -> str:
    """Prose broken at spaces to fit; indented lines (commands to copy) and long words stay whole."""
    if not columns or columns < 20:
        return text
    out = []
    for line in text.split("\n"):
        if len(line) < columns or line.startswith("  "):
            out.append(line)
        else:
            out.append(textwrap.fill(line, columns - 1, break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)


class Quiet(StderrReporter):
    """A reporter that keeps its progress to itself (status reports each service in a line of its own)."""

    def _write(self, text: str, wrap: bool = True) -> None:
        return


class WarningsOnly(StderrReporter):
    """Only what needs the user's eye (warnings; -v's exchanges): a cron job that succeeds mails nothing."""

    def info(self, text: str) -> None:
        return
