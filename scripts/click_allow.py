"""What a person does in the browser: open the authorize URL, click Allow, follow the redirect.

Standard library only, and no proxies, so that it costs both flows the benchmark compares the same.
"""

from __future__ import annotations

import re
import sys
import urllib.request
from html import unescape
from urllib.parse import urljoin


def main(url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        page = response.read().decode()
        here = response.url
    allow = re.search(r'id="allow" href="([^"]+)"', page)
    if allow is None:
        raise SystemExit(f"no Allow link on {here}")
    with opener.open(urljoin(here, unescape(allow.group(1))), timeout=30) as response:  # redirects to the tool
        response.read()


if __name__ == "__main__":
    main(sys.argv[1])
