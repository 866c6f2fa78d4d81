"""Trakt's refusals in plain words: the HTTP status, Trakt's error, and what to do. Facts:
../shared/TRAKT-OAUTH.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from malcapture.answers import is_html, titled
from malcapture.errors import ServiceError
from malcapture.http import Answer

DELETED_APP = (
    "Check the app at https://developer.trakt.tv (Your API Apps): in 2026 Trakt deleted the apps of free "
    "accounts, and only VIP accounts can create new ones. Put the app's client ID and secret in trakt: "
    "(or pass them), then run `malcapture trakt` again."
)
AUTHORIZE_AGAIN = "The refresh token no longer works (each one works once): run `malcapture trakt` to authorize again."
ACCOUNT = "Sign in at https://trakt.tv to see why; Kometa cannot use this account until then."


def explain(answer: Answer, action: str) -> ServiceError:
    """Trakt's refusal, with the HTTP status and what to do."""
    status = answer.status
    if status == 403:
        return ServiceError(
            f"Trakt answered the {action} with HTTP 403: the app of this client ID may have been deleted, "
            "or the client ID is wrong.",
            DELETED_APP,
            status,
        )
    if status in (410, 423):
        state = "deactivated" if status == 410 else "locked"
        return ServiceError(
            f"Trakt answered the {action} with HTTP {status}: this Trakt account is {state}.", ACCOUNT, status
        )
    if status == 429:
        wait = f" (it asks to wait {answer.retry_after:g} seconds)" if answer.retry_after else ""
        return ServiceError(
            f"Trakt answered the {action} with HTTP 429: too many requests{wait}.", "Try again later.", status
        )
    data = _error_json(answer.body)
    if data is not None:
        error, description = str(data.get("error") or ""), str(data.get("error_description") or "")
        said = f" — {description}" if description else ""
        return ServiceError(
            f"Trakt refused the {action}: HTTP {status} {error}{said}", _advice(status, error, action), status
        )
    if is_html(answer):
        return ServiceError(
            f"Trakt answered the {action} with HTTP {status} and a web page{titled(answer.body)} instead of JSON.",
            "Trakt may be down or blocking this network: try again later.",
            status,
        )
    return ServiceError(
        f"Trakt answered the {action} with HTTP {status}.",
        "Trakt had a problem of its own: try again in a few minutes." if status >= 500 else _advice(status, "", action),
        status,
    )


def _error_json(body: str) -> Mapping[str, Any] | None:
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "error" in data else None


def _advice(status: int, error: str, action: str) -> str:
    if error == "invalid_client":
        return "Check the client ID and secret of your app at https://developer.trakt.tv."
    if action == "refresh":
        return AUTHORIZE_AGAIN
    if action == "account check" and status == 401:
        return (
            "The access token was refused: run `malcapture trakt refresh` (or `malcapture trakt` to authorize again)."
        )
    if error == "invalid_grant":
        return (
            "Codes and PINs work once and only for minutes, and the redirect URL must be one the app registered "
            "exactly: run `malcapture trakt` again."
        )
    return "Run again with -v to see the exchange."
