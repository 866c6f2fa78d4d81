"""Reading a service's answer: a JSON object, tokens fit to be written into Kometa's config, an HTML page
where JSON was expected (and its title, for the message)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from malcapture.errors import ServiceError, UnusableTokens
from malcapture.http import Answer
from malcapture.tokens import TokenSet


def json_object(answer: Answer, title: str, action: str) -> dict[str, Any]:
    import json

    try:
        data = json.loads(answer.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ServiceError(
            f"{title} answered the {action} with HTTP {answer.status} and something other than JSON.",
            "Try again later.",
            answer.status,
        )
    return data


def issued(
    answer: Answer, title: str, action: str, again: str, read: Callable[[Mapping[str, Any]], TokenSet]
) -> TokenSet:
    """A token answer: JSON, text that can be written into a config, and the values Kometa keeps (`read`
    makes them from the answer; a KeyError, TypeError or ValueError there means the answer is unusable)."""
    import json

    data = json_object(answer, title, action)
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise UnusableTokens(
            f"{title} answered the {action} with tokens that cannot be written as text (broken characters).",
            f"Try again in a few minutes; if it persists, run `{again}` to authorize again.",
            json.dumps(data, ensure_ascii=True),
        ) from None
    try:
        tokens = read(data)
        for key in (tokens.access, tokens.refresh):
            if key is not None and (not isinstance(tokens.values[key], str) or not tokens.values[key]):
                raise TypeError(f"{key} is missing or not text")
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceError(
            f"{title} answered the {action} with HTTP 200 but without usable tokens ({exc.__class__.__name__}: {exc}).",
            "Try again in a few minutes.",
        ) from None
    odd = _unsafe_value(tokens)
    if odd:
        raise UnusableTokens(
            f"{title} answered the {action} with {odd}, which malcapture will not write into Kometa's config.",
            f"Try again in a few minutes; if it persists, run `{again}` to authorize again.",
            json.dumps(data, ensure_ascii=True),
        )
    return tokens


def _unsafe_value(tokens: TokenSet) -> str | None:
    """What makes an issued value unfit for the config: a control character (a line break would add a line
    of its own), or a `<<placeholder>>`, which Kometa would replace with a secret of the user's."""
    from malcapture.config.placeholders import is_placeholder

    for key, value in tokens.values.items():
        if isinstance(value, str) and any(not ch.isprintable() for ch in value):
            return f"a {key} holding a control character"
        if is_placeholder(value):
            return f"a {key} that Kometa would read as a <<placeholder>>"
    return None


def titled(page: str) -> str:
    """` titled 'Maintenance'` for an HTML page that has a title, else nothing."""
    title = re.search(r"<title[^>]*>(.*?)</title>", page, re.I | re.S)
    return f" titled {' '.join(title.group(1).split())[:80]!r}" if title else ""


def is_html(answer: Answer) -> bool:
    return "html" in answer.kind or answer.body.lstrip().lower().startswith(("<!doctype", "<html"))
