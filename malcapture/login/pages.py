"""The pages the browser shows: self-contained, and every echoed value escaped."""

from __future__ import annotations

import os
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from malcapture import __version__

if TYPE_CHECKING:
    from malcapture.login.contract import Service

HEADERS = {
    "Server": f"malcapture/{__version__} (pid {os.getpid()})",  # another malcapture's port check knows us
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;"
    "line-height:1.5;color:#222}h1{font-size:1.4rem}.ok{color:#1a7f37}.bad{color:#b42318}"
    "code{background:#f3f3f3;padding:.1rem .3rem;border-radius:.2rem;word-break:break-all}"
)


@dataclass(frozen=True)
class Page:
    status: int
    title: str
    body: str  # already-escaped HTML

    def html(self) -> str:
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>malcapture — {escape(self.title)}</title><style>{STYLE}</style></head>"
            f"<body>{self.body}</body></html>"
        )


def success(account: str | None, saved_to: str | None, service: Service, done: str = "Authorized") -> Page:
    who = f"{done} as <b>{escape(account)}</b>" if account else done
    where = (
        f"Saved to <code>{escape(saved_to)}</code>."
        if saved_to
        else f"The <code>{escape(service.name)}:</code> block is in your terminal."
    )
    return Page(
        200,
        "authorized",
        f"<h1 class=ok>{who}</h1><p>{where}</p><p>You can close this tab and go back to the terminal.</p>",
    )


def failure(what: str, advice: str, status: int = 200) -> Page:
    return Page(
        status,
        "not authorized",
        f"<h1 class=bad>Not authorized</h1><p>{escape(what)}</p>"
        + (f"<p>{escape(advice)}</p>" if advice else "")
        + "<p>The terminal says the same and what to do next.</p>",
    )


def rejected(reason: str) -> Page:
    return Page(
        400,
        "bad request",
        f"<h1 class=bad>This is not the redirect malcapture is waiting for</h1><p>{escape(reason)}</p>"
        "<p>malcapture is still waiting. Start the login from the terminal's link.</p>",
    )


def not_found() -> Page:
    return Page(404, "not found", "<h1>Not found</h1><p>malcapture only answers its redirect URL.</p>")


def bad_host() -> Page:
    return Page(400, "bad host", "<h1>Bad request</h1><p>This server only answers to its own host name.</p>")
