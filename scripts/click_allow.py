"""What a person does in the browser: open the authorize URL, click Allow, follow the redirect.

Standard library only, and no proxies, so that it costs both flows the benchmark compares the same.
"""

from __future__ import annotations

import os
import re
import sys
import time
import urllib.request
from html import unescape
from urllib.parse import urljoin


class Direct(urllib.request.HTTPRedirectHandler):
    """BENCH_DIRECT="FROM=TO": the page itself comes from the stand-in, not through the API hosts' link
    (also when malcapture's one-time start address redirects there)."""

    def __init__(self) -> None:
        self.origin, _, self.direct = os.environ.get("BENCH_DIRECT", "").partition("=")

    def to(self, url: str) -> str:
        return url.replace(self.origin, self.direct) if self.origin else url

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return super().redirect_request(req, fp, code, msg, headers, self.to(newurl))


def main(url: str) -> None:
    direct = Direct()
    url = direct.to(url)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), direct)
    with opener.open(url, timeout=30) as response:
        page = response.read().decode()
        here = response.url
    allow = re.search(r'id="allow" href="([^"]+)"', page)
    if allow is None:
        raise SystemExit(f"no Allow link on {here}")
    time.sleep(float(os.environ.get("BENCH_READ_SECONDS", "0")))  # the person reads the page before clicking
    clicked = os.environ.get("BENCH_CLICKED")
    if clicked:  # the moment of the click, on the clock the benchmark reads
        with open(clicked, "w") as record:
            record.write(str(time.time_ns()))
    with opener.open(urljoin(here, unescape(allow.group(1))), timeout=30) as response:  # redirects to the tool
        response.read()


if __name__ == "__main__":
    main(sys.argv[1])
