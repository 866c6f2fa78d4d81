"""Quiet where scripts run: cron and systemd timers mail (or log) whatever a job prints, so a job that
finds everything working prints nothing — run as cron runs it: no terminal, a minimal environment."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.helpers import MalStandIn, Result, stored


async def as_cron(mal: MalStandIn, *args: str) -> Result:
    """The real command with cron's environment (PATH, HOME, SHELL and the endpoints), no terminal anywhere."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "SHELL": "/bin/sh",
        "LOGNAME": "root",
        **{name: value for name, value in mal.env().items() if name.startswith("MALCAPTURE_")},
    }
    if "COVERAGE_PROCESS_START" in os.environ:  # the test run's branch coverage, measured in the job too
        env["COVERAGE_PROCESS_START"] = os.environ["COVERAGE_PROCESS_START"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "malcapture",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd="/",
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def test_the_readmes_cron_jobs_print_nothing_while_everything_works(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    status = await as_cron(mal, "status", "-q", "-c", str(config))
    assert (status.code, status.out, status.err) == (0, "", "")
    refresh = await as_cron(mal, "refresh", "-q", "-c", str(config), "--if-expiring-within", "7d")
    assert (refresh.code, refresh.out, refresh.err) == (0, "", "")
    monitored = await as_cron(mal, "status", "--json", "-c", str(config))
    assert monitored.code == 0
    assert monitored.err == ""
    assert json.loads(monitored.out)[0]["works"] is True


async def test_a_cron_job_mails_what_does_not_work_and_the_fix(mal: MalStandIn, config: Path) -> None:
    stored(mal, config, lifetime=-60)  # expired: MyAnimeList refuses it
    status = await as_cron(mal, "status", "-q", "-c", str(config))
    assert status.code == 1
    assert status.out == ""
    assert status.err.startswith("mal: does not work:")
    assert "Fix: " in status.err
    monitored = await as_cron(mal, "status", "--json", "-c", str(config))
    assert monitored.code == 1
    assert json.loads(monitored.out)[0]["works"] is False
    assert "mal: does not work:" in monitored.err


async def test_a_refresh_that_is_due_is_quiet_when_it_succeeds(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    before = config.read_bytes()
    refresh = await as_cron(mal, "refresh", "-q", "-c", str(config), "--if-expiring-within", "40d")
    assert (refresh.code, refresh.out, refresh.err) == (0, "", "")
    assert config.read_bytes() != before
