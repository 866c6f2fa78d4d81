"""Signals while the event loop runs: the work is cancelled where it waits, then Interrupted is raised."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

from tests.helpers import MalStandIn, as_pid_1, needs_root, port_is_free

SCRIPT = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    from malcapture import interrupts

    async def work(held):
        try:
            if held:
                with interrupts.held():
                    print("waiting", flush=True)
                    await asyncio.sleep(0.5)  # a signal now waits until the block ends
                    print("block ended", flush=True)
            else:
                print("waiting", flush=True)
                while not os.path.exists(sys.argv[2]):  # one step of the loop's, busy when the signal comes
                    time.sleep(0.01)
                print("step finished", flush=True)
                await asyncio.sleep(60)
        finally:
            print("cleaned up", flush=True)

    class WindowsLikeLoop(asyncio.SelectorEventLoop):  # as Windows' event loops: no signal handlers
        def add_signal_handler(self, *args):
            raise NotImplementedError

    if sys.argv[1] == "windows":
        class Policy(asyncio.DefaultEventLoopPolicy):
            def new_event_loop(self):
                return WindowsLikeLoop()

        asyncio.set_event_loop_policy(Policy())
    interrupts.install()
    try:
        interrupts.run(work(sys.argv[1] == "held"))
    except interrupts.Interrupted as exc:
        print("interrupted by", exc.name, flush=True)
    print("handler restored:", signal.getsignal(signal.SIGTERM) is interrupts._handle, flush=True)
    """
)


async def run_until_waiting_then(sig: int, mode: str, marker: Path) -> list[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        mode,
        str(marker),
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 30) == b"waiting\n"
    process.send_signal(sig)
    await asyncio.sleep(0.2)  # the signal has arrived while the step is still busy
    marker.touch()
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    return out.decode().splitlines()


async def test_a_signal_waits_for_the_step_then_cancels_the_work_which_unwinds(tmp_path: Path) -> None:
    # Raised in the middle of a step, as a plain handler would, it could break the loop's own bookkeeping.
    lines = await run_until_waiting_then(signal.SIGTERM, "plain", tmp_path / "go")
    assert lines == ["step finished", "cleaned up", "interrupted by SIGTERM", "handler restored: True"]


async def test_a_signal_during_a_held_block_waits_for_its_end(tmp_path: Path) -> None:
    lines = await run_until_waiting_then(signal.SIGINT, "held", tmp_path / "go")
    assert lines == ["block ended", "cleaned up", "interrupted by Ctrl-C", "handler restored: True"]


async def test_without_the_loops_signal_handlers_as_on_windows_a_signal_still_cancels_the_work(
    tmp_path: Path,
) -> None:
    """Windows' event loops raise NotImplementedError for add_signal_handler: a plain handler hands the
    signal to the loop instead (its self-pipe wakes it), with the same unwinding and the handler restored."""
    lines = await run_until_waiting_then(signal.SIGINT, "windows", tmp_path / "go")
    assert lines == ["step finished", "cleaned up", "interrupted by Ctrl-C", "handler restored: True"]


async def test_docker_stop_ends_a_waiting_login_run_as_pid_1(mal: MalStandIn, config: Path) -> None:
    """In a container malcapture may be PID 1, which the kernel sends no signal it has no handler for."""
    needs_root()
    before = config.read_bytes()
    process = await asyncio.create_subprocess_exec(
        *as_pid_1(*mal.args(config, "--no-browser")),
        env=mal.env(),
        stdin=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    shown = line = ""
    while not line.startswith("Waiting until"):
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        assert line, f"malcapture ended before it waited:\n{shown}"
        shown += line
    pid_1 = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
    os.kill(pid_1, signal.SIGTERM)  # what `docker stop` sends
    _, rest = await asyncio.wait_for(process.communicate(), 30)
    text = shown + rest.decode()
    assert process.returncode == 130, text
    assert "Interrupted by SIGTERM. The config was not changed." in text
    assert config.read_bytes() == before
    assert port_is_free(mal.port)
