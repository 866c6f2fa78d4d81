"""`make bench`, on a realistic link: after the click, how long until the tokens are saved.

The MyAnimeList stand-in speaks TLS (a self-signed certificate, trusted through SSL_CERT_FILE and
REQUESTS_CA_BUNDLE as any corporate CA would be), and each of its two hosts (the token endpoint
and the API) sits behind a loopback proxy that delays every packet by half the round-trip time
(tests/link.py), and counts TCP connections and TLS handshakes. The browser page itself comes from
the stand-in directly, for both tools alike. Interleaved runs of malcapture's login (click → saved:
the config file written, after the exchange and users/@me) and of google-auth-oauthlib's
`run_local_server` (click → done: it exits once it holds the tokens).

Usage: python scripts/bench_link.py [--runs N] [--rtt-ms MS] [--baseline REV]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/link.py, shared with the tests

from bench import (
    HERE,
    KEPT_ENV,
    ROOT,
    baseline_tree,
    google_login,
    interleaved,
    malcapture_login,
    median,
    report_baseline,
    run_timed,
    verdict,
)

from malcapture.standins.mal import FakeMal, serve
from tests.link import Link, certificate

T = TypeVar("T")


@dataclass(frozen=True)
class LinkRun:
    browser_ms: float  # start → the browser command was started
    after_click_ms: float  # click → saved (malcapture) or click → done (google-auth-oauthlib)
    connections: int
    handshakes: int


class LinkBench:
    def __init__(self, folder: Path, rtt: float) -> None:
        self.folder, self.rtt = folder, rtt
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        cert, context = certificate(folder)
        self.fake = FakeMal()
        _, self.direct = self._on_loop(serve(self.fake, tls=context))
        target = ("127.0.0.1", int(self.direct.rsplit(":", 1)[1]))
        self.links = (Link(target, rtt), Link(target, rtt))
        oauth_port, api_port = (self._on_loop(link.start()) for link in self.links)
        self.oauth = f"https://127.0.0.1:{oauth_port}"
        self.record, self.clicked, self.log = folder / "browser-started", folder / "clicked", folder / "output.log"
        self.env = {name: value for name, value in os.environ.items() if name in KEPT_ENV}
        self.env.update(
            DISPLAY=":99",
            BROWSER=str(HERE / "browser.sh"),
            BENCH_RECORD=str(self.record),
            BENCH_PYTHON=sys.executable,
            BENCH_CLICK=str(HERE / "click_allow.py"),
            BENCH_CLICKED=str(self.clicked),
            BENCH_READ_SECONDS="2",  # no one clicks Allow the instant the page appears
            BENCH_DIRECT=f"{self.oauth}={self.direct}",
            SSL_CERT_FILE=str(cert),
            REQUESTS_CA_BUNDLE=str(cert),
            MALCAPTURE_OAUTH_URL=f"{self.oauth}/v1/oauth2",
            MALCAPTURE_API_URL=f"https://127.0.0.1:{api_port}/v2",
        )

    def _on_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def malcapture(self, tree: Path = ROOT) -> LinkRun:
        config = self.folder / "config.yml"
        argv = malcapture_login(self.fake, config)
        return self._run(argv, lambda end: config.stat().st_mtime_ns, tree)  # saved: when the new file was written

    def google(self) -> LinkRun:
        return self._run(google_login(self.fake, f"{self.oauth}/v1/oauth2"), lambda end: end)

    def _run(self, argv: list[str], finished: Callable[[int], int], tree: Path = ROOT) -> LinkRun:
        for path in (self.record, self.clicked):
            path.unlink(missing_ok=True)
        for link in self.links:
            link.connections, link.handshakes = 0, []
        started = time.time_ns()
        timed = run_timed(argv, {**self.env, "PYTHONPATH": str(tree)}, self.log, cwd=self.folder)
        end = started + int(timed.ms * 1e6)
        done = finished(end)
        opened = int(self.record.read_text().split()[0])
        clicked = int(self.clicked.read_text())
        return LinkRun(
            (opened - started) / 1e6,
            (done - clicked) / 1e6,
            sum(link.connections for link in self.links),
            sum(len(link.handshakes) for link in self.links),
        )


def report(
    ours: list[LinkRun], theirs: list[LinkRun], rtt_ms: float, baseline: list[LinkRun] | None = None, rev: str = ""
) -> None:
    def m(runs: list[LinkRun], field: str) -> float:
        return median([float(getattr(run, field)) for run in runs])

    print(f"\nOn a {rtt_ms:g} ms link over TLS, median of {len(ours)} interleaved runs each:")
    print(f"  {'':30}{'malcapture':>12}{'google-auth-oauthlib':>22}{'ratio':>8}")
    mine, yard = m(ours, "after_click_ms"), m(theirs, "after_click_ms")
    ratio = mine / yard
    print(f"  {'click → saved / done':30}{mine:>9.0f} ms{yard:>19.0f} ms{ratio:>7.2f}x   {verdict(ratio, 0.8)}")
    trips_mine, trips_yard = mine / rtt_ms, yard / rtt_ms
    met = "met" if trips_mine <= 2.3 else "NOT MET"
    print(f"  {'  in round trips':30}{trips_mine:>12.2f}{trips_yard:>22.2f}{'':>8}   budget ≤ 2.3 round trips: {met}")
    mine, yard = m(ours, "browser_ms"), m(theirs, "browser_ms")
    print(f"  {'start → browser':30}{mine:>9.0f} ms{yard:>19.0f} ms{mine / yard:>7.2f}x   {verdict(mine / yard, 0.5)}")
    for label, field in (("TCP connections to MAL", "connections"), ("TLS handshakes", "handshakes")):
        print(f"  {label:30}{m(ours, field):>12.0f}{m(theirs, field):>22.0f}")
    if baseline:
        report_baseline(ours, baseline, rev, ("after_click_ms", "click → saved"), ("browser_ms", "start → browser"))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs of each flow (default 7)")
    parser.add_argument("--rtt-ms", type=float, default=100, help="the link's round-trip time (default 100)")
    parser.add_argument("--baseline", default="", help="a commit to compare with, interleaved (default: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="malcapture-bench-link-") as tmp:
        bench = LinkBench(Path(tmp), args.rtt_ms / 1000)
        if args.baseline:
            old = baseline_tree(args.baseline, Path(tmp) / "baseline")
            ours, theirs, baseline = interleaved(
                args.runs, bench.malcapture, bench.google, lambda: bench.malcapture(old)
            )
            report(ours, theirs, args.rtt_ms, baseline, args.baseline)
        else:
            ours, theirs = interleaved(args.runs, bench.malcapture, bench.google)
            report(ours, theirs, args.rtt_ms)


if __name__ == "__main__":
    main()
