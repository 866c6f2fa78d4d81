"""`make bench`, Plex: from the moment Plex sends the browser back (forwardUrl) to the token saved.

The Plex stand-in (plex.tv and app.plex.tv) and a Plex Media Server both speak TLS (a self-signed
certificate trusted through SSL_CERT_FILE), each behind a loopback proxy that delays every packet by
half the round trip (tests/link.py). malcapture's desktop sign-in runs with a scripted browser that
follows the one-time start address, signs the PIN in on the stand-in's page and is sent to forwardUrl:
its forward → saved is the config's modification time less the moment the forward was sent. Beside
it, clients that only poll, every 1 s and every 2 s as the web pages that make tokens do: their
sign-in → done is the moment they hold the token and know whose it is, less the moment of the
sign-in, made at a different point of their interval in each run.

Usage: python scripts/bench_plex.py [--runs N] [--rtt-ms MS]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/link.py, shared with the tests

from bench import HERE, KEPT_ENV, ROOT, median, run_timed

from malcapture.login.ports import free_port
from malcapture.standins.plex import Connection, FakePlex, FakePlexServer, serve, serve_server
from tests.link import Link, certificate

T = TypeVar("T")
CONFIG = "plex:\n  url: {url}\n  token:\n"


class PlexBench:
    def __init__(self, folder: Path, rtt: float) -> None:
        self.folder, self.rtt = folder, rtt
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        cert, context = certificate(folder)
        self.trust = ssl.create_default_context(cafile=str(cert))
        self.fake = FakePlex()
        self.server = FakePlexServer(plex=self.fake)
        self.published = False
        _, tv = self._on_loop(serve(self.fake, tls=context))
        _, pms = self._on_loop(serve_server(self.server, tls=context))
        self.tv_link = Link(("127.0.0.1", int(tv.rsplit(":", 1)[1])), rtt)
        self.pms_link = Link(("127.0.0.1", int(pms.rsplit(":", 1)[1])), rtt)
        self.tv = f"https://127.0.0.1:{self._on_loop(self.tv_link.start())}"
        self.pms = f"https://127.0.0.1:{self._on_loop(self.pms_link.start())}"
        self.direct = tv  # the browser's page comes from the stand-in itself, as in the other benchmarks
        self.forwarded, self.log = folder / "forwarded", folder / "output.log"
        self.env = {name: value for name, value in os.environ.items() if name in KEPT_ENV}
        self.env.update(
            DISPLAY=":99",
            BROWSER=f"{sys.executable} {HERE / 'sign_in_plex.py'} %s",
            BENCH_FORWARDED=str(self.forwarded),
            BENCH_DIRECT=f"{self.tv}={self.direct}",
            SSL_CERT_FILE=str(cert),
            MALCAPTURE_PLEX_TV_URL=self.tv,
            MALCAPTURE_PLEX_APP_URL=self.tv,
            PYTHONPATH=str(ROOT),
        )

    def _on_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def malcapture(self, find_url: bool = False) -> float:
        """forward → saved, in milliseconds; `find_url`: plex.url is blank, and found among the account's servers
        (plex.tv's list, every connection tried at once, the best one's server check)."""
        config = self.folder / "config.yml"
        config.write_text(CONFIG.format(url="" if find_url else self.pms))
        self.forwarded.unlink(missing_ok=True)
        run_timed([sys.executable, "-m", "malcapture", "plex", "-c", str(config)], self.env, self.log, cwd=self.folder)
        return (config.stat().st_mtime_ns - int(self.forwarded.read_text())) / 1e6

    def poller(self, every: float, phase: float) -> float:
        """sign-in → done, in milliseconds, for a client polling every `every` s, signed in `phase` of the way."""
        return self._on_loop(self._poll(every, phase))

    async def _poll(self, every: float, phase: float) -> float:
        import aiohttp

        headers = {"X-Plex-Client-Identifier": "bench-poller", "X-Plex-Product": "Kometa", "Accept": "application/json"}
        connector = aiohttp.TCPConnector(ssl=self.trust)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            async with session.post(f"{self.tv}/api/v2/pins?strong=true") as response:
                pin = await response.json()
            signed: list[float] = []

            def sign_in() -> None:
                signed.append(time.monotonic())
                self.fake.sign_in(pin["code"])

            asyncio.get_running_loop().call_later(every * (1 + phase), sign_in)
            while True:
                await asyncio.sleep(every)
                async with session.get(f"{self.tv}/api/v2/pins/{pin['id']}") as response:
                    token = (await response.json())["authToken"]
                if token:
                    break
            async with session.get(f"{self.tv}/api/v2/user", headers={"X-Plex-Token": token}) as response:
                await response.read()
            return (time.monotonic() - signed[0]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each (default 5)")
    parser.add_argument("--rtt-ms", type=float, default=100, help="the link's round-trip time (default 100)")
    args = parser.parse_args()
    rtt = args.rtt_ms
    with tempfile.TemporaryDirectory(prefix="malcapture-bench-plex-") as tmp:
        bench = PlexBench(Path(tmp), rtt / 1000)
        bench.malcapture()  # a warm-up
        ours = [bench.malcapture() for _ in range(args.runs)]
        bench.server.publish(Connection(bench.pms), Connection(f"https://127.0.0.1:{free_port()}"))
        found = [bench.malcapture(find_url=True) for _ in range(args.runs)]
        phases = [(n + 0.5) / args.runs for n in range(args.runs)]
        every1 = [bench.poller(1.0, phase) for phase in phases]
        every2 = [bench.poller(2.0, phase) for phase in phases]
    where = "plex.tv and the server behind one each"
    print(f"\nPlex's sign-in on a {rtt:g} ms link over TLS ({where}), median of {args.runs}:")
    print(f"  {'':44}{'ms':>8}{'round trips':>14}")
    for label, runs in (
        ("malcapture: forward → saved", ours),
        ("the same, plex.url found (2 servers tried)", found),
        ("a client polling every 1 s: sign-in → done", every1),
        ("a client polling every 2 s: sign-in → done", every2),
    ):
        print(f"  {label:44}{median(runs):>8.0f}{median(runs) / rtt:>14.2f}")
    met = "met" if median(ours) / rtt <= 2.3 else "NOT MET"
    print(f"  goal for malcapture: the poll and the account check, one round trip each (the server's beside): {met}")


if __name__ == "__main__":
    main()
