"""What a person does in the browser for Plex: follow malcapture's start address to app.plex.tv's page,
sign in there, and let Plex send the browser back (forwardUrl). Records when the forward was sent.

Standard library only. BENCH_DIRECT="FROM=TO": the page comes from the stand-in itself, not through
the link that malcapture's own requests cross.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def main(start: str) -> None:
    origin, _, direct = os.environ.get("BENCH_DIRECT", "").partition("=")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    try:
        opener.open(start, timeout=30)
        raise SystemExit("the start address did not redirect")
    except urllib.error.HTTPError as answer:
        page = answer.headers["Location"].replace(origin, direct)
    params = {k: v[0] for k, v in parse_qs(urlsplit(page).fragment.lstrip("!?")).items()}
    form = urlencode({"code": params["code"], "clientID": params["clientID"]}).encode()
    base = page.split("/auth#")[0]
    request = urllib.request.Request(f"{base}/auth/sign-in", data=form)  # noqa: S310 (the stand-in's https page)
    with opener.open(request, timeout=30) as signed:
        signed.read()
    with open(os.environ["BENCH_FORWARDED"], "w") as record:  # the moment Plex sends the browser back
        record.write(str(time.time_ns()))
    with opener.open(params["forwardUrl"], timeout=60) as back:
        back.read()


if __name__ == "__main__":
    if os.environ.get("BENCH_CHILD"):
        main(sys.argv[1])
    else:  # return at once, as a browser's launcher does, and do the rest in the background
        subprocess.Popen([sys.executable, __file__, *sys.argv[1:]], env={**os.environ, "BENCH_CHILD": "1"})
