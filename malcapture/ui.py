"""How the flow talks to the user: a small interface the CLI implements on stderr."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO


class Reporter(Protocol):
    def info(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...
    def url(self, url: str) -> None: ...
    def debug(self, text: str) -> None: ...


class StderrReporter:
    """Progress on stderr; stdout stays free for --print's YAML."""

    def __init__(self, verbose: bool = False, stream: TextIO | None = None) -> None:
        self.verbose = verbose
        self._stream = stream

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def info(self, text: str) -> None:
        self._write(text)

    def warn(self, text: str) -> None:
        self._write(f"Warning: {text}")

    def url(self, url: str) -> None:
        # Alone on its line, whole: terminals make it clickable and scripts can grep for it.
        self._write(url)

    def debug(self, text: str) -> None:
        if self.verbose:
            self._write(f"[http] {text}")
