"""The redirect URI the app registered, and what comes back to it (by server or by paste)."""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from malcapture.errors import InputRejected, UsageError
from malcapture.login.ways import Redirect

DEFAULT_REDIRECT_URI = "http://localhost/"
# What a bare code may look like: some services' are ~1,000 hex characters; allow any URL-safe token.
BARE_CODE = re.compile(r"[A-Za-z0-9._~-]{16,}")
INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00a0"  # what copy-paste brings along unseen


def register_advice(apps: str, host: str = "localhost", path: str = "/", port: int = 8765) -> str:
    """Another redirect URL to register: on a port that is free now, and above 1023 (no administrator rights)."""
    return (
        f"Register a redirect URL such as http://{host}:{port}{path} (port {port} is free here, and a port above "
        f"1023 needs no administrator rights) in your app ({apps}) and pass it with --redirect-uri."
    )


class RedirectTarget(NamedTuple):
    uri: str
    explicit: bool
    host: str
    port: int
    path: str
    register: str  # how to register another redirect URL, where the user's app is

    @property
    def sent_uri(self) -> str | None:
        """What goes into `redirect_uri`: nothing unless the user chose it (the service then uses its own)."""
        return self.uri if self.explicit else None

    @property
    def is_loopback(self) -> bool:
        return self.host == "localhost" or _is_loopback_literal(self.host)

    @property
    def bind_hosts(self) -> tuple[str, ...]:
        # Browsers may resolve localhost to either family; listen on both.
        return ("127.0.0.1", "::1") if self.host == "localhost" else (self.host,)

    @property
    def display_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def accepts_host_header(self, header: str) -> bool:
        """DNS-rebinding guard: only the redirect's host or a loopback literal, on our port."""
        try:
            parts = urlsplit("//" + header)
            host, port = parts.hostname, parts.port or 80
        except ValueError:
            return False
        if host is None or parts.path or parts.query or "@" in header:
            return False
        return port == self.port and (host == self.host or _is_loopback_literal(host))


def parse_redirect_uri(
    uri: str | None,
    apps: str,
    default: str = DEFAULT_REDIRECT_URI,
    https: bool = False,
    where: str = "",
    host: str = "localhost",
    suggest: int = 8765,
) -> RedirectTarget:
    """`https`: the service takes https:// redirects, which only a paste can bring here (host ""); `host`: the
    loopback name to suggest registering."""
    explicit = uri is not None
    text = uri if uri is not None else default
    where = f"{where or '--redirect-uri'} {text!r}"
    advice = register_advice(apps, host, "/callback" if host != "localhost" else "/", suggest)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{where} is not a valid URL: {exc}.", advice) from None
    if https and parts.scheme == "https" and parts.hostname and not (parts.username or parts.password):
        return RedirectTarget(text, explicit, "", port or 443, parts.path or "/", advice)
    if parts.scheme != "http":
        raise UsageError(
            f"{where} must start with http:// — malcapture listens for the redirect with a plain "
            "web server on this machine.",
            advice,
        )
    if not parts.hostname:
        raise UsageError(f"{where} has no host name.", advice)
    if parts.fragment or text.endswith("#"):
        raise UsageError(f"{where} has a #fragment, which OAuth redirect URLs may not have.", advice)
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{where} contains a user name or password.", advice)
    if text != text.strip() or any(c in text for c in INVISIBLE):
        raise UsageError(f"{where} has spaces or invisible characters around it.", advice)
    return RedirectTarget(text, explicit, parts.hostname, port or 80, parts.path or "/", advice)


def target_for(
    redirect: Redirect, given: str | None, stored: str | None, apps: str, section: str, free_port: Callable[[], int]
) -> RedirectTarget:
    """The redirect a loopback login catches, by the service's rules: --redirect-uri, else the one the config
    keeps (`stored`), else the service's default; a service that names the hosts it takes refuses the others.
    `free_port` finds a port to suggest when there is none."""
    chosen = given if given is not None else stored
    host = redirect.hosts[0] if redirect.hosts else "localhost"
    if chosen is None and redirect.default is None:
        port = free_port()
        raise UsageError(
            f"No redirect URL: {section}.{redirect.setting or 'redirect_uri'} is blank, and --redirect-uri was "
            "not given.",
            f"Register http://{host}:{port}/callback as a redirect URI of your app ({apps}), then pass it with "
            "--redirect-uri (malcapture writes it into the config too).",
        )
    where = "--redirect-uri" if given is not None else f"{section}.{redirect.setting}"
    default = redirect.default or DEFAULT_REDIRECT_URI
    target = parse_redirect_uri(chosen, apps, default, redirect.https, where, host, free_port())
    if target.host and redirect.hosts and target.host not in redirect.hosts:
        parts = urlsplit(target.uri)
        instead = f"http://{redirect.hosts[0]}:{target.port}{parts.path or '/'}"
        raise UsageError(
            f"{where} {target.uri!r}: {redirect.refuse}",
            f"Register {instead} in your app ({apps}) "
            f"and write it in {section}.{redirect.setting or 'redirect_uri'} (or pass --redirect-uri).",
        )
    return target


def is_loopback_host(host: str) -> bool:
    """`localhost`, `127.0.0.1`, `::1` or `[::1]`: names that only this machine can reach."""
    bare = host.strip("[]")
    return bare == "localhost" or _is_loopback_literal(bare)


def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Authorized:
    """The browser came back with a code (never in a repr)."""

    code: str = field(repr=False)


class Refused(NamedTuple):
    error: str
    message: str
    hint: str

    @property
    def denied(self) -> bool:
        return self.error == "access_denied"


Callback = Authorized | Refused


def states_match(got: str, expected: str) -> bool:
    return hmac.compare_digest(got.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def read_callback(params: Mapping[str, str], expected_state: str, state_required: bool = True) -> Callback:
    """Judge the query of a redirect. Raises InputRejected for anything that must not end the wait."""
    state = params.get("state")
    if state is None:
        if state_required:
            raise InputRejected("The redirect has no state, so it cannot be told apart from a forged one.")
    elif not states_match(state, expected_state):
        raise InputRejected("The state in that redirect does not match this login — it belongs to another attempt.")
    if "error" in params:
        return Refused(params["error"], params.get("message", ""), params.get("hint", ""))
    code = params.get("code", "")
    if not code:
        raise InputRejected("The redirect has neither a code nor an error.")
    return Authorized(code)


def query_params(query: str) -> dict[str, str]:
    parsed = parse_qs(query, keep_blank_values=True)
    for name in ("code", "state", "error"):
        if len(set(parsed.get(name, []))) > 1:
            raise InputRejected(f"The redirect has two different values of {name}.")
    return {name: values[0] for name, values in parsed.items()}


def parse_paste(text: str, expected_state: str) -> Callback:
    """A pasted redirect URL, its query string, or the bare code."""
    pasted = text.strip().strip(INVISIBLE).strip()
    if not pasted:
        raise InputRejected("Nothing was pasted.")
    if "?" in pasted:
        query = pasted.split("?", 1)[1].split("#", 1)[0]
    elif "=" in pasted:
        query = pasted
    elif "://" in pasted or pasted.startswith("localhost"):
        raise InputRejected("That URL has no ?code= in it: copy the address from the browser after you clicked Allow.")
    elif BARE_CODE.fullmatch(pasted):
        return Authorized(pasted)
    else:
        raise InputRejected(
            "That is not a redirect URL or a code: paste the whole address the browser shows after Allow."
        )
    return read_callback(query_params(query), expected_state, state_required=False)
