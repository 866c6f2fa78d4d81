"""A real pseudo-terminal for tests: the CLI runs on its slave side as on a user's terminal (its
controlling terminal, so Ctrl-C typed there is a signal), and the test types and reads on the master side."""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import struct
import sys
import termios
import time
from typing import Any

COLUMNS = 100
# Makes the terminal the child's controlling terminal, then runs the rest of argv as Python.
LAUNCHER = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


class Terminal:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
        os.set_blocking(self.master, False)
        self.before = termios.tcgetattr(self.slave)
        self.output = ""

    def modes(self) -> list[Any]:
        return termios.tcgetattr(self.slave)

    async def spawn(self, *args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LAUNCHER,
            *args,
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
            start_new_session=True,
        )

    async def malcapture(self, *args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
        return await self.spawn("-m", "malcapture", *args, env=env)

    def type(self, keys: str) -> None:
        data = keys.encode()
        while data:
            select.select([], [self.master], [], 5)
            data = data[os.write(self.master, data[:512]) :]

    def _drain(self) -> None:
        while self.master >= 0 and select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk.decode("utf-8", "replace").replace("\r\n", "\n")

    async def expect(self, text: str, timeout: float = 20) -> str:
        """Everything shown so far, once `text` has been shown."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            self._drain()
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear on the terminal; it shows:\n{self.output}")
            await asyncio.sleep(0.02)
        return self.output

    async def finish(self, process: asyncio.subprocess.Process, timeout: float = 30) -> int:
        code = await asyncio.wait_for(process.wait(), timeout)
        self._drain()
        return code

    async def reads_a_line_typed_with_enter(self) -> bool:
        """Can the next program read a line the user types and ends with Enter (a carriage return)?"""
        reader = await self.spawn("-c", "print('got:' + input().strip() + ':end')", env=dict(os.environ))
        await asyncio.sleep(0.3)
        self.type("hello\r")
        try:
            await asyncio.wait_for(reader.wait(), 5)
        except asyncio.TimeoutError:
            reader.kill()
            await reader.wait()
            return False
        self._drain()
        return "got:hello:end" in self.output

    def hang_up(self) -> None:
        """The terminal window is closed: its master side goes away (the kernel sends SIGHUP)."""
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
        os.close(self.slave)
