"""The user's terminal: keep its modes, put them back on every exit, and read one long pasted line.

A canonical-mode terminal line is cut at 1,024 bytes on macOS, and a service's redirect URLs may be
longer, so a line is read with the terminal in non-canonical mode and edited here (Backspace,
Ctrl-U, Ctrl-D on an empty line, Enter). The read runs on the event loop, never on a thread that
could outlive it, and the modes are restored as soon as the line ends or the read is cancelled.
Ctrl-C stays a signal.
"""

from __future__ import annotations

import codecs
import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

try:
    import termios
except ImportError:  # Windows: its console keeps its own modes
    termios = None  # type: ignore[assignment]

EDITABLE = termios is not None  # lines are read and edited here; elsewhere the console edits them itself

ERASE = {"\x7f", "\x08"}
_typing = {"line": False}  # a line is being typed at the terminal: what is printed next starts a new one
KILL_LINE = "\x15"  # Ctrl-U
END_OF_INPUT = "\x04"  # Ctrl-D


def line_open() -> bool:
    """Whether the terminal's cursor is in the middle of a line the user was typing (or after its ^C)."""
    return _typing["line"]


def mark_line_open() -> None:
    _typing["line"] = True


def close_line() -> None:
    _typing["line"] = False


def is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def modes(fd: int) -> list[Any] | None:
    if termios is None or not is_terminal(fd):
        return None
    try:
        return termios.tcgetattr(fd)
    except termios.error:
        return None


def restore(fd: int, saved: list[Any] | None) -> None:
    if saved is None or termios is None:
        return
    with contextlib.suppress(termios.error, OSError):
        termios.tcsetattr(fd, termios.TCSANOW, saved)


@contextlib.contextmanager
def kept(fd: int) -> Iterator[None]:
    """Whatever happens inside, the terminal on `fd` leaves with the modes it came with."""
    saved = modes(fd)
    try:
        yield
    finally:
        restore(fd, saved)


class LineEditor:
    """Turns keystrokes into lines, and says what to echo; no terminal needed to test it."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.pending = ""  # typed after the last finished line: the start of the next one
        self._escape = ""  # inside a key's escape sequence: "esc" after ESC, "csi" after ESC [, "ss3" after ESC O

    def feed(self, text: str) -> tuple[str, str | None, bool]:
        """(what to echo, the finished line or None, end of input)."""
        text, self.pending = self.pending + text, ""
        echo: list[str] = []
        for index, ch in enumerate(text):
            if self._escape:  # arrows, F1 to F12, Home/End: ESC [ … final byte, or ESC O and one letter
                self._escape = self._escaped(ch)
            elif ch == "\x1b":
                self._escape = "esc"
            elif ch in "\r\n" or (ch == END_OF_INPUT and not self.chars):
                rest = text[index + 1 :]
                self.pending = rest[1:] if ch == "\r" and rest.startswith("\n") else rest
                line, self.chars = "".join(self.chars), []
                return "".join(echo) + "\r\n", None if ch == END_OF_INPUT else line, ch == END_OF_INPUT
            elif ch in ERASE:
                if self.chars:
                    self.chars.pop()
                    echo.append("\b \b")
            elif ch == KILL_LINE:
                echo.append("\b \b" * len(self.chars))
                self.chars = []
            elif ch.isprintable() or ch == "\t":
                self.chars.append(ch)
                echo.append(ch)
        return "".join(echo), None, False

    def _escaped(self, ch: str) -> str:
        """The state after `ch` inside an escape sequence ("" once the sequence is over)."""
        if self._escape == "esc":
            return {"[": "csi", "O": "ss3"}.get(ch, "")
        if self._escape == "csi":
            return "" if "\x40" <= ch <= "\x7e" else "csi"
        return ""  # ss3: its one letter


async def read_line(fd: int, editor: LineEditor) -> str | None:
    """The next line typed or pasted at the terminal on `fd`, or None after Ctrl-D on an empty line."""
    import asyncio

    if editor.pending:
        _, line, ended = editor.feed("")
        if line is not None or ended:
            return line
    assert termios is not None
    saved = termios.tcgetattr(fd)
    raw = list(saved)
    raw[3] &= ~(termios.ICANON | termios.ECHO)  # ISIG stays: Ctrl-C is still Ctrl-C
    raw[6] = list(saved[6])
    raw[6][termios.VMIN], raw[6][termios.VTIME] = 1, 0
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str | None] = loop.create_future()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    termios.tcsetattr(fd, termios.TCSANOW, raw)
    try:
        loop.add_reader(fd, _on_input, fd, editor, decoder, done)
        return await done
    finally:
        loop.remove_reader(fd)
        restore(fd, saved)


def _on_input(
    fd: int, editor: LineEditor, decoder: codecs.IncrementalDecoder, done: asyncio.Future[str | None]
) -> None:
    if done.done():
        return
    try:
        data = os.read(fd, 65536)
    except OSError:  # the terminal went away (SIGHUP follows)
        data = b""
    if not data:
        done.set_result(None)
        return
    echo, line, ended = editor.feed(decoder.decode(data))
    _typing["line"] = bool(editor.chars)
    with contextlib.suppress(OSError):
        os.write(fd, echo.encode("utf-8"))
    if line is not None or ended:
        done.set_result(line)
