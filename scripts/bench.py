"""`make bench`: the two moments a user waits for, measured against google-auth-oauthlib and against a
baseline commit of malcapture, on this machine.

Interleaved runs of malcapture's whole login (this tree's, and the baseline's, built from git into a
temporary folder), and of google-auth-oauthlib's `InstalledAppFlow.run_local_server`, all against the
MyAnimeList stand-in on loopback with the same scripted browser (scripts/browser.sh notes when it was
started, then clicks Allow). Both malcapture runs are `python -m malcapture` with the tree first on
PYTHONPATH, so they differ in their code alone. A run starts when the command is started and is done
when it has exited; for malcapture that includes the users/@me check and the config save. Then `--help`,
peak memory, and saving a 5,000-line config. It prints figures, whether each budget is met, and how
far this tree is from the baseline beside the noise of both (the median absolute deviation); it fails
only when a flow does not complete.

Usage: python scripts/bench.py [--runs N] [--baseline REV]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TypeVar

from malcapture.config import kometa, save
from malcapture.demo import SAMPLE_CONFIG
from malcapture.login.contract import Credentials
from malcapture.login.ports import free_port
from malcapture.services import MYANIMELIST as MAL
from malcapture.standins.mal import FakeMal, serve
from malcapture.tokens import TokenSet

R = TypeVar("R")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class Run:
    browser_ms: float  # start → the browser command was started
    done_ms: float  # start → the command exited
    rss_kib: int  # peak resident memory of the command


@dataclass(frozen=True)
class Timed:
    ms: float
    rss_kib: int


def malcapture_login(fake: FakeMal, config: Path) -> list[str]:
    """malcapture's login of a new app of the stand-in, saving into a fresh copy of the demo's config."""
    port = free_port()
    app = fake.register(f"http://localhost:{port}/")
    config.write_text(SAMPLE_CONFIG, encoding="utf-8")
    argv = [sys.executable, "-m", "malcapture", "-c", str(config), "--client-id", app.client_id]
    return [*argv, "--client-secret", str(app.secret), "--redirect-uri", f"http://localhost:{port}/"]


def baseline_tree(rev: str, folder: Path) -> Path:
    """malcapture as it was at `rev`, from git, in `folder` (its dependencies are this venv's); a folder
    holding a malcapture package is taken as it is (to measure a change before committing it)."""
    if (Path(rev) / "malcapture" / "__main__.py").is_file():
        return Path(rev)
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "malcapture"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def noise(values: Sequence[float]) -> float:
    """The median absolute deviation: how far a run typically is from the median."""
    middle = median(values)
    return median([abs(value - middle) for value in values])


def google_login(fake: FakeMal, oauth: str) -> list[str]:
    """google-auth-oauthlib's run_local_server (scripts/google_flow.py) for a new app of the stand-in."""
    port = free_port()
    app = fake.register(f"http://localhost:{port}/")
    return [sys.executable, str(HERE / "google_flow.py"), oauth, app.client_id, str(app.secret), str(port)]


def run_timed(argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> Timed:
    """Start the command, wait for it, and return its wall time and peak memory (wait4's rusage)."""
    with log.open("ab") as out:
        start = time.perf_counter()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = (time.perf_counter() - start) * 1000
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{argv[0]} exited with {process.returncode}; its output is in {log}")
    return Timed(elapsed, usage.ru_maxrss)


class Bench:
    def __init__(self, fake: FakeMal, base: str, folder: Path) -> None:
        self.fake, self.base, self.folder = fake, base, folder
        self.record = folder / "browser-started"
        self.log = folder / "output.log"
        self.env = {name: os.environ[name] for name in KEPT_ENV if name in os.environ}
        self.env["PYTHONPATH"] = str(ROOT)
        self.env.update(
            DISPLAY=":99",  # a desktop: a browser may be opened (none is, BROWSER is ours)
            BROWSER=str(HERE / "browser.sh"),
            BENCH_RECORD=str(self.record),
            BENCH_PYTHON=sys.executable,
            BENCH_CLICK=str(HERE / "click_allow.py"),
            MALCAPTURE_OAUTH_URL=f"{base}/v1/oauth2",
            MALCAPTURE_API_URL=f"{base}/v2",
            OAUTHLIB_INSECURE_TRANSPORT="1",  # the stand-in speaks http
        )

    def malcapture(self, tree: Path = ROOT) -> Run:
        return self._flow(malcapture_login(self.fake, self.folder / "config.yml"), tree)

    def google(self) -> Run:
        return self._flow(google_login(self.fake, f"{self.base}/v1/oauth2"))

    def _flow(self, argv: list[str], tree: Path = ROOT) -> Run:
        self.record.unlink(missing_ok=True)
        started = time.time_ns()  # the browser script notes its start with `date +%s%N`: the same clock
        timed = run_timed(argv, {**self.env, "PYTHONPATH": str(tree)}, self.log, cwd=self.folder)
        if not self.record.exists():
            sys.exit(f"{argv[0]} never started the browser; its output is in {self.log}")
        opened = int(self.record.read_text().split()[0])
        return Run((opened - started) / 1e6, timed.ms, timed.rss_kib)


def start_stand_in() -> tuple[FakeMal, str]:
    """The MyAnimeList stand-in on its own thread and event loop, so the benchmark can block on children."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    fake = FakeMal()
    _, base = asyncio.run_coroutine_threadsafe(serve(fake), loop).result()
    return fake, base


def interleaved(runs: int, *tools: Callable[[], R]) -> list[list[R]]:
    """One warm-up round, then `runs` rounds; the order alternates so neither tool always goes first."""
    results: list[list[R]] = [[] for _ in tools]
    for round_ in range(runs + 1):
        order = list(enumerate(tools))
        if round_ % 2:
            order.reverse()
        for index, tool in order:
            run = tool()
            if round_:
                results[index].append(run)
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(ratio: float, budget: float) -> str:
    return f"budget ≤ {budget:g}x: {'met' if ratio <= budget else 'NOT MET'}"


def big_config(lines: int) -> str:
    """A Kometa config of about `lines` lines: many libraries with comments, then settings and mal:."""
    out = ["## A large Kometa config for the benchmark", "libraries:"]
    number = 0
    while len(out) < lines - 25:
        number += 1
        out += [
            f"  Library {number}:                       # one of many",
            "    collection_files:",
            "      - default: basic",
            "      - default: imdb",
            f"      - file: config/Movies{number}.yml",
            "    overlay_files:",
            "      - remove_overlays: false",
            "      - default: ribbon",
            "        template_variables:",
            f"          use_common: {'true' if number % 2 else 'false'}",
            f"          horizontal_offset: {number}",
            "    operations:",
            "      mass_genre_update: tmdb",
            "      mass_critic_rating_update: 'imdb'      # keep",
        ]
    mal = MAL.code.sample
    return "\n".join([*out, "settings:", "  cache: true", ""]) + mal


def save_times(folder: Path, lines: int, runs: int) -> tuple[int, float, float]:
    """Median milliseconds to load and check the config (before the browser) and to save the tokens."""
    text = big_config(lines)
    path = folder / "big.yml"
    tokens = TokenSet(
        {
            "access_token": "a" * 1000,
            "token_type": "Bearer",
            "expires_in": 2678400,
            "refresh_token": "def50200" + "b" * 700,
        }
    )
    creds = Credentials("c" * 32, "s" * 64)
    loads, saves = [], []
    for _ in range(runs):
        path.write_text(text, encoding="utf-8")
        start = time.perf_counter()
        config = kometa.load(path)
        kometa.check_writable(config)
        loaded = time.perf_counter()
        save.save(config, MAL.place(), MAL.wants(tokens, creds), {})
        saves.append((time.perf_counter() - loaded) * 1000)
        loads.append((loaded - start) * 1000)
    return len(text.splitlines()), median(loads), median(saves)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    cpu = names[0] if names else cpu
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("aiohttp", "typer", "ruamel.yaml", "google-auth-oauthlib")
    )
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; {versions}"
    )


def report_login(ours: list[Run], theirs: list[Run], baseline: list[Run] | None = None, rev: str = "") -> None:
    print(f"\nLogin, median of {len(ours)} interleaved runs each (start = the command is started):")
    print(f"  {'':22}{'malcapture':>12}{'google-auth-oauthlib':>22}{'ratio':>8}")
    for label, name, budget in (("start → browser", "browser_ms", 0.5), ("start → done", "done_ms", 1.0)):
        mine = median([float(getattr(run, name)) for run in ours])
        yard = median([float(getattr(run, name)) for run in theirs])
        print(f"  {label:22}{mine:>9.0f} ms{yard:>19.0f} ms{mine / yard:>7.2f}x   {verdict(mine / yard, budget)}")
    mine_rss, yard_rss = (median([run.rss_kib for run in runs]) / 1024 for runs in (ours, theirs))
    print(f"  {'peak memory (RSS)':22}{mine_rss:>8.1f} MiB{yard_rss:>18.1f} MiB")
    if baseline:
        report_baseline(ours, baseline, rev, ("browser_ms", "start → browser"), ("done_ms", "start → done"))


def report_baseline(ours: Sequence[object], baseline: Sequence[object], rev: str, *fields: tuple[str, str]) -> None:
    """This tree against the baseline's, with the noise of each: a difference within it is no difference."""
    print(f"  against the baseline {rev} (interleaved in the same run):")
    print(f"  {'':22}{'this tree':>12}{'baseline':>12}{'difference':>13}{'noise (MAD)':>14}")
    for name, label in fields:
        mine = [float(getattr(run, name)) for run in ours]
        base = [float(getattr(run, name)) for run in baseline]
        diff, spread = median(mine) - median(base), max(noise(mine), noise(base), 1.0)  # 1 ms: the clock's grain
        said = "within the noise" if abs(diff) <= spread else ("faster" if diff < 0 else "SLOWER")
        print(f"  {label:22}{median(mine):>9.0f} ms{median(base):>9.0f} ms{diff:>+10.0f} ms{spread:>11.0f} ms   {said}")


def report_help(bench: Bench, runs: int) -> None:
    helps, typers = [], []
    for round_ in range(runs + 1):
        help_run = run_timed([str(BIN / "malcapture"), "--help"], bench.env, bench.log)
        typer_run = run_timed([sys.executable, "-c", "import typer"], bench.env, bench.log)
        if round_:
            helps.append(help_run.ms)
            typers.append(typer_run.ms)
    ratio = median(helps) / median(typers)
    print(f'\n`malcapture --help`: {median(helps):.0f} ms; `python -c "import typer"`: {median(typers):.0f} ms')
    print(f"  ratio {ratio:.2f}x   {verdict(ratio, 2.0)}")


def report_save(folder: Path) -> None:
    lines, load_ms, save_ms = save_times(folder, 5000, 7)
    print(f"\nA {lines:,}-line config, median of 7:")
    print(f"  load and check (before the browser opens): {load_ms:.0f} ms")
    print(f"  save the tokens (after the code exchange): {save_ms:.0f} ms   budget < 100 ms: ", end="")
    print("met" if save_ms < 100 else "NOT MET")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="measured runs of each flow (default 15)")
    parser.add_argument("--baseline", default="", help="a commit to compare with, interleaved (default: none)")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    fake, base = start_stand_in()
    with tempfile.TemporaryDirectory(prefix="malcapture-bench-") as tmp:
        bench = Bench(fake, base, Path(tmp))
        if args.baseline:
            old = baseline_tree(args.baseline, Path(tmp) / "baseline")
            tools = (bench.malcapture, bench.google, lambda: bench.malcapture(old))
            ours, theirs, baseline = interleaved(args.runs, *tools)
            report_login(ours, theirs, baseline, args.baseline)
        else:
            ours, theirs = interleaved(args.runs, bench.malcapture, bench.google)
            report_login(ours, theirs)
        report_help(bench, args.runs)
        report_save(Path(tmp))


if __name__ == "__main__":
    main()
